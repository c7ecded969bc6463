"""Synthesis figures of the baseline engines at their standard sizes, ASIC (sky130) and ECP5-85F.

Usage: python benchmarks/synth_baselines.py [--configs NAME ...] [--targets asic ecp5-85f ...]
Writes docs/results/synth_baselines.{json,md}, updated as rows complete (``--jobs`` runs in
parallel); rows of targets not measured in this run are kept from the existing file, so
``--targets asic`` re-measures the ASIC rows only. ECP5 runs twice: with DSP blocks and with multipliers in LUTs (-nodsp); a design that
does not fit the device is recorded with Yosys's counts and nextpnr's reason.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor

from _common import CONFIGS, RESULTS, VARIANTS, machine, kept_note, other_target_rows, synth_row, write

from accelsmith.config import load

STANDARD = ["os_8x8_int8", "os_16x16_int8", "ws_16x16_int8", "matrix2d_16x16_int8",
            "tree_16x16_int8", "cube_8_int8"]


def _measure(job) -> dict:
    name, variant, clock_ns, workdir = job
    return synth_row(load(CONFIGS / f"{name}.yaml"), variant, workdir, clock_ns, config=name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=STANDARD)
    parser.add_argument("--targets", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--clock-ns", type=float, default=5.0, help="ASIC: ABC/STA target period")
    parser.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel")
    parser.add_argument("--name", default="synth_baselines",
                        help="output name under docs/results")
    args = parser.parse_args()
    kept = other_target_rows(RESULTS / f"{args.name}.json", "rows", args.targets)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(name, variant, args.clock_ns, f"{tmp}/{len(args.configs) * i + j}")
                for i, variant in enumerate(args.targets) for j, name in enumerate(args.configs)]
        rows = []
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for row in pool.map(_measure, jobs):   # in job order, so the table's order is stable
                rows.append(row)
                _write(_in_target_order(rows + kept), args.clock_ns, args.name, args.targets)


def _in_target_order(rows):
    return sorted(rows, key=lambda r: list(VARIANTS).index(r["target"]))


def _write(rows, clock_ns, name, measured):
    table = ["| config | target | area um^2 | cells | FFs | LUTs | DSPs | critical path ns | "
             f"slack at {clock_ns:g} ns | Fmax MHz | placed | s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['config']} | {r['target']} | failed: {r['error'][:120]} |||||||||| ")
            continue
        fmt = lambda k: f"{r[k]:,}" if isinstance(r.get(k), (int, float)) else "-"
        slack = ("-" if "setup_slack_ns" not in r else
                 f"{r['setup_slack_ns']:+.2f}" + ("" if r["timing_met"] else " (violated)"))
        table.append(f"| {r['config']} | {r['target']} | {fmt('area_um2')} | {fmt('cells')} | "
                     f"{fmt('flip_flops') if r['target'] == 'asic' else fmt('ffs')} | {fmt('luts')} | "
                     f"{fmt('dsps')} | {fmt('critical_path_ns')} | {slack} | {fmt('fmax_mhz')} | "
                     f"{'-' if 'fits' not in r else 'yes' if r['fits'] else 'does not fit'} | {r['seconds']} |")
    table.append(f"\nASIC: sky130 HD typical corner, `abc -D {clock_ns * 1000:.0f}`, OpenSTA "
                 "critical path with inputs/outputs at 0 delay, no IO harness. ECP5: LFE5U-85F speed 6 "
                 "via nextpnr (seed 1), core behind the 5-pin scan harness whose flip-flops are "
                 "included in FFs and LUTs; for designs that do not fit the device, the counts are "
                 "Yosys's mapping and nextpnr's reason is in the JSON notes.")
    table += ["", kept_note(rows)]
    command = "python benchmarks/synth_baselines.py"
    if list(measured) != list(VARIANTS):
        command += f" --targets {' '.join(measured)}"
    if name != "synth_baselines":
        command += f" --name {name}"
    write(name, {"title": "Baseline engines: synthesis", "machine": machine(), "clock_ns": clock_ns,
                 "rows": rows}, "\n".join(table), command)


if __name__ == "__main__":
    main()
