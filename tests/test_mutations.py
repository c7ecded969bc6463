"""The suite's teeth, tested: plant one known bug at a time in a copy of the project and expect
the tests aimed at it to fail.

Each mutation is a one-line change that once slipped through (issue 13's planted bugs) or that
a check exists to catch. The copy is imported ahead of the installed package (PYTHONPATH), so
the mutated code is what the tests run. ``python tests/test_mutations.py`` runs them all and
prints a table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str       # file, relative to the project root
    old: str        # text that must occur exactly once
    new: str
    tests: str      # pytest selection that must fail with the mutation in place


MUTATIONS = [
    Mutation("bitmap tile may be smaller than the grid", "generators/sparse.py",
             "        if values.get(\"format\") == \"bitmap\" and values[tile] < values[grid]:",
             "        if False:", "tests/test_config.py -k bitmap_n_tile_below_cols"),
    Mutation("no 'did you mean' for a value", "accelsmith/config.py",
             "                hint = f\" Did you mean {close[0]!r}?\" if close else \"\"\n"
             "                raise ConfigError(f\"{source}: key '{p.name}' has value",
             "                hint = \"\"\n"
             "                raise ConfigError(f\"{source}: key '{p.name}' has value",
             "tests/test_config.py -k value_typo"),
    Mutation("top-name pattern unchecked", "accelsmith/config.py",
             "            if p.pattern and not re.fullmatch(p.pattern, value):",
             "            if False:", "tests/test_config.py -k bad_top_name"),
    Mutation("duplicate keys taken silently", "accelsmith/config.py",
             "                if key in seen:", "                if False:",
             "tests/test_config.py -k duplicate_key"),
    Mutation("scoreboard ignores the last flag", "testbench/tiles.py",
             "            if word != want:",
             "            if word & ~(1 << self.g.n_tile * self.g.acc_fmt.bits) != "
             "want & ~(1 << self.g.n_tile * self.g.acc_fmt.bits):",
             "tests/test_scoreboard.py"),
    Mutation("CYCLES never compared with the model", "testbench/tiles.py",
             "        if exact_cycles and cycles != job.cycles:", "        if False:",
             "tests/test_testbench_teeth.py -k cycles_off_by_one"),
    Mutation("stream protocol unchecked", "testbench/streams.py",
             "            if not valid or self.payload.value.to_unsigned() != self._held:",
             "            if False:", "tests/test_testbench_teeth.py -k valid_withdrawn"),
    Mutation("STATUS.ERROR unchecked", "testbench/tiles.py",
             "        if has_error_flag and bool(status & regs.STATUS.ERROR.mask) != job.error:",
             "        if False:", "tests/test_testbench_teeth.py -k error_stuck"),
    Mutation("fetch buffer is FIFO, not LRU", "models/gaussian/schedule.py",
             "                cache.move_to_end(g)", "                pass",
             "tests/test_gaussian_models.py -k lru_not_fifo"),
    Mutation("opt4e all-zero step costs no cycle", "models/bitweight.py",
             "        return max(1, int(per_weight.max()))", "        return int(per_weight.max())",
             "tests/test_models.py -k step_cycles_hand_computed"),
    Mutation("a result row stops shifting one row early", "hdl/tensor_engine.py",
             "(row_next < self.m_tile - i))", "(row_next < self.m_tile - i - 1))",
             "tests/test_sim.py::test_sim_mac[systolic_os-opt1-p1-verilator]"),
    Mutation("buffered cycle model unbounded", "models/bitweight.py",
             "    if steps < 0 or tiles < 0 or latency < 1 or m_tile < 1:", "    if False:",
             "tests/test_models.py -k refuses_impossible_geometry"),
]


def _copy(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "results"))
    return dest


def run(mutation: Mutation, workdir: Path) -> subprocess.CompletedProcess:
    """Apply ``mutation`` to a fresh copy under ``workdir`` and run its tests there."""
    copy = _copy(workdir / "project")
    target = copy / mutation.path
    text = target.read_text()
    if text.count(mutation.old) != 1:
        raise AssertionError(f"{mutation.path}: the text to mutate occurs {text.count(mutation.old)} "
                             f"times (expected once); update the mutation '{mutation.name}'")
    target.write_text(text.replace(mutation.old, mutation.new))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(copy),
                                                                     os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *mutation.tests.split()], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name.replace(" ", "_"))
def test_mutation_is_caught(mutation, tmp_path):
    proc = run(mutation, tmp_path)
    tail = (proc.stdout + proc.stderr)[-1500:]
    assert proc.returncode == 1, f"'{mutation.name}' was not caught by {mutation.tests}:\n{tail}"
    assert " failed" in proc.stdout, tail


def test_copy_without_mutation_passes(tmp_path):
    """The harness itself: the same selections pass on an unmutated copy."""
    copy = _copy(tmp_path / "project")
    env = dict(os.environ, PYTHONPATH=str(copy))
    selections = sorted({m.tests.split()[0] for m in MUTATIONS} - {"tests/test_testbench_teeth.py"})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *selections, "-k", "not cli and not garden and not train"],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]


if __name__ == "__main__":
    import tempfile

    width = max(len(m.name) for m in MUTATIONS)
    for m in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            proc = run(m, Path(tmp))
        print(f"{m.name:<{width}}  {'caught' if proc.returncode == 1 else 'MISSED'}  ({m.tests})")
