"""3DGS algorithm layer on the garden scene: renderer speed, order-independent blending quality
(both blends x four weightings on held-out views), axis-oriented operation counts, tile-schedule
fetch counts and fixed-point vs float quality, all in one run.

    python benchmarks/gaussian_models.py [--steps 300] [--views 10]

Writes docs/results/gaussian.{json,md}, the loss curves, the schedule plot and the pictures of
docs/gaussian.md (docs/results/gaussian_*.png); progress on stderr. Held-out views are the
file's cameras 0-2; training views lie on the path between and around them, never on them.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, progress, write  # noqa: E402

from accelsmith.models.gaussian import axis, fixed, oit, schedule, sorter  # noqa: E402
from accelsmith.models.gaussian.metrics import psnr, ssim  # noqa: E402
from accelsmith.models.gaussian.pipeline import (evaluate, load_scene, plot_losses,  # noqa: E402
                                                 save_png, training_cameras)
from accelsmith.models.gaussian.render import bin_tiles, project, render_sorted  # noqa: E402

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_garden.npz"
CAPACITIES = (256, 1024, 4096, 16384)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def speed(scene, cams):
    rows = []
    for ci, cam in enumerate(cams):
        proj, t_proj = timed(project, scene, cam)
        bins, t_bin = timed(bin_tiles, proj)
        _, t_sorted = timed(render_sorted, bins)
        _, t_oit = timed(oit.render_oit, bins, np.ones(len(proj)))
        fv = fixed.quantise_view(proj)
        _, t_fixed = timed(fixed.render_fixed, bins, fv, np.full(len(proj), fixed.ONE16))
        rows.append({"camera": ci, "gaussians_in_view": len(proj), "tile_entries": len(bins.entries),
                     "project_s": t_proj, "bin_s": t_bin, "sorted_s": t_sorted, "oit_s": t_oit,
                     "fixed_s": t_fixed})
        progress(f"speed camera {ci}: {rows[-1]}")
    return rows


def train_all(scene, train_cams, args):
    trained = {}
    for blend in oit.BLENDS:
        fits = sorter.fit_weightings(scene, train_cams, blend, args.steps, args.lr,
                                     args.pixel_fraction, finetune=True, seed=args.seed,
                                     progress=progress)
        for name, res in fits.items():
            trained[(name, blend)] = res
    return trained


def schedules(scene, cams):
    rows = []
    for ci, cam in enumerate(cams):
        bins = bin_tiles(project(scene, cam))
        distinct = len(np.unique(bins.entries))
        for name in schedule.ORDERS:
            order = schedule.tile_order(name, bins.proj.tiles_x, bins.proj.tiles_y)
            for cap in CAPACITIES:
                f = schedule.count_fetches(bins, order, cap)
                rows.append({"camera": ci, "order": name, "capacity": cap, "fetches": f,
                             "entries": len(bins.entries), "distinct": distinct})
            progress(f"schedule camera {ci} {name}: "
                     + ", ".join(f"S={r['capacity']}: {r['fetches']:,}" for r in rows[-4:]))
    return rows


def plot_schedules(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in schedule.ORDERS:
        ys = [sum(r["fetches"] for r in rows if r["order"] == name and r["capacity"] == c)
              for c in CAPACITIES]
        ax.plot(CAPACITIES, ys, marker="o", label=name)
    lower = sum(r["distinct"] for r in rows if r["order"] == "raster" and r["capacity"] == 256)
    ax.axhline(lower, color="grey", ls="--", label="each Gaussian once")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("on-chip Gaussian buffer S (entries, LRU)")
    ax.set_ylabel("off-chip Gaussian fetches, cameras 0-2")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fixed_vs_float(scene, cams, trained, tuned_scenes):
    rows = []
    for blend in oit.BLENDS:
        for name in ("mlp", "mlp+finetune"):
            mlp = trained[(name, blend)].mlp
            q = fixed.quantise_mlp(mlp)
            sc = tuned_scenes.get((name, blend), scene)
            for ci, cam in enumerate(cams):
                bins = bin_tiles(project(sc, cam))
                ref = oit.render_oit(bins, mlp.weights(bins.proj), blend)
                fv = fixed.quantise_view(bins.proj, mlp.depth_scale)
                img = fixed.to_float(fixed.render_fixed(bins, fv, fixed.mlp_fixed(q, fv.features),
                                                        blend))
                rows.append({"camera": ci, "blend": blend, "weighting": name,
                             "psnr": psnr(img, ref), "ssim": ssim(img, ref),
                             "max_abs_error": float(np.abs(img - ref).max())})
                progress(f"fixed vs float {blend} {name} camera {ci}: {rows[-1]['psnr']:.2f} dB")
    return rows


def pictures(scene, cam, trained, name="mlp", blend="coverage"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = bin_tiles(project(scene, cam))
    mlp = trained[(name, blend)].mlp
    ref = render_sorted(bins)
    oit_img = oit.render_oit(bins, mlp.weights(bins.proj), blend)
    fv = fixed.quantise_view(bins.proj, mlp.depth_scale)
    fix = fixed.to_float(fixed.render_fixed(
        bins, fv, fixed.mlp_fixed(fixed.quantise_mlp(mlp), fv.features), blend))
    for tag, img in (("sorted", ref), ("oit", oit_img), ("fixed", fix)):
        save_png(img, RESULTS / f"gaussian_cam0_{tag}.png")
    err = np.abs(oit_img - ref).mean(axis=2)
    fig, axs = plt.subplots(2, 2, figsize=(12, 8.2))
    for ax, img, title in ((axs[0, 0], ref, "sorted reference (3DGS)"),
                           (axs[0, 1], oit_img, f"order-independent, {blend} blend, trained MLP "
                            f"({psnr(oit_img, ref):.2f} dB)"),
                           (axs[1, 0], fix, f"fixed-point model ({psnr(fix, oit_img):.2f} dB "
                            "vs float OIT)")):
        ax.imshow(np.clip(img, 0, 1))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    im = axs[1, 1].imshow(err, cmap="inferno", vmin=0, vmax=max(0.05, float(err.max())))
    axs[1, 1].set_title("|OIT - sorted|, mean over RGB", fontsize=10)
    axs[1, 1].axis("off")
    fig.colorbar(im, ax=axs[1, 1], fraction=0.035)
    fig.tight_layout()
    fig.savefig(RESULTS / "gaussian_cam0_side_by_side.png", dpi=110)
    plt.close(fig)


def table(data) -> str:
    lines = ["## Reference renderer speed (648x420, NumPy float64, one core)", "",
             "| camera | Gaussians in view | tile entries | project | bin + sort | sorted render "
             "| OIT render | fixed-point render |", "|---|---|---|---|---|---|---|---|"]
    for r in data["speed"]:
        lines.append(f"| {r['camera']} | {r['gaussians_in_view']:,} | {r['tile_entries']:,} | "
                     f"{r['project_s']:.2f} s | {r['bin_s']:.2f} s | {r['sorted_s']:.2f} s | "
                     f"{r['oit_s']:.2f} s | {r['fixed_s']:.2f} s |")
    lines += ["", "## Order-independent blending against the sorted reference (held-out views)", "",
              f"Training: {data['params']['views']} views between and around cameras 0-2, "
              f"{data['params']['steps']} Adam steps, {data['params']['pixel_fraction']:.0%} of "
              "each view's pixels, MSE loss. Analytic weight exp(-a d^b) with (a, b) fitted on "
              "the same training views: " + "; ".join(
                  f"{b}: a = {v[0]:.3g}, b = {v[1]:.3g}" for b, v in data["analytic"].items()),
              "", "| blend | weighting | PSNR cam 0 | cam 1 | cam 2 | SSIM cam 0 | cam 1 | cam 2 |",
              "|---|---|---|---|---|---|---|---|"]
    for blend in oit.BLENDS:
        for name in ("w=1", "analytic", "mlp", "mlp+finetune"):
            rs = sorted((r for r in data["quality"] if r["blend"] == blend
                         and r["weighting"] == name), key=lambda r: r["camera"])
            lines.append(f"| {blend} | {name} | " + " | ".join(f"{r['psnr']:.2f} dB" for r in rs)
                         + " | " + " | ".join(f"{r['ssim']:.4f}" for r in rs) + " |")
    c = data["ops"]
    lines += ["", "## Exponent evaluation: multiplies and adds (counting rule in "
              "`models/gaussian/axis.py`)", "",
              "| form | per pair (mul + add) | per frame, camera 0 | reduction |", "|---|---|---|---|"]
    for form in ("standard", "axis", "axis_fd"):
        r = c[form]
        lines.append(f"| {form} | {r['per_pair']:.2f} | {r['frame_mul']:,} mul + {r['frame_add']:,} "
                     f"add | {r['reduction']:.1%} |")
    lines += ["", "## Off-chip Gaussian fetches per frame by tile order and buffer size (LRU)", "",
              "| order | " + " | ".join(f"S = {s}" for s in CAPACITIES) + " |",
              "|---|" + "---|" * len(CAPACITIES)]
    for name in schedule.ORDERS:
        lines.append(f"| {name} | " + " | ".join(
            f"{sum(r['fetches'] for r in data['schedule'] if r['order'] == name and r['capacity'] == s):,}"
            for s in CAPACITIES) + " |")
    lines += ["", f"Sums over cameras 0-2 ({sum(r['entries'] for r in data['schedule'] if r['order'] == 'raster' and r['capacity'] == 256):,} "
              f"tile entries, {sum(r['distinct'] for r in data['schedule'] if r['order'] == 'raster' and r['capacity'] == 256):,} "
              f"distinct Gaussians). Fewest fetches: **{data['best_order']}**.", "",
              "![fetches](gaussian_schedule.png)", "",
              "## Fixed-point model against the float order-independent render", "",
              "| blend | weighting | camera | PSNR | SSIM | max abs error |", "|---|---|---|---|---|---|"]
    for r in data["fixed"]:
        lines.append(f"| {r['blend']} | {r['weighting']} | {r['camera']} | {r['psnr']:.2f} dB | "
                     f"{r['ssim']:.5f} | {r['max_abs_error']:.4f} |")
    lines += ["", "![loss](gaussian_loss.png)"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(GARDEN))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--views", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--pixel-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scene, cams = load_scene(args.scene)
    data = {"title": "3DGS models on the garden scene", "machine": machine(),
            "params": vars(args)}
    data["speed"] = speed(scene, cams)
    data["ops"] = {}
    entries = data["speed"][0]["tile_entries"]
    counts, red = axis.op_counts(entries), axis.reduction()
    for form, oc in counts.items():
        data["ops"][form] = {"per_pair": oc.total / (entries * 256), "frame_mul": oc.mul,
                             "frame_add": oc.add, "reduction": red.get(form, 0.0)}
    data["schedule"] = schedules(scene, cams)
    totals = {n: sum(r["fetches"] for r in data["schedule"] if r["order"] == n)
              for n in schedule.ORDERS}
    data["best_order"] = min(totals, key=totals.get)
    plot_schedules(data["schedule"], RESULTS / "gaussian_schedule.png")
    trained = train_all(scene, training_cameras(cams, args.views), args)
    data["analytic"] = {b: trained[("analytic", b)][:2] for b in oit.BLENDS}
    plot_losses({f"{b}, {n}": r.losses for (n, b), r in trained.items() if n != "analytic"},
                RESULTS / "gaussian_loss.png")
    tuned = {(n, b): sorter.finetuned_scene(scene, trained[(n, b)])
             for n, b in trained if n == "mlp+finetune"}
    weightings = {
        "w=1": lambda b: lambda p: np.ones(len(p)),
        "analytic": lambda b: lambda p: oit.depth_weight(p.depth, *data["analytic"][b]),
        "mlp": lambda b: trained[("mlp", b)].mlp.weights,
        "mlp+finetune": lambda b: trained[("mlp+finetune", b)].mlp.weights,
    }
    data["quality"] = [r.__dict__ for r in evaluate(
        scene, cams, weightings, scenes=tuned,
        progress=lambda r: progress(f"held-out camera {r.camera} {r.blend} {r.weighting}: "
                                    f"{r.psnr:.2f} dB, SSIM {r.ssim:.4f}"))]
    data["fixed"] = fixed_vs_float(scene, cams, trained, tuned)
    pictures(scene, cams[0], trained)
    for (n, b), res in trained.items():
        if n != "analytic":
            sorter.save_result(RESULTS / f"gaussian_sorter_{b}_{n.replace('+', '_')}.npz", res, scene)
    data["losses"] = {f"{b} {n}": res.losses for (n, b), res in trained.items() if n != "analytic"}
    cmd = "python benchmarks/gaussian_models.py " + " ".join(sys.argv[1:])
    write("gaussian", data, table(data), cmd.strip())


if __name__ == "__main__":
    main()
