"""Order-independent ("neural sorting") blending: no per-tile sort, only binning.

Per pair the visibility is v = min(0.999, opacity * exp(power)), skipped below 1/255, and each
Gaussian carries a per-view weight w_g (1, an analytic depth falloff, or the sorter MLP of
:mod:`.sorter`). Two blends:

* ``authors`` -- the seed paper's: pixel = sum(c v w) / (sum(v w) + 1e-10);
* ``coverage`` -- weighted-blended OIT (McGuire & Bavoil, JCGT 2013): the same normalised
  colour times the coverage 1 - prod(1 - v), plus background * prod(1 - v). The product is
  order-independent too, so neither blend needs sorting.
"""

import numpy as np

from .render import ALPHA_MIN, TileBins

V_MAX = 0.999
EPS = 1e-10
BLENDS = ("authors", "coverage")


def visibility(opacity: np.ndarray, power: np.ndarray) -> np.ndarray:
    """v = min(0.999, opacity * exp(power)), 0 where power > 0 or v < 1/255."""
    v = np.minimum(V_MAX, opacity[:, None] * np.exp(np.minimum(power, 0.0)))
    v[(power > 0) | (v < ALPHA_MIN)] = 0.0
    return v


def depth_weight(depth: np.ndarray, a: float, b: float) -> np.ndarray:
    """The analytic weight exp(-a depth^b)."""
    return np.exp(-a * np.power(depth, b))


def blend(blend: str, sum_cw, sum_w, log_t, background) -> np.ndarray:
    """Pixel colours from the three order-independent per-pixel sums: sum(c v w) (P, 3),
    sum(v w) (P,) and sum(log(1 - v)) (P,)."""
    colour = sum_cw / (sum_w + EPS)[:, None]
    if blend == "authors":
        return colour
    if blend == "coverage":
        t = np.exp(log_t)[:, None]
        return colour * (1.0 - t) + t * np.asarray(background, np.float64)
    raise ValueError(f"blend '{blend}' is not known; allowed: {', '.join(BLENDS)}")


def render_oit(bins: TileBins, weights: np.ndarray, blend_mode: str = "coverage",
               background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """The order-independent image (H, W, 3); ``weights`` (M,) per projected Gaussian."""
    proj = bins.proj
    cam = proj.camera
    n_pix = cam.height * cam.width
    sum_cw, sum_w, log_t = np.zeros((n_pix, 3)), np.zeros(n_pix), np.zeros(n_pix)
    weights = np.asarray(weights, np.float64)
    for t in range(len(bins)):
        rows = bins.tile(t)
        if len(rows) == 0:
            continue
        power, flat = bins.power(t, rows)
        v = visibility(proj.opacity[rows], power)
        vw = v * weights[rows, None]
        sum_cw[flat] = vw.T @ proj.colour[rows]
        sum_w[flat] = vw.sum(axis=0)
        log_t[flat] = np.log1p(-v).sum(axis=0)
    return blend(blend_mode, sum_cw, sum_w, log_t, background).reshape(cam.height, cam.width, 3)
