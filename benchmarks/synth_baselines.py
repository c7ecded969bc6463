"""Synthesis figures of the baseline engines at their standard sizes, ASIC (sky130) and ECP5-85F.

Usage: python benchmarks/synth_baselines.py [SWEEP] [--workers N] [--scheduler ADDRESS] [-o DIR]

SWEEP (default ``sweeps/synth_baselines.yaml``) names the reference configs and the targets;
``accelsmith sweep``'s engine synthesises them (results cached under ``build/sweeps/NAME``).
ECP5 runs twice: with DSP blocks and with multipliers in LUTs (-nodsp); a design that does not
fit the device is recorded with Yosys's counts and nextpnr's reason.
Writes docs/results/NAME.{json,md} (NAME: the sweep's ``name``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (machine, run_benchmark_sweep, sweep_arguments, sweep_command, synth_rows,
                     synthesised_points, without_excluded, write)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_arguments(parser, "synth_baselines.yaml")
    args = parser.parse_args()
    sweep, run = run_benchmark_sweep(args)
    rows = []
    for p, records in synthesised_points(sweep, run):
        rows += synth_rows(p, records, config=p.axes.get("base", Path(sweep.source).stem))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    rows, not_measured = without_excluded(sorted(rows, key=lambda r: targets.index(r["target"])),
                                          lambda r: r["config"])
    clocks = {p.steps["synth"].get("clock_ns") or 5.0 for p in sweep.points
              if "asic" in p.steps["synth"]["targets"]}
    _write(rows, min(clocks, default=5.0), sweep.name or Path(args.sweep).stem, not_measured,
           sweep_command("synth_baselines.py", args))


def _write(rows, clock_ns, name, not_measured, command):
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
    if not_measured:
        table += ["", not_measured]
    write(name, {"title": "Baseline engines: synthesis", "machine": machine(), "clock_ns": clock_ns,
                 "rows": rows}, "\n".join(table), command)


if __name__ == "__main__":
    main()
