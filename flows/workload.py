"""Workloads through the driver, checked against the golden models: a GEMM on a GEMM engine's
SoC, a view of a scene on a rasteriser's. ``accelsmith run`` and the sweep's ``run`` step both
call these, so a sweep measures exactly what a user runs.

Each returns a plain record (numbers and the driver's result object) and never raises for a
mismatch: a result that differs from the model is a finding, reported with its first element.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def random_operands(geometry, m: int, k: int, n: int, seed: int, density: float = 1.0):
    """A (m x k) and B (k x n), uniform over the engine's operand formats; each element kept
    non-zero with probability ``density`` (dual-side sparse engines skip the zeros)."""
    rng = np.random.default_rng(seed)
    a_fmt, b_fmt = geometry.a_fmt, geometry.b_fmt
    A = rng.integers(a_fmt.min, a_fmt.max + 1, (m, k)) * (rng.random((m, k)) < density)
    B = rng.integers(b_fmt.min, b_fmt.max + 1, (k, n)) * (rng.random((k, n)) < density)
    return A.astype(np.int64), B.astype(np.int64)


def run_gemm(acc, A, B, prune: bool = False, progress: Callable | None = None) -> dict:
    """``C = A @ B`` on ``acc``; the record holds the driver's :class:`GemmResult` (``result``)
    and whether C equals the golden model (``bit_exact``, else ``mismatch``: how many elements
    differ and the first)."""
    result = acc.gemm(A, B, prune=prune, progress=progress)
    want = acc.golden(A, B, prune=prune)
    record = {"result": result, "bit_exact": bool(np.array_equal(result.C, want))}
    if not record["bit_exact"]:
        bad = np.argwhere(result.C != want)
        r, c = bad[0]
        record["mismatch"] = (f"{len(bad)} elements differ; first C[{r}][{c}] = {result.C[r, c]}, "
                              f"golden {want[r, c]}")
    return record


def prepare_view(config, scene_path, camera: int, region=None, sorter=None, depth_weight=None,
                 background=(0.0, 0.0, 0.0), say: Callable = lambda msg: None) -> dict:
    """The host's part of a view, before any hardware: the scene loaded, the camera and region
    checked (x, y, w, h; default the whole image), projected, binned and quantised, the weights
    of the sorter network (``sorter``), ``depth_weight`` or 1 from the fixed-point model."""
    from accelsmith.models.gaussian import fixed
    from accelsmith.models.gaussian.pipeline import fixed_view, load_scene
    from accelsmith.models.gaussian.scene import SceneError

    scene, cams = load_scene(scene_path)
    if not 0 <= camera < len(cams):
        raise SceneError(f"{scene_path}: camera {camera} does not exist; allowed 0..{len(cams) - 1}")
    cam = cams[camera]
    x, y, w, h = region = tuple(region or (0, 0, cam.width, cam.height))
    if x + w > cam.width or y + h > cam.height:
        raise SceneError(f"region {x},{y},{w},{h} reaches beyond the {cam.width}x{cam.height} "
                         f"image of camera {camera} of {scene_path}")
    bins, fv, w_q = fixed_view(scene, cam, sorter, depth_weight, say, "run")
    network = bool(sorter) and config.values["network"]
    if sorter and not network:
        say(f"note: {config.source} has no network mode (network: false): the sorter network's "
            f"weights are computed on the host (mlp_fixed)")
    return {"scene": scene, "camera": cam, "region": region, "bins": bins, "fv": fv, "w_q": w_q,
            "sorter": sorter if network else None, "background": tuple(background),
            "background_q": tuple(int(round(v * (1 << fixed.COLOUR_FRAC))) for v in background),
            "blend": config.values["blend"], "gaussians": len(bins.proj)}


def render_view(acc, view: dict, progress: Callable | None = None,
                network_progress: Callable | None = None) -> dict:
    """A prepared view (:func:`prepare_view`) on a rasteriser SoC: the sorter network on the
    hardware's network mode where the view has one, then every tile of its region. The record
    holds the :class:`FrameResult` (``result``), the network's (``network``, or None), whether
    each equals the fixed-point model (``network_exact``, ``bit_exact``, else ``mismatch``) and
    the PSNR against the sorted float render (``psnr_db``)."""
    from accelsmith.models.gaussian import fixed
    from accelsmith.models.gaussian.metrics import psnr
    from accelsmith.models.gaussian.render import bin_tiles, project, render_sorted
    from accelsmith.sw_driver.gaussian import tiles_in

    bins, fv, w_q, region = view["bins"], view["fv"], view["w_q"], view["region"]
    x, y, w, h = region
    record = {"region": region, "gaussians": view["gaussians"], "network": None,
              "network_exact": None}
    if view["sorter"]:
        from accelsmith.models.gaussian.sorter import SorterMLP

        net = acc.network_weights(fixed.quantise_mlp(SorterMLP.load(view["sorter"])), fv.features,
                                  progress=network_progress)
        record["network"] = net
        record["network_exact"] = bool(np.array_equal(net.w_q, w_q))
        if not record["network_exact"]:
            bad = np.flatnonzero(net.w_q != w_q)
            record["mismatch"] = (f"the network mode's weights differ from mlp_fixed for {len(bad)} "
                                  f"Gaussians; first Gaussian {bad[0]}: {net.w_q[bad[0]]}, model "
                                  f"{w_q[bad[0]]}")
            record["bit_exact"] = False
            return record
    result = acc.rasterise(bins, fv, w_q, view["background_q"], region, progress=progress)
    record["result"] = result
    ref = fixed.render_fixed(bins, fv, w_q, view["blend"], view["background_q"],
                             tiles=tiles_in(bins, region))[y:y + h, x:x + w]
    sorted_ref = render_sorted(bin_tiles(project(view["scene"], view["camera"])),
                               view["background"])[y:y + h, x:x + w]
    record["psnr_db"] = float(psnr(fixed.to_float(result.image_q), sorted_ref))
    record["bit_exact"] = bool(np.array_equal(result.image_q, ref))
    if not record["bit_exact"]:
        bad = np.argwhere(result.image_q != ref)
        r, c, ch = bad[0]
        record["mismatch"] = (f"{len(bad)} values differ from render_fixed; first pixel "
                              f"({x + c}, {y + r}) channel {ch}: {result.image_q[r, c, ch]}, "
                              f"model {ref[r, c, ch]}")
    return record
