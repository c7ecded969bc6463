"""Scene loading, training/held-out camera split and evaluation, shared by the CLI
(``accelsmith render`` / ``train-sorter``) and the benchmarks."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import oit
from .camera import Camera, interpolate, load_npz, orbit
from .metrics import psnr, ssim
from .render import bin_tiles, project, render_sorted
from .scene import SceneError, read_ply


def load_scene(path, init: str = "knn", seed: int = 0, width: int = 648, height: int = 420):
    """``(scene, cameras)`` of a gsplat-style ``.npz`` (its own cameras) or a 3DGS ``.ply``
    (eight cameras orbiting the scene's median point, as it has none)."""
    path = Path(path)
    if path.suffix == ".npz":
        return load_npz(path, init=init, seed=seed)
    if path.suffix == ".ply":
        scene = read_ply(path)
        centre = np.median(scene.means, axis=0)
        spread = np.percentile(np.linalg.norm(scene.means - centre, axis=1), 90)
        f = 0.9 * width
        like = Camera(np.eye(4), f, f, width / 2, height / 2, width, height)
        return scene, orbit(centre, 2.5 * spread, 0.5 * spread, 8, like)
    raise SceneError(f"{path}: unknown scene format '{path.suffix}'; allowed: .npz (gsplat "
                     "points with cameras) or .ply (3DGS Gaussians)")


def training_cameras(held_out: list[Camera], n: int) -> list[Camera]:
    """``n`` training cameras on the path through the held-out cameras, never equal to one:
    evenly spaced path positions from a quarter segment before the first to a quarter segment
    after the last, moved off any held-out position."""
    if len(held_out) < 2:
        raise SceneError("training views need at least two cameras to move between")
    k = len(held_out)
    out = []
    for s in np.linspace(-0.25, k - 0.75, n):
        if abs(s - round(s)) < 0.05:
            s += 0.1
        i = int(np.clip(np.floor(s), 0, k - 2))
        out.append(interpolate(held_out[i], held_out[i + 1], s - i))
    return out


@dataclass
class ViewEval:
    camera: int
    blend: str
    weighting: str
    psnr: float
    ssim: float


def evaluate(scene, cameras, weightings: dict, blends=oit.BLENDS, background=(0, 0, 0),
             progress=None, scenes: dict | None = None) -> list[ViewEval]:
    """PSNR/SSIM of order-independent renders against the sorted reference on ``cameras``.

    ``weightings`` maps a name to ``(blend) -> (projection -> weights)``; ``scenes``
    optionally maps ``(name, blend)`` to a different scene (e.g. fine-tuned) for that row."""
    rows = []
    for ci, cam in enumerate(cameras):
        bins = bin_tiles(project(scene, cam))
        ref = render_sorted(bins, background)
        for blend in blends:
            for name, make in weightings.items():
                alt = (scenes or {}).get((name, blend))
                b = bin_tiles(project(alt, cam)) if alt is not None else bins
                img = oit.render_oit(b, make(blend)(b.proj), blend, background)
                rows.append(ViewEval(ci, blend, name, psnr(img, ref), ssim(img, ref)))
                if progress:
                    progress(rows[-1])
    return rows


def _sorter(sorter, scene, say):
    """The sorter network of a ``sorter.npz`` (or None) and the scene to render with it (its
    fine-tuned opacities and colours, when the file holds them)."""
    from .sorter import SorterMLP, tuned_scene

    mlp = SorterMLP.load(sorter) if sorter else None
    if mlp is not None and (tuned := tuned_scene(sorter, scene)) is not None:
        say(f"note: {sorter} holds fine-tuned opacities and colours; rendering with them")
        scene = tuned
    return mlp, scene


def _weights(bins, mlp, depth_weight, what: str, say):
    if mlp is not None:
        return mlp.weights(bins.proj)
    if depth_weight:
        return oit.depth_weight(bins.proj.depth, *depth_weight)
    say(f"note: {what} without --sorter or --depth-weight: every Gaussian gets weight 1 "
        "(no sorting network); give --sorter sorter.npz from train-sorter for the trained weights")
    return np.ones(len(bins.proj))


def fixed_view(scene, camera, sorter=None, depth_weight=None, say=None, what="--mode fixed"):
    """A view as the fixed-point model and the rasteriser take it: ``(bins, fv, w_q)``, the
    binned projection, its integer records and the Q.16 weights (the quantised sorter network
    :func:`~.fixed.mlp_fixed` of ``sorter``, else ``depth_weight`` or 1, as :func:`render_view`)."""
    from . import fixed

    say = say or (lambda msg: None)
    mlp, scene = _sorter(sorter, scene, say)
    bins = bin_tiles(project(scene, camera))
    fv = fixed.quantise_view(bins.proj, mlp.depth_scale if mlp else 0.125)
    if mlp is not None:
        w_q = fixed.mlp_fixed(fixed.quantise_mlp(mlp), fv.features)
    else:
        w_q = np.round(_weights(bins, None, depth_weight, what, say)
                       * fixed.ONE16).astype(np.int64)
    return bins, fv, w_q


def render_view(scene, camera, mode: str = "sorted", blend: str = "coverage", sorter=None,
                depth_weight=None, background=(0.0, 0.0, 0.0), say=None):
    """One view the way ``accelsmith render`` draws it: ``(image, bins)``.

    ``mode`` is ``sorted`` (the reference), ``oit`` (order-independent, float) or ``fixed`` (the
    bit-accurate fixed-point model). Weights: the network of ``sorter`` (a ``sorter.npz`` path),
    else ``exp(-a depth^b)`` for ``depth_weight = (a, b)``, else 1 (``say`` is told). A sorter file
    holding fine-tuned opacities and colours makes oit/fixed render the tuned scene."""
    from . import fixed

    say = say or (lambda msg: None)
    if mode == "sorted":
        bins = bin_tiles(project(scene, camera))
        return render_sorted(bins, background), bins
    if mode == "fixed":
        bins, fv, w_q = fixed_view(scene, camera, sorter, depth_weight, say)
        bg_q = np.round(np.array(background) * (1 << fixed.COLOUR_FRAC)).astype(int)
        return fixed.to_float(fixed.render_fixed(bins, fv, w_q, blend, bg_q)), bins
    mlp, scene = _sorter(sorter, scene, say)
    bins = bin_tiles(project(scene, camera))
    weights = _weights(bins, mlp, depth_weight, f"--mode {mode}", say)
    return oit.render_oit(bins, weights, blend, background), bins


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(img: np.ndarray, path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(img)).save(path)
    return path


def plot_losses(curves: dict, path) -> Path:
    """Training-loss curves (name -> per-step losses) on a log scale, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, losses in curves.items():
        ax.semilogy(np.arange(1, len(losses) + 1), losses, label=name, lw=1)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("training MSE vs sorted reference")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
