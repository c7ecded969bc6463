"""The accelsmith command end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CONFIGS, SKY130


def run(*args):
    return subprocess.run([sys.executable, "-m", "accelsmith.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_list():
    proc = run("list")
    assert proc.returncode == 0
    for word in ("systolic_os", "systolic_ws", "matrix2d", "tree", "cube", "os_4x4_int8.yaml"):
        assert word in proc.stdout


def test_generate(tmp_path):
    proc = run("generate", CONFIGS / "tree_4x4_int8.yaml", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(next(tmp_path.glob("*.manifest.json")).read_text())
    assert (tmp_path / manifest["verilog"]).read_text().count("module ") >= 2
    assert manifest["top"] in (tmp_path / manifest["verilog"]).read_text()


def test_sim_waves_and_seed(tmp_path):
    proc = run("sim", CONFIGS / "matrix2d_4x4_int8.yaml", "--vectors", 50, "--seed", 7, "--waves",
               "--workdir", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "seed 7" in proc.stdout
    waves = Path(proc.stdout.split("waveform: ")[1].split()[0])
    assert waves.is_absolute() and waves.stat().st_size > 1000


def test_synth_json(tmp_path):
    # A 2x2 array of the mixed-format reference config: the command, not the size, is tested.
    config = tmp_path / "os_2x2_u4xs8.yaml"
    config.write_text((CONFIGS / "os_4x4_u4xs8.yaml").read_text()
                      .replace("rows: 4", "rows: 2").replace("cols: 4", "cols: 2"))
    out = tmp_path / "r.json"
    args = ["synth", config, "--target", "asic", "--json", out, "--workdir", tmp_path]
    if SKY130.is_file():
        args += ["--liberty", SKY130]
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["target"] == "asic" and report["figures"]["cells"] > 0
    assert "cells" in proc.stdout


def test_tool_failure_is_reported_without_traceback(tmp_path):
    proc = run("synth", CONFIGS / "os_4x4_int8.yaml", "--target", "asic", "--liberty",
               tmp_path / "nope.lib", "--workdir", tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "nope.lib" in proc.stderr


def test_version_and_plain_help():
    from accelsmith import __version__

    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"accelsmith {__version__}"
    for command in ([], ["generate"], ["sim"], ["synth"], ["render"], ["train-sorter"], ["list"],
                    ["schema"]):
        proc = run(*command, "--help")
        assert proc.returncode == 0 and "usage: accelsmith" in proc.stdout
        assert "`" not in proc.stdout, f"reStructuredText in accelsmith {' '.join(command)} --help"
    assert "(default: coverage)" in " ".join(run("render", "--help").stdout.split())


def test_reference_config_by_name_from_anywhere(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "generate", "os_4x4_int8", "-o",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "bitweight_systolic_os_baseline_4x4_s8xs8_acc24.v").is_file()
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "generate", "os_4x4_int9"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean 'os_4x4_int8'?" in proc.stderr
    listed = [Path(w) for w in run("list").stdout.split() if w.endswith("os_4x4_int8.yaml")]
    assert [p.resolve() for p in listed] == [(CONFIGS / "os_4x4_int8.yaml").resolve()]


def test_synth_target_did_you_mean():
    proc = run("synth", "os_4x4_int8", "--target", "ecp5")
    assert proc.returncode == 2 and "Did you mean 'ecp5-85f'?" in proc.stderr


@pytest.mark.parametrize("period", ["-1", "0", "nan", "inf", "fast"])
def test_synth_rejects_a_clock_period_that_is_not_a_positive_number(period):
    proc = run("synth", "os_4x4_int8", "--target", "ecp5-85f", f"--clock-ns={period}")
    assert proc.returncode == 2
    assert f"argument --clock-ns: '{period}': a clock period in ns, a number above 0" in proc.stderr
    assert "Traceback" not in proc.stderr
