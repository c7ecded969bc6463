"""Shared helpers for the benchmark scripts: paths, machine description, JSON + markdown output."""

from __future__ import annotations

import json
import os
import statistics
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


# --- synthesis benchmarks as sweeps (``accelsmith.flows.sweep``): a sweep file names the designs
# and targets; the script runs the sweep (the cache makes a repeated run free) and reports.

def sweep_arguments(parser, default: str):
    """The command line of a sweep-backed benchmark: the sweep file and where to run it."""
    parser.add_argument("sweep", nargs="?", default=str(ROOT / "sweeps" / default),
                        help=f"the sweep file (default: sweeps/{default})")
    parser.add_argument("--workers", type=int, default=None,
                        help="local Dask workers (default: one per CPU)")
    parser.add_argument("--scheduler", default=None, help="an existing Dask scheduler's address")
    parser.add_argument("-o", "--out", default=None,
                        help="the sweep's folder: results cache, logs, sweep.md (default: "
                             "build/sweeps/NAME)")


def run_benchmark_sweep(args, sweep=None):
    """Run ``sweep`` (default: load ``args.sweep``); returns the sweep and its :class:`SweepRun`. Synthesis steps
    that name no Liberty map to the sky130 HD one beside the project, as the published tables do."""
    from accelsmith.flows.sweep import run_sweep

    sweep = sweep or load_benchmark_sweep(args.sweep)
    if SKY130.exists():
        for p in sweep.points:
            if "synth" in p.steps and not p.steps["synth"].get("liberty"):
                p.steps["synth"] = {**p.steps["synth"], "liberty": str(SKY130)}
    name = sweep.name or Path(args.sweep).stem
    out = Path(args.out) if args.out else ROOT / "build" / "sweeps" / name
    run = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler)
    progress(f"sweep {name}: {run.computed} points computed, {run.cached} from the cache, "
             f"{run.failed} failed, in {run.seconds:.0f} s ({out})")
    return sweep, run


def load_benchmark_sweep(path):
    """The sweep file at ``path``; a bad one ends the script with its one-line error."""
    from accelsmith.config import ConfigError
    from accelsmith.flows.sweep import load_sweep

    try:
        return load_sweep(path)
    except ConfigError as exc:          # sweep files' errors name the file, key and value
        raise SystemExit(f"error: {exc}") from None


def sweep_command(script: str, args) -> str:
    path = Path(args.sweep).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"python benchmarks/{script} {shown}"


def variant_of(target: str, options: dict) -> str:
    return f"{target}-nodsp" if target != "asic" and options.get("no_dsp") else target


def synth_rows(point, records: dict, **labels) -> list[dict]:
    """The rows of one sweep point's synthesis, one per target (variant): ``labels``, the flow's
    figures, or the error (an excluded point: its reason). With several nextpnr seeds, the Fmax
    is their median and ``fmax_by_seed`` has each (placement moves an engine's clock by 10-15 %
    from one seed to the next; the LUT and FF counts are the packer's, the same for all)."""
    from accelsmith.flows.sweep import synth_label

    options = point.steps["synth"]
    rows = []
    for target in options["targets"]:
        row = {**labels, "target": variant_of(target, options)}
        record = records.get("synth") or {}
        result = record.get("result", {}) if record.get("ok") else {}
        placements = synth_label(target, options["seeds"])
        seeds = [seed for seed, _ in placements]
        runs = [result[label] for _, label in placements if label in result]
        if point.filtered:
            row["error"] = point.filtered
        elif not runs:
            failed = next((r for r in records.values() if not r.get("ok")), {})
            lines = str(failed.get("error", "not run")).splitlines() or ["not run"]
            row["error"] = " ".join([lines[0]] + [line.strip() for line in lines[1:3]])
        elif len(runs) == 1:
            row.update(runs[0])
        else:
            placed = [r for r in runs if r.get("fmax_mhz")]
            row.update(placed[0] if placed else runs[0])
            if placed:
                row["fmax_mhz"] = round(statistics.median(r["fmax_mhz"] for r in placed), 1)
            row["fmax_by_seed"] = {str(s): r.get("fmax_mhz") or "no route" for s, r in zip(seeds, runs)}
            # The constraint note without its one seed ("constraint 166.667 MHz, nextpnr seed 1").
            row["notes"] = [n.split(", nextpnr seed")[0] for n in row.get("notes", [])] + [
                f"Fmax: median over nextpnr seeds {', '.join(map(str, seeds))} of those that "
                f"routed ({len(placed)})"]
        rows.append(row)
    return rows


def synthesised_points(sweep, run):
    """(point, records) of every point the sweep synthesised or excluded, in sweep order; the
    points the config schema rejects are combinations that do not exist and are left out."""
    return [(p, run.records.get(p.index, {})) for p in sweep.points
            if "synth" in p.steps and not (p.filtered or "").startswith("rejected")]


def without_excluded(rows: list[dict], name) -> tuple[list[dict], str]:
    """The rows the sweep measured, and a sentence naming the designs its exclude rules kept out
    (grouped by reason; ``name(row)`` names a design), or ''."""
    reasons: dict = {}
    for r in rows:
        if str(r.get("error", "")).startswith("excluded: "):
            reasons.setdefault(r["error"].removeprefix("excluded: "), []).append(f"{name(r)} ({r['target']})")
    if not reasons:
        return rows, ""
    return ([r for r in rows if not str(r.get("error", "")).startswith("excluded: ")],
            "Not measured (the sweep file's exclude rules): " + "; ".join(
                f"{', '.join(designs)}: {reason}" for reason, designs in reasons.items()) + ".")
