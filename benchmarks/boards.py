"""Board reference configs: bitstream builds and the GEMM throughput they reach on the board.

Usage: python benchmarks/boards.py [--boards icebreaker ulx3s-85f ...] [--gemm M K N]
                                   [--baud 115200 3000000]

For each board reference config (``configs/board_*.yaml``, see ``REFERENCE``) this builds the
bitstream with ``accelsmith build`` (resources, clock reached against the one asked for, build
time), then runs one GEMM on the config's SoC in the native Verilator model through the same
driver as the board, and turns its measured cycles into time at the board's clock, against the
time its bytes take on the UART at each baud rate (8N1: ten bit times per byte).
Writes docs/results/boards.{json,md,png}; progress on stderr.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import RESULTS, machine, progress, write

from accelsmith.config import load
from accelsmith.flows.board import build_board
from accelsmith.sw_driver.accelerator import Accelerator

# Board -> its reference config (ECPIX-5 takes the ULX3S config: same device).
REFERENCE = {"icebreaker": "board_icebreaker_os_2x2_int8", "ulx3s-85f": "board_ulx3s_os_8x8_int8",
             "ecpix5-85f": "board_ulx3s_os_8x8_int8"}
FIGURES = ("luts", "luts_pct", "ffs", "dsps", "brams", "fmax_mhz", "clock_asked_mhz")


def build_row(board: str, tmp: str) -> dict:
    name = REFERENCE[board]
    progress(f"{board}: building {name} ...")
    t0 = time.monotonic()
    report = build_board(load(name), board, f"{tmp}/{board}")
    seconds = time.monotonic() - t0
    figures = report.figures
    return {"board": board, "config": name, "ok": report.ok, "problems": report.problems,
            "build_seconds": round(seconds, 1), **{k: figures.get(k) for k in FIGURES},
            "baud_divisor": figures.get("uart_divisor")}


def gemm_row(name: str, m: int, k: int, n: int) -> dict:
    progress(f"{name}: {m}x{k}x{n} GEMM on the native SoC model ...")
    rng = np.random.default_rng(15)
    A, B = rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n))
    with Accelerator.simulated(load(name)) as acc:
        result = acc.gemm(A, B)
        exact = bool(np.array_equal(result.C, acc.golden(A, B)))
    return {"gemm": f"{m}x{k}x{n}", "macs": m * k * n, "bit_exact": exact, "jobs": result.jobs,
            "soc_cycles": result.cycles, "engine_cycles": result.engine_cycles,
            "bytes_on_link": result.bytes_sent + result.bytes_received}


def plot(rows: list[dict], path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(rows)))
    labels = [f"{r['board']} {r['link']}" for r in rows]
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["compute_seconds"] for r in rows], 0.4, label="compute at the board clock")
    ax.barh(y + 0.2, [r["wire_seconds"] for r in rows], 0.4, label="bytes on the UART")
    ax.set_yticks(y, labels)
    ax.set_xscale("log")
    ax.set_xlabel("seconds for the GEMM (log)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", default=list(REFERENCE), choices=list(REFERENCE))
    parser.add_argument("--gemm", nargs=3, type=int, default=[64, 256, 64], metavar=("M", "K", "N"))
    parser.add_argument("--baud", nargs="+", type=int, default=[115200, 3000000])
    args = parser.parse_args()
    data = {"title": "Board reference configs: bitstreams and GEMM throughput", "machine": machine(),
            "builds": [], "throughput": []}
    gemms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for board in args.boards:
            build = build_row(board, tmp)
            data["builds"].append(build)
            name = build["config"]
            if name not in gemms:
                gemms[name] = gemm_row(name, *args.gemm)
            g = gemms[name]
            clock = build["clock_asked_mhz"]
            compute = g["soc_cycles"] / (clock * 1e6)
            for baud in args.baud:
                wire = g["bytes_on_link"] * 10 / baud
                data["throughput"].append({
                    "board": board, "config": name, **g, "clock_mhz": clock, "link": f"{baud:,} baud",
                    "compute_seconds": round(compute, 6), "gmacs_per_s": round(g["macs"] / compute / 1e9, 3),
                    "wire_seconds": round(wire, 3), "compute_share": round(compute / (compute + wire), 5)})
    table = ["## Builds", "",
             "| board | config | fits and meets clock | LUTs (% of device) | FFs | DSPs | BRAMs | "
             "clock asked MHz | Fmax MHz | build s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    n = lambda v: "-" if v is None else f"{v:,}"
    for b in data["builds"]:
        table.append(f"| {b['board']} | `{b['config']}` | {'yes' if b['ok'] else 'NO: ' + '; '.join(b['problems'])} | "
                     f"{n(b['luts'])} ({b['luts_pct']} %) | {n(b['ffs'])} | {n(b['dsps'])} | {n(b['brams'])} | "
                     f"{b['clock_asked_mhz']} | {b['fmax_mhz']} | {b['build_seconds']} |")
    table += ["", f"## One GEMM on the board ({args.gemm[0]}x{args.gemm[1]}x{args.gemm[2]} INT8)", "",
              "| board | link | SoC cycles (measured) | compute at the clock, s | GMAC/s | bytes on the link | "
              "wire time, s | compute share |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in data["throughput"]:
        table.append(f"| {t['board']} | {t['link']} | {t['soc_cycles']:,} | {t['compute_seconds']} | "
                     f"{t['gmacs_per_s']} | {t['bytes_on_link']:,} | {t['wire_seconds']} | {t['compute_share']} |")
    table += ["", "SoC cycles are those the sequencer counted (engine jobs and their overhead) in the "
              "native Verilator model of the config's SoC, through the same driver code as the board "
              "(`Accelerator`), with the result checked bit-exact against the golden model "
              f"({', '.join(sorted({'yes' if g['bit_exact'] else 'NO' for g in gemms.values()}))}). "
              "Compute time is those cycles at the clock the bitstream was built for; wire time is "
              "every byte the driver sent and received, at ten bit times per byte. The link, not the "
              "engine, sets the pace: no operand reuse across jobs yet.",
              "", "![compute vs wire](boards.png)"]
    plot(data["throughput"], RESULTS / "boards.png")
    command = "python benchmarks/boards.py" + (f" --boards {' '.join(args.boards)}"
                                               if args.boards != ["icebreaker", "ulx3s-85f"] else "")
    write("boards", data, "\n".join(table), command)


if __name__ == "__main__":
    main()
