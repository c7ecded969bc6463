"""The SoC's native Verilator model against the cocotb path, a 256x256x256 GEMM end to end, and
where the time would go on a board.

Usage: python benchmarks/driver.py [--sizes 4,8,16] [--gemm 256] [--vectors 400]
Writes docs/results/driver.{json,md} and driver.png. For each OS array size the cocotb
testbench (Verilator, the same engine) and the native SoC model run one after the other, so
their ratio is measured side by side. "While computing" counts the cycles the model simulates
while the sequencer runs a job (the host waits); "overall" divides every simulated cycle,
byte transfers over the bridge included, by the wall time of the whole GEMM.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import RESULTS, machine, progress, write

from accelsmith.config import validate
from accelsmith.flows.sim import simulate
from accelsmith.sw_driver.accelerator import Accelerator

BAUDS = (115_200, 3_000_000)


def _config(n: int):
    return validate({"family": "bitweight", "architecture": "systolic_os", "rows": n, "cols": n},
                    f"systolic_os {n}x{n}")


def _timed_settle(acc: Accelerator):
    """Wrap the transport's settle (the model running a job alone) to count its cycles/time."""
    tr = acc.transport
    inner = tr.settle
    stats = {"cycles": 0, "seconds": 0.0}

    def settle(timeout, max_cycles=None):
        c0, t0 = tr.model.cycles, time.perf_counter()
        inner(timeout, max_cycles)
        stats["seconds"] += time.perf_counter() - t0
        stats["cycles"] += tr.model.cycles - c0

    tr.settle = settle
    return stats


def native_row(n: int, rng) -> dict:
    progress(f"{n}x{n}: native SoC model ...")
    acc = Accelerator.simulated(_config(n))
    stats = _timed_settle(acc)
    # Long jobs: the buffers' worth of K per tile, several tiles.
    K = min(acc.buffers["a"]["depth"], acc.buffers["b"]["depth"])
    A = rng.integers(-128, 128, (n, K))
    B = rng.integers(-128, 128, (K, 16 * n))
    c0, t0 = acc.transport.model.cycles, time.perf_counter()
    result = acc.gemm(A, B)
    wall = time.perf_counter() - t0
    overall = acc.transport.model.cycles - c0
    assert np.array_equal(result.C, acc.golden(A, B))
    acc.close()
    return {"size": f"{n}x{n}", "path": "native SoC model", "gemm": f"{n}x{K}x{16 * n}",
            "compute_cycles": stats["cycles"], "compute_seconds": round(stats["seconds"], 3),
            "cycles_per_second": round(stats["cycles"] / stats["seconds"]),
            "overall_cycles": overall, "overall_seconds": round(wall, 3),
            "overall_cycles_per_second": round(overall / wall)}


def cocotb_row(n: int, vectors: int, tmp: str) -> dict:
    progress(f"{n}x{n}: cocotb testbench (Verilator) ...")
    r = simulate(_config(n), "verilator", seed=5, vectors=vectors, workdir=tmp, quiet=True)
    if not r.passed:
        raise SystemExit(r.summary())
    return {"size": f"{n}x{n}", "path": "cocotb testbench (Verilator)", "tiles": vectors,
            "compute_cycles": r.cycles, "compute_seconds": round(r.test_seconds, 3),
            "cycles_per_second": round(r.cycles / r.test_seconds)}


def gemm_row(n: int, size: int, rng) -> dict:
    progress(f"{n}x{n}: {size}x{size}x{size} GEMM end to end ...")
    acc = Accelerator.simulated(_config(n))
    A = rng.integers(-128, 128, (size, size))
    B = rng.integers(-128, 128, (size, size))
    t0 = time.perf_counter()
    result = acc.gemm(A, B, progress=lambda d, t: progress(f"  jobs {d}/{t}") if d % 1024 == 0 else None)
    wall = time.perf_counter() - t0
    exact = bool(np.array_equal(result.C, acc.golden(A, B)))
    cycles = acc.transport.model.cycles
    acc.close()
    return {"size": f"{n}x{n}", "gemm": f"{size}x{size}x{size}", "wall_seconds": round(wall, 2),
            "bit_exact": exact, "jobs": result.jobs, "runs": result.runs,
            "engine_cycles": result.engine_cycles, "soc_cycles": result.cycles,
            "simulated_cycles": cycles, "bytes_on_link": result.bytes_sent + result.bytes_received,
            "macs_per_cycle": round(result.macs_per_cycle, 2)}


def board_rows(gemm: dict, fmax_mhz: float) -> list[dict]:
    compute = gemm["soc_cycles"] / (fmax_mhz * 1e6)
    rows = []
    for baud in BAUDS:
        wire = gemm["bytes_on_link"] * 10 / baud        # 8N1: ten bit times per byte
        rows.append({"size": gemm["size"], "gemm": gemm["gemm"], "baud": baud,
                     "wire_seconds": round(wire, 3), "compute_seconds": round(compute, 5),
                     "fmax_mhz": fmax_mhz, "compute_share": round(compute / (wire + compute), 6)})
    return rows


def ecp5_fmax(n: int, tmp: str) -> float:
    from accelsmith.flows.synth import synthesize

    progress(f"{n}x{n}: ECP5-85F place and route for the engine's Fmax ...")
    report = synthesize(_config(n), "ecp5-85f", tmp)
    return float(report.to_json()["figures"]["fmax_mhz"])


def plot(rows: list[dict], board: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = sorted({r["size"] for r in rows}, key=lambda s: int(s.split("x")[0]))
    for offset, path in ((-0.2, "cocotb testbench (Verilator)"), (0.2, "native SoC model")):
        vals = [next(r["cycles_per_second"] for r in rows if r["size"] == s and r["path"] == path)
                for s in sizes]
        ax1.bar(np.arange(len(sizes)) + offset, vals, 0.4, label=path)
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(sizes)), sizes)
    ax1.set_ylabel("simulated cycles / s (while computing)")
    ax1.set_title("Simulation speed")
    ax1.legend()
    labels = [f"{b['baud']:,} baud" for b in board]
    y = np.arange(len(board))
    floor = 1e-4      # log axis: bars start here
    ax2.barh(y - 0.2, [b["wire_seconds"] - floor for b in board], 0.4, left=floor,
             label="bytes on the UART")
    ax2.barh(y + 0.2, [b["compute_seconds"] - floor for b in board], 0.4, left=floor,
             label=f"compute at {board[0]['fmax_mhz']:.0f} MHz")
    ax2.set_yticks(y, labels)
    ax2.set_xscale("log")
    ax2.set_xlabel("seconds")
    ax2.set_title(f"{board[0]['gemm']} GEMM on a {board[0]['size']} engine, ECP5 board")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "driver.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,16")
    parser.add_argument("--gemm", type=int, default=256, help="size of the end-to-end GEMM")
    parser.add_argument("--vectors", type=int, default=400, help="cocotb tiles per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(7)
    rows, gemms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows.append(cocotb_row(n, args.vectors, tmp))
            rows.append(native_row(n, rng))
        gemms.append(gemm_row(sizes[0], args.gemm, rng))
        fmax = ecp5_fmax(sizes[0], tmp)
    board = board_rows(gemms[0], fmax)
    table = ["| array | path | cycles while computing | s | cycles/s | ratio | overall cycles/s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in sizes:
        size = f"{n}x{n}"
        coco = next(r for r in rows if r["size"] == size and r["path"].startswith("cocotb"))
        for r in rows:
            if r["size"] != size:
                continue
            ratio = r["cycles_per_second"] / coco["cycles_per_second"]
            overall = r.get("overall_cycles_per_second")
            table.append(f"| {size} | {r['path']} | {r['compute_cycles']:,} | "
                         f"{r['compute_seconds']} | {r['cycles_per_second']:,} | {ratio:.0f}x | "
                         f"{'-' if overall is None else format(overall, ',')} |")
    g = gemms[0]
    table += ["", f"End to end in simulation: a {g['gemm']} INT8 GEMM on the {g['size']} engine "
              f"took {g['wall_seconds']} s wall ({g['jobs']:,} tile jobs in {g['runs']} runs, "
              f"{g['simulated_cycles']:,} simulated cycles, {g['bytes_on_link']:,} bytes through "
              f"the bridge, {g['engine_cycles']:,} engine cycles at {g['macs_per_cycle']} "
              f"MACs/cycle); C bit-exact with NumPy: {'yes' if g['bit_exact'] else 'NO'}.", "",
              f"On a board (ECP5-85F, the engine placed and routed at {fmax:.1f} MHz by this run; "
              f"8N1 UART, ten bit times per byte):", "",
              "| baud | bytes on the wire, s | compute, s | compute share |",
              "| --- | --- | --- | --- |"]
    table += [f"| {b['baud']:,} | {b['wire_seconds']:,} | {b['compute_seconds']} | "
              f"{100 * b['compute_share']:.3f} % |" for b in board]
    table += ["", "The link dominates by orders of magnitude: every output tile sends its own A "
              "rows and B columns (no reuse across tiles in the buffers), so bytes grow with "
              "M*N*K/tile while compute grows with M*N*K/MACs per cycle.", "",
              "![simulation speed and board time](driver.png)"]
    plot(rows, board)
    write("driver", {"title": "Host driver and native SoC model", "machine": machine(),
                     "rows": rows, "gemm": gemms, "board": board},
          "\n".join(table), "python benchmarks/driver.py")


if __name__ == "__main__":
    main()
