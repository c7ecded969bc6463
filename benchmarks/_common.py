"""Shared helpers for the benchmark scripts: paths, machine description, JSON + markdown output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RESULTS = ROOT / "docs" / "results"
SKY130 = ROOT.parent / "shared" / "data" / "sky130hd_tt.lib.gz"


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}


def progress(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write(name: str, data: dict, table: str, command: str):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(
        f"# {data['title']}\n\nMeasured with `{command}` on {data['machine']['date']} "
        f"({data['machine']['cpus']} CPUs, Python {data['machine']['python']}); raw data in "
        f"`{name}.json`.\n\n{table}\n")
    progress(f"wrote {RESULTS / (name + '.md')}")


def other_target_rows(path: Path, key: str, targets) -> list[dict]:
    """The rows under ``key`` of an earlier results file whose target this run does not measure,
    each marked with the date it was measured (``kept_from``): re-measuring one target keeps the
    others' rows."""
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    date = old.get("machine", {}).get("date")
    return [{**r, "kept_from": r.get("kept_from", date)} for r in old.get(key, [])
            if r.get("target") not in targets]


def kept_note(rows: list[dict]) -> str:
    """A sentence naming the targets whose rows come from an earlier run, or ''."""
    kept = {}
    for r in rows:
        if "kept_from" in r:
            kept.setdefault(r["target"], r["kept_from"])
    return "" if not kept else ("Rows of " + ", ".join(f"{t} (measured {d})" for t, d in kept.items())
                                + " are kept from an earlier run of this script: this run measured "
                                "the other targets only.")


# ECP5 runs twice: with DSP blocks and with multipliers in LUTs (-nodsp).
VARIANTS = {"asic": ("asic", False), "ecp5-85f": ("ecp5-85f", False),
            "ecp5-85f-nodsp": ("ecp5-85f", True)}
# A with-DSP variant's netlist equals its LUT-only twin's when the core has no multipliers.
LUT_ONLY_TWIN = {"ecp5-85f": "ecp5-85f-nodsp"}


def synth_row(config, variant: str, workdir, /, clock_ns: float = 5.0,
              timeout_min: float | None = None, place: bool = True, fpga_clock_ns: float | None = None,
              seed: int = 1, **labels) -> dict:
    """Synthesise one config for one variant; the row holds ``labels``, the figures or the first
    lines of the error (a tool stopped by ``timeout_min`` says so). ``clock_ns``: the ASIC
    clock; ``fpga_clock_ns``: nextpnr's constraint (default: the flow's), ``seed`` its placement
    seed. ``place=False``: FPGA netlist only (see :func:`~accelsmith.flows.synth.synthesize`).
    The first three are positional-only, so a label may be called ``config``."""
    from accelsmith.flows import tools
    from accelsmith.flows.synth import synthesize

    target, no_dsp = VARIANTS[variant]
    row = {**labels, "target": variant}
    progress(f"{labels} -> {variant} ...")
    try:
        with tools.time_limit(None if timeout_min is None else timeout_min * 60):
            report = synthesize(config, target, workdir,
                                liberty=str(SKY130) if SKY130.exists() else None,
                                clock_ns=clock_ns if target == "asic" else fpga_clock_ns, no_dsp=no_dsp,
                                quiet=True, place=place, seed=seed)
        row.update({k: v for k, v in report.figures.items() if not isinstance(v, dict)},
                   seconds=report.seconds, top=report.top, notes=report.notes)
    except tools.ToolError as exc:
        lines = str(exc).splitlines()
        row["error"] = " ".join([lines[0]] + [line.strip() for line in lines[1:3]])
    progress(f"  done {labels} -> {variant}: "
             f"{ {k: v for k, v in row.items() if k not in ('notes', 'top')} }")
    return row
