"""Simulation speed (simulated cycles per wall-clock second of the cocotb run) of OS arrays.

Usage: python benchmarks/sim_speed.py [--vectors N]
Writes docs/results/sim_speed.{json,md}. Both simulators run the same tiles (same seed) one after
the other, so their ratio is measured side by side.
"""

from __future__ import annotations

import argparse
import tempfile

from _common import machine, progress, write

from accelsmith.config import validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate

SIZES = [4, 8, 16]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=400)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            cfg = validate({"family": "bitweight", "architecture": "systolic_os", "rows": n, "cols": n},
                           f"systolic_os {n}x{n}")
            for sim in tools.simulators():
                progress(f"{n}x{n} on {sim} ...")
                r = simulate(cfg, sim, seed=5, vectors=args.vectors, workdir=tmp, quiet=True)
                if not r.passed:
                    raise SystemExit(r.summary())
                rows.append({"size": f"{n}x{n}", "simulator": sim, "tiles": args.vectors,
                             "cycles": r.cycles, "run_seconds": round(r.test_seconds, 2),
                             "build_seconds": round(r.build_seconds, 1),
                             "cycles_per_second": round(r.cycles / r.test_seconds)})
    table = ["| array | simulator | tiles | cycles | run s | cycles/s | build s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    table += [f"| {r['size']} | {r['simulator']} | {r['tiles']} | {r['cycles']:,} | {r['run_seconds']} | "
              f"{r['cycles_per_second']:,} | {r['build_seconds']} |" for r in rows]
    table.append("\nRun time covers the whole cocotb test (Python drivers, scoreboard and golden "
                 "model included), which dominates at these sizes.")
    write("sim_speed", {"title": "Simulation speed", "machine": machine(), "rows": rows},
          "\n".join(table), "python benchmarks/sim_speed.py")


if __name__ == "__main__":
    main()
