"""Sparse engines against the dense engines with the same multipliers: GEMM speedup, area, Fmax.

Usage: python benchmarks/sparse_speedup.py [SWEEP] [--workers N] [--scheduler ADDRESS] [-o DIR]
                                           [--skip-synth] [--gemm 256]

N:M: 4x4 PEs with 4 multipliers each (2:4 and 2:8 take 2 groups per step, 1:4 and 1:8 take 4,
4:8 one), against the foundation's 3D-Cube with n = 4 (64 multipliers, 4x4 tile, 4 K values per
step), built with the same result buffer (``result_buffer: true``: readout overlapped with the
next tile, as the N:M engines do) and, for reference, without. A GEMM is one job of all its
output tiles (the TILES register). Cycles from the cycle models the simulations check exactly;
area and critical path (sky130) and LUT/FF/DSP/Fmax (ECP5-85F) of the designs and targets SWEEP
(default ``sweeps/sparse.yaml``) names, synthesised by ``accelsmith sweep``'s engine (results
cached under ``build/sweeps/sparse``).

Dual-side: a 4x4 multiplier grid with a 32x32 output tile against the foundation's 4x4
2D-Matrix (16 multipliers), over a grid of densities of A and B (uniform random INT8 values,
each element non-zero with the given probability), against the ideal 1 / (dA x dB) bounded by
the engine's peak (tile / grid = 64).

Writes docs/results/sparse.{json,md} and docs/results/sparse_dualside.png; progress on stderr.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import (RESULTS, load_benchmark_sweep, machine, progress, run_benchmark_sweep,
                     sweep_arguments, sweep_command, synth_rows, synthesised_points, without_excluded,
                     write)

from accelsmith.config import validate
from accelsmith.generators import bitweight, sparse
from accelsmith.models.bitweight import EngineGeometry
from accelsmith.models.sparse import BitmapGeometry, NMGeometry, prune_nm

NM_PATTERNS = [(2, 4), (1, 4), (2, 8), (1, 8), (4, 8)]
KEPT_PER_PE = 4
DENSE_NM = {"family": "bitweight", "architecture": "cube", "cube_n": 4, "result_buffer": True}
FOUNDATION_CUBE = {"family": "bitweight", "architecture": "cube", "cube_n": 4}
DUAL = {"family": "sparse", "format": "bitmap", "rows": 4, "cols": 4, "m_tile": 32, "n_tile": 32}
DENSE_DUAL = {"family": "bitweight", "architecture": "matrix2d", "rows": 4, "cols": 4}
DENSITIES = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ANCHORS = {(2, 4): "NVIDIA A100 2x (math throughput); VEGETA 2.20x", (1, 4): "VEGETA 3.74x"}


def nm_config(n, m):
    return {"family": "sparse", "format": "nm", "n": n, "m": m, "groups": KEPT_PER_PE // n,
            "rows": 4, "cols": 4}


def geometry_of(raw: dict):
    config = validate(raw, f"<{raw}>")
    manifest = (bitweight if config.family == "bitweight" else sparse).build(config).manifest
    cls = {"nm": NMGeometry, "bitmap": BitmapGeometry}.get(manifest.get("format"), EngineGeometry)
    return cls.from_manifest(manifest), manifest


def dense_gemm_cycles(g: EngineGeometry, m: int, n: int, k: int) -> int:
    """One job of all tiles for engines with a result buffer, else one job per tile."""
    tiles = -(-m // g.m_tile) * -(-n // g.n_tile)
    if g.buffered:
        return g.job_cycles(g.steps(k), tiles)
    return tiles * g.job_cycles(g.steps(k))


def nm_table(size: int, rng) -> list[dict]:
    dense, dense_manifest = geometry_of(DENSE_NM)
    base = dense_gemm_cycles(dense, size, size, size)
    foundation, _ = geometry_of(FOUNDATION_CUBE)
    rows = [{"design": "dense 3D-Cube n=4, result buffer", "pattern": "dense", "multipliers":
             dense_manifest["performance"]["macs_per_cycle"], "gemm": size, "cycles": base,
             "speedup": 1.0},
            {"design": "dense 3D-Cube n=4, foundation shell (readout per tile)", "pattern": "dense",
             "multipliers": dense_manifest["performance"]["macs_per_cycle"], "gemm": size,
             "cycles": dense_gemm_cycles(foundation, size, size, size),
             "speedup": round(base / dense_gemm_cycles(foundation, size, size, size), 3)}]
    B = rng.integers(-128, 128, (size, size))
    for n, m in NM_PATTERNS:
        g, manifest = geometry_of(nm_config(n, m))
        # Cycles are data-independent for N:M; every tile is still encoded, so the job layout
        # (steps per tile) is the one the host driver would send.
        A = prune_nm(rng.integers(-128, 128, (size, size)), n, m)
        steps = set()
        for i in range(0, size, g.m_tile):
            comp = g.compress(A[i:i + g.m_tile])
            for j in range(0, size, g.n_tile):
                steps.add(len(g.job_words(comp, B[:, j:j + g.n_tile])[0]))
        (tile_steps,) = steps
        cycles = g.job_cycles(tile_steps, (size // g.m_tile) * (size // g.n_tile))
        speedup = base / cycles
        rows.append({"design": f"N:M {n}:{m}", "pattern": f"{n}:{m}", "multipliers":
                     manifest["performance"]["multipliers"], "gemm": size, "cycles": cycles,
                     "speedup": round(speedup, 3), "ideal": m / n,
                     "fraction_of_ideal": round(speedup / (m / n), 3),
                     "floor_met": speedup >= 0.95 * m / n, "anchor": ANCHORS.get((n, m), "")})
        progress(f"N:M {n}:{m}: {speedup:.2f}x over dense on {size}^3")
    return rows


def dual_grid(size: int, rng) -> list[dict]:
    g, _ = geometry_of(DUAL)
    dense, _ = geometry_of(DENSE_DUAL)
    base = dense_gemm_cycles(dense, size, size, size)
    peak = g.peak_speedup()
    out = []
    for da in DENSITIES:
        for db in DENSITIES:
            A = rng.integers(-128, 128, (size, size)) * (rng.random((size, size)) < da)
            B = rng.integers(-128, 128, (size, size)) * (rng.random((size, size)) < db)
            cycles = sum(g.job_cycles_for(g.job(A[i:i + g.m_tile], B[:, j:j + g.n_tile]))
                         for i in range(0, size, g.m_tile) for j in range(0, size, g.n_tile))
            ideal = min(1 / (da * db), peak)
            out.append({"density_a": da, "density_b": db, "cycles": cycles, "dense_cycles": base,
                        "speedup": round(base / cycles, 3), "ideal": round(ideal, 3),
                        "fraction_of_ideal": round(base / cycles / ideal, 3)})
        progress(f"dual-side: density A {da:.0%} done")
    return out


def tile_sweep(size: int, rng) -> list[dict]:
    """The dual-side engine's tile size on the same 4x4 grid: fraction of the ideal."""
    dense, _ = geometry_of(DENSE_DUAL)
    base = dense_gemm_cycles(dense, size, size, size)
    out = []
    for tile in (8, 16, 32):
        g, _ = geometry_of({**DUAL, "m_tile": tile, "n_tile": tile})
        for d in (0.25, 0.5):
            A = rng.integers(-128, 128, (size, size)) * (rng.random((size, size)) < d)
            B = rng.integers(-128, 128, (size, size)) * (rng.random((size, size)) < d)
            cycles = sum(g.job_cycles_for(g.job(A[i:i + tile], B[:, j:j + tile]))
                         for i in range(0, size, tile) for j in range(0, size, tile))
            ideal = min(1 / (d * d), g.peak_speedup())
            out.append({"tile": tile, "density": d, "speedup": round(base / cycles, 3),
                        "ideal": ideal, "fraction_of_ideal": round(base / cycles / ideal, 3)})
        progress(f"dual-side tile {tile}x{tile} done")
    return out


def plot(grid: list[dict], path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.array(DENSITIES) * 100
    speed = np.array([r["speedup"] for r in grid]).reshape(len(d), len(d))
    frac = np.array([r["fraction_of_ideal"] for r in grid]).reshape(len(d), len(d))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 5))
    im = ax0.imshow(np.log2(speed), origin="lower", cmap="viridis")
    for (i, j), v in np.ndenumerate(speed):
        ax0.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6, color="white")
    ax0.set(title="Dual-side speedup over dense 4x4 2D-Matrix (log2 colour)",
            xlabel="density of B (%)", ylabel="density of A (%)")
    fig.colorbar(im, ax=ax0, label="log2 speedup")
    im1 = ax1.imshow(frac, origin="lower", cmap="magma", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(frac):
        ax1.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                 color="white" if v < 0.6 else "black")
    ax1.set(title="fraction of ideal min(1/(dA dB), peak 64)", xlabel="density of B (%)",
            ylabel="density of A (%)")
    fig.colorbar(im1, ax=ax1)
    for ax in (ax0, ax1):
        ax.set_xticks(range(len(d)), [f"{x:.0f}" for x in d], fontsize=7)
        ax.set_yticks(range(len(d)), [f"{x:.0f}" for x in d], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    progress(f"wrote {path}")


def design_name(values: dict) -> str:
    """A synthesised design's row name (the names the cycle tables use)."""
    if values["family"] == "sparse":
        return f"N:M {values['n']}:{values['m']}"
    return "dense 3D-Cube n=4, " + ("result buffer" if values.get("result_buffer") else "foundation shell")


def write_all(data, args):
    out = [f"## N:M: GEMM {args.gemm}^3 against the dense engine with the same 64 multipliers", "",
           "Each GEMM is one job of all its 4x4 output tiles; speedups are against the first row.", "",
           "| design | multipliers | cycles | speedup | ideal M/N | of ideal | floor 0.95 x M/N | anchor |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["nm"]:
        out.append(f"| {r['design']} | {r['multipliers']} | {r['cycles']:,} | {r['speedup']:.2f}x | "
                   f"{r.get('ideal', '-')} | {r.get('fraction_of_ideal', '-')} | "
                   f"{'met' if r.get('floor_met') else ('missed' if 'floor_met' in r else '-')} | "
                   f"{r.get('anchor', '')} |")
    synth = data.get("synth", [])
    if synth:
        out += ["", "### Cost of N:M support (same 64 multipliers)", "",
                "| design | target | area um^2 | size vs dense (um^2 or LUTs) | critical path ns | Fmax MHz | "
                "Fmax vs dense | LUTs | FFs | DSPs |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        base = {r["target"]: r for r in synth if r["design"] == "dense 3D-Cube n=4, result buffer"}
        for r in synth:
            b = base.get(r["target"], {})
            if "error" in r:
                out.append(f"| {r['design']} | {r['target']} | failed: {r['error'][:80]} ||||||||")
                continue
            area = r.get("area_um2")
            size, base_size = (area, b.get("area_um2")) if area else (r.get("luts"), b.get("luts"))
            ratio = f"{size / base_size:.2f}x" if size and base_size else "-"
            fmax = r.get("fmax_mhz")
            fratio = f"{fmax / b['fmax_mhz']:.2f}x" if fmax and b.get("fmax_mhz") else "-"
            out.append(f"| {r['design']} | {r['target']} | {f'{area:,.0f}' if area else '-'} | {ratio} | "
                       f"{r.get('critical_path_ns', '-')} | {fmax or '-'} | {fratio} | "
                       f"{r.get('luts', '-')} | {r.get('ffs', '-')} | {r.get('dsps', '-')} |")
    grid = data["dual"]
    pick = {(r["density_a"], r["density_b"]): r for r in grid}
    out += ["", f"## Dual-side: GEMM {args.gemm}^3, 4x4 multipliers, 32x32 tile, against the dense "
            "4x4 2D-Matrix", "",
            "Speedup (rows: density of A, columns: density of B); plot: `sparse_dualside.png`.", "",
            "| A \\ B | " + " | ".join(f"{d:.0%}" for d in DENSITIES) + " |",
            "| --- |" + " --- |" * len(DENSITIES)]
    for da in DENSITIES:
        out.append(f"| {da:.0%} | " + " | ".join(f"{pick[da, db]['speedup']:.2f}" for db in DENSITIES) + " |")
    band = [r for r in grid if 0.25 <= r["density_a"] <= 0.5 and 0.25 <= r["density_b"] <= 0.5]
    below = [r for r in grid if r["density_a"] * r["density_b"] < 0.5]
    worst = min(band, key=lambda r: r["fraction_of_ideal"])
    slow = [r for r in below if r["speedup"] <= 1]
    out += ["", f"- 25 % x 25 %: {pick[0.25, 0.25]['speedup']:.2f}x (ideal "
            f"{pick[0.25, 0.25]['ideal']:.0f}x); 50 % x 50 %: {pick[0.5, 0.5]['speedup']:.2f}x "
            f"(ideal {pick[0.5, 0.5]['ideal']:.0f}x); 10 % x 10 %: {pick[0.1, 0.1]['speedup']:.2f}x.",
            f"- Floor >= 0.6 x ideal for densities in 25-50 %: worst "
            f"{worst['fraction_of_ideal']:.2f} at {worst['density_a']:.0%} x {worst['density_b']:.0%} "
            f"({'met' if worst['fraction_of_ideal'] >= 0.6 else 'missed'}).",
            "- Faster than dense wherever dA x dB < 0.5: "
            + ("met at all " + str(len(below)) + " points" if not slow else
               "missed at " + ", ".join(f"{r['density_a']:.0%} x {r['density_b']:.0%}" for r in slow)) + ".",
            "", "Tile size on the same 4x4 grid (each pass costs `ceil(nnz / 4)` per side, so "
            "small tiles lose to rounding, and the ideal is bounded by the peak tile / grid):", "",
            "| tile | density A = B | speedup | ideal | of ideal |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {r['tile']}x{r['tile']} | {r['density']:.0%} | {r['speedup']:.2f}x | {r['ideal']:g}x | "
            f"{r['fraction_of_ideal']:.2f} |" for r in data["tile_sweep"]]
    out += ["", "Cycle counts come from the engines' cycle models (`NMGeometry`, `BitmapGeometry`), "
            "which the cocotb simulations check against the CYCLES register exactly; each tile job "
            "includes its readout. ASIC: sky130 HD, `abc -D 5000`, OpenSTA; ECP5: LFE5U-85F via "
            "nextpnr (scan harness included)."]
    if data.get("not_measured"):
        out += ["", data["not_measured"]]
    write("sparse", data, "\n".join(out),
          (sweep_command("sparse_speedup.py", args) if not args.skip_synth
           else "python benchmarks/sparse_speedup.py --skip-synth") + f" --gemm {args.gemm}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_arguments(parser, "sparse.yaml")
    parser.add_argument("--gemm", type=int, default=256, help="M = N = K of the GEMMs (>= 256)")
    parser.add_argument("--skip-synth", action="store_true",
                        help="cycle figures only (the sweep is not run)")
    args = parser.parse_args()
    sweep = None if args.skip_synth else load_benchmark_sweep(args.sweep)
    rng = np.random.default_rng(2021)
    data = {"title": "Sparse engines vs dense engines", "machine": machine(),
            "nm": nm_table(args.gemm, rng), "dual": dual_grid(args.gemm, rng),
            "tile_sweep": tile_sweep(args.gemm, rng)}
    plot(data["dual"], RESULTS / "sparse_dualside.png")
    if not args.skip_synth:
        sweep, run = run_benchmark_sweep(args, sweep)
        rows = []
        for p, records in synthesised_points(sweep, run):
            rows += synth_rows(p, records, design=design_name(p.values or {**sweep.base, **p.axes}))
        data["synth"], data["not_measured"] = without_excluded(rows, lambda r: r["design"])
    write_all(data, args)


if __name__ == "__main__":
    main()
