"""Bit-accurate fixed-point model of the rasteriser datapath (the hardware's golden model).

Integer in, integer out: the per-view set-up (projection, SH, network inputs) is quantised once
per Gaussian by :func:`quantise_view`; from there on every value is an integer and every
operation an integer add, multiply, shift, compare or table look-up, with the rounding and
saturation stated here. ``Q.f`` means an integer holding value * 2^f.

Per Gaussian (inputs, :class:`FixedView`):

=================  ==========================================================================
mean x, y          signed Q.8 pixels (MEAN_FRAC), saturated to +-2^23
conic a, b, c      a, c unsigned Q.24, b signed Q.24 (CONIC_FRAC); a, c <= 1/0.3 (dilation)
opacity            unsigned Q.16 (0..65535)
colour             unsigned Q.12 per channel (COLOUR_FRAC), saturated to [0, 4)
network inputs     signed Q.8 (ACT_FRAC) int16: depth * depth_scale, forward x/y/z, opacity
=================  ==========================================================================

Per tile entry (set-up, :func:`axis_terms_fixed`): dx_i, dy_j exact in Q.8 (saturated to
+-2^20, i.e. 4096 pixels); A_i = -(a dx_i^2) / 2, C_j likewise, B_i = -b dx_i, all Q.12
(POWER_FRAC), each product rounded half up at its final shift.

Per pixel and Gaussian:

* power = A_i + C_j + round(B_i dy_j / 2^8), Q.12, saturated to [-16, 0];
* exp(power) = 2^(y) with y = power * log2(e): the integer part is a right shift, the fraction
  indexes a 257-entry table of 2^(-k/256) in Q.16 (EXP_TABLE), nearest entry; relative error
  <= 2^(1/512) - 1 (+ one Q.16 LSB), checked by the tests;
* v = min(0.999, opacity * exp) in Q.16, rounded; the pair is skipped when 255 v < 1 (v < 1/255);
* w_g from the network (:func:`mlp_fixed`, Q.16, at most 1.0; larger values count as 1.0);
  vw = round(v w / 2^16);
* -log2(1 - v) by leading-one position + a 256-entry mantissa table (truncated mantissa),
  Q.12 (LOG_FRAC); error <= log2(1 + 2^-8) + 2^-13.

Per pixel accumulators (order-independent integer sums, so any Gaussian order gives the same
bits): sum(vw) Q.16 (32 bits), sum(vw colour) Q.28 (48 bits), sum(-log2(1 - v)) Q.12 (32
bits). Output: T = 2^(-sum log) via the exp table, Q.16; colour = round(sum(vw c) / sum(vw))
(0 when sum(vw) = 0), then for the coverage blend colour * (1 - T) + T * background, rounded;
the pixel is Q.12 per channel, saturated to [0, 2^16).

The network (:class:`QuantMLP`): weights signed ``bits`` (default 8) with a power-of-two scale
per layer, biases at the accumulator's scale, accumulation exact, LeakyReLU as an arithmetic
shift right by 3, re-quantisation to Q.8 by a rounding shift with saturation to int16, sigmoid
by a 256-entry table over [-8, 8) with linear interpolation, output Q.16.
"""

from dataclasses import dataclass

import numpy as np

from .render import TILE, TileBins
from .oit import BLENDS

MEAN_FRAC = 8
CONIC_FRAC = 24
POWER_FRAC = 12
COLOUR_FRAC = 12
ACT_FRAC = 8
LOG_FRAC = 12
ONE16 = 1 << 16
V_MAX_Q = round(0.999 * ONE16)
POWER_MIN = -16 << POWER_FRAC
DX_LIMIT = 1 << 20
LOG2E_Q15 = round(np.log2(np.e) * (1 << 15))

EXP_TABLE = np.round(2.0 ** (-np.arange(257) / 256.0) * ONE16).astype(np.int64)
LOG_TABLE = np.round(np.log2(1.0 + np.arange(256) / 256.0) * (1 << LOG_FRAC)).astype(np.int64)
SIG_TABLE = np.round(1.0 / (1.0 + np.exp(-(np.arange(257) / 16.0 - 8.0))) * ONE16).astype(np.int64)


def rshift_round(x, s: int):
    """x / 2^s rounded half up (an adder and a shift in hardware)."""
    return (x + (1 << (s - 1))) >> s if s > 0 else x << (-s)


def exp2_neg(y_q):
    """2^(-y) for y >= 0 in Q.12, result Q.16 (0 when the shift passes 16 bits)."""
    y_q = np.asarray(y_q, dtype=np.int64)
    n = y_q >> POWER_FRAC
    idx = rshift_round(y_q & ((1 << POWER_FRAC) - 1), POWER_FRAC - 8)  # 0..256
    return np.where(n > 16, 0, EXP_TABLE[idx] >> np.minimum(n, 16))


def exp_fixed(power_q):
    """exp(power) for power <= 0 in Q.12, result Q.16."""
    y = rshift_round(-np.asarray(power_q, np.int64) * LOG2E_Q15, 15)
    return exp2_neg(y)


def neg_log2_one_minus(v_q):
    """-log2(1 - v) for v in Q.16 (v <= 0.999), result Q.12: the leading one of u = 1 - v gives
    the integer part, the next 8 bits index LOG_TABLE."""
    u = ONE16 - np.asarray(v_q, np.int64)
    e = np.floor(np.log2(np.maximum(u, 1))).astype(np.int64)  # leading-one position
    mant = np.where(e >= 8, u >> np.maximum(e - 8, 0), u << np.maximum(8 - e, 0)) & 0xFF
    return ((16 - e) << LOG_FRAC) - LOG_TABLE[mant]


@dataclass
class QuantMLP:
    """The sorter network as the hardware holds it (see the module doc)."""

    w: list
    w_frac: list
    b: list
    depth_scale: float
    bits: int

    def to_json(self) -> dict:
        return {"bits": self.bits, "act_frac": ACT_FRAC, "depth_scale": self.depth_scale,
                "layers": [{"weights": w.tolist(), "weight_frac": f, "bias": b.tolist(),
                            "bias_frac": ACT_FRAC + f}
                           for w, f, b in zip(self.w, self.w_frac, self.b)]}


def quantise_mlp(mlp, bits: int = 8) -> QuantMLP:
    """Round each layer's weights to ``bits``-bit signed integers with the finest power-of-two
    scale that holds the largest, and biases to the accumulator's scale."""
    ws, fracs, bs = [], [], []
    hi = (1 << (bits - 1)) - 1
    for w, b in zip(mlp.w, mlp.b):
        peak = max(float(np.abs(w).max()), 1e-12)
        frac = int(np.floor(np.log2(hi / peak)))
        ws.append(np.clip(np.round(w * 2.0 ** frac), -hi - 1, hi).astype(np.int64))
        fracs.append(frac)
        bs.append(np.round(b * 2.0 ** (frac + ACT_FRAC)).astype(np.int64))
    return QuantMLP(ws, fracs, bs, mlp.depth_scale, bits)


def sat(x, lo, hi):
    return np.clip(x, lo, hi)


def mlp_fixed(q: QuantMLP, x_q: np.ndarray) -> np.ndarray:
    """Network outputs w in Q.16 for inputs ``x_q`` (M, 5) in Q.8."""
    h = np.asarray(x_q, np.int64)
    for i, (w, frac, b) in enumerate(zip(q.w, q.w_frac, q.b)):
        acc = h @ w + b  # Q.(8 + frac), exact
        if i < len(q.w) - 1:
            acc = np.where(acc >= 0, acc, acc >> 3)  # LeakyReLU 0.125
            h = sat(rshift_round(acc, frac), -(1 << 15), (1 << 15) - 1)
        else:
            z = sat(rshift_round(acc, frac), -8 << ACT_FRAC, (8 << ACT_FRAC) - 1)
            pos = z + (8 << ACT_FRAC)  # 0 .. 16 * 256 - 1, table step 1/16 = 16 LSB
            idx, frac16 = pos >> 4, pos & 15
            lo, hi = SIG_TABLE[idx], SIG_TABLE[idx + 1]
            return (lo + rshift_round((hi - lo) * frac16, 4))[:, 0]
    raise ValueError("network without layers")


@dataclass
class FixedView:
    """Integer per-Gaussian records of one view (rows of a :class:`~.render.Projection`)."""

    mean: np.ndarray
    conic: np.ndarray
    opacity: np.ndarray
    colour: np.ndarray
    features: np.ndarray


def quantise_view(proj, depth_scale: float = 0.125) -> FixedView:
    """Round a float projection to the rasteriser's input formats (round to nearest)."""
    q = lambda x, f: np.round(np.asarray(x) * (1 << f)).astype(np.int64)  # noqa: E731
    feats = np.empty((len(proj), 5))
    feats[:, 0] = proj.depth * depth_scale
    feats[:, 1:4] = proj.camera.forward[None, :]
    feats[:, 4] = proj.opacity
    return FixedView(
        mean=sat(q(proj.mean2d, MEAN_FRAC), -(1 << 23), (1 << 23) - 1),
        conic=q(proj.conic, CONIC_FRAC),
        opacity=sat(q(proj.opacity, 16), 0, ONE16 - 1),
        colour=sat(q(proj.colour, COLOUR_FRAC), 0, (4 << COLOUR_FRAC) - 1),
        features=sat(q(feats, ACT_FRAC), -(1 << 15), (1 << 15) - 1),
    )


def axis_terms_fixed(fv: FixedView, rows: np.ndarray, tx: int, ty: int):
    """Integer (A_i, B_i, C_j) in Q.12 and dy_j in Q.8 of a tile entry, each (len(rows), 16)."""
    centres = ((np.arange(TILE) << MEAN_FRAC) + (1 << (MEAN_FRAC - 1)))[None, :]
    dx = sat(fv.mean[rows, 0:1] - ((tx * TILE) << MEAN_FRAC) - centres, -DX_LIMIT, DX_LIMIT)
    dy = sat(fv.mean[rows, 1:2] - ((ty * TILE) << MEAN_FRAC) - centres, -DX_LIMIT, DX_LIMIT)
    a, b, c = (fv.conic[rows, i:i + 1] for i in range(3))
    sq_x = rshift_round(dx * dx, MEAN_FRAC)  # Q.8, < 2^32
    sq_y = rshift_round(dy * dy, MEAN_FRAC)
    shift = CONIC_FRAC + MEAN_FRAC - POWER_FRAC
    a_i = -rshift_round(a * sq_x, shift + 1)
    c_j = -rshift_round(c * sq_y, shift + 1)
    b_i = -rshift_round(b * dx, shift)
    return a_i, b_i, c_j, dy


def tile_sums_fixed(fv: FixedView, rows: np.ndarray, w_q: np.ndarray, tx: int, ty: int):
    """The three order-independent integer sums of every pixel of the full 16x16 tile (tx, ty)
    over the Gaussians ``rows``: ``(s_w (256,), s_cw (256, 3), s_log (256,))``, pixels row-major
    within the tile (pixels outside the image included: the hardware evaluates them too)."""
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        return np.zeros(TILE * TILE, np.int64), np.zeros((TILE * TILE, 3), np.int64), \
            np.zeros(TILE * TILE, np.int64)
    a_i, b_i, c_j, dy = axis_terms_fixed(fv, rows, tx, ty)
    power = (a_i[:, None, :] + c_j[:, :, None]
             + rshift_round(b_i[:, None, :] * dy[:, :, None], MEAN_FRAC))
    power = sat(power, POWER_MIN, 0).reshape(len(rows), TILE * TILE)
    v = visibility_fixed(fv.opacity[rows, None], power)
    w = np.minimum(np.asarray(w_q, np.int64)[rows, None], ONE16)   # weights above 1.0 count as 1.0
    vw = rshift_round(v * w, 16)
    s_log = np.where(v > 0, neg_log2_one_minus(v), 0).sum(axis=0)
    return vw.sum(axis=0), vw.T @ fv.colour[rows], s_log


def visibility_fixed(opacity_q, power_q):
    """v = min(0.999, opacity exp(power)) in Q.16, 0 below 1/255 (255 v < 1)."""
    v = np.minimum(V_MAX_Q, rshift_round(np.asarray(opacity_q, np.int64) * exp_fixed(power_q), 16))
    return np.where(255 * v < ONE16, 0, v)


def blend_fixed(s_w, s_cw, s_log, blend_mode: str = "coverage", background_q=(0, 0, 0)):
    """Pixels (P, 3), Q.12, from the sums of :func:`tile_sums_fixed`: the normalised colour
    round(s_cw / s_w) (0 where s_w = 0) and, for ``coverage``, the blend with the background by
    T = 2^(-s_log)."""
    if blend_mode not in BLENDS:
        raise ValueError(f"blend '{blend_mode}' is not known; allowed: {', '.join(BLENDS)}")
    s_w = np.asarray(s_w, np.int64)
    safe = np.maximum(s_w, 1)[:, None]
    colour = np.where(s_w[:, None] > 0, (2 * np.asarray(s_cw, np.int64) + safe) // (2 * safe), 0)
    if blend_mode == "coverage":
        t_q = exp2_neg(s_log)[:, None]
        colour = rshift_round(colour * (ONE16 - t_q) + t_q * np.asarray(background_q)[None, :], 16)
    return sat(colour, 0, ONE16 - 1)


def render_fixed(bins: TileBins, fv: FixedView, w_q: np.ndarray, blend_mode: str = "coverage",
                 background_q=(0, 0, 0), tiles=None) -> np.ndarray:
    """The order-independent image as integers (H, W, 3), Q.12 per channel. ``bins`` supplies
    only tile membership (order is irrelevant); ``w_q`` (M,) Q.16 weights; ``background_q``
    Q.12; ``tiles``: only these tile indices are rendered (the other pixels are those of an
    empty tile), for a region of the frame."""
    if blend_mode not in BLENDS:
        raise ValueError(f"blend '{blend_mode}' is not known; allowed: {', '.join(BLENDS)}")
    cam = bins.proj.camera
    n_pix = cam.width * cam.height
    s_w = np.zeros(n_pix, np.int64)
    s_cw = np.zeros((n_pix, 3), np.int64)
    s_log = np.zeros(n_pix, np.int64)
    for t in range(len(bins)) if tiles is None else tiles:
        rows = bins.tile(t)
        if len(rows) == 0:
            continue
        ty, tx = divmod(t, bins.proj.tiles_x)
        keep = _in_image(tx, ty, cam.width, cam.height)
        _, _, flat = bins.pixel_centres(t)
        tw, tcw, tlog = tile_sums_fixed(fv, rows, w_q, tx, ty)
        s_w[flat], s_cw[flat], s_log[flat] = tw[keep], tcw[keep], tlog[keep]
    return blend_fixed(s_w, s_cw, s_log, blend_mode, background_q).reshape(cam.height, cam.width, 3)


def _in_image(tx, ty, width, height) -> np.ndarray:
    ys, xs = np.mgrid[0:TILE, 0:TILE]
    return ((ty * TILE + ys < height) & (tx * TILE + xs < width)).ravel()


def to_float(img_q: np.ndarray) -> np.ndarray:
    """A Q.12 image as floats."""
    return img_q / float(1 << COLOUR_FRAC)


def subtile_bounds_fixed(fv: FixedView, rows: np.ndarray, tx: int, ty: int, size: int) -> np.ndarray:
    """The pair-skipping test's bound on the power, (len(rows), (16 / size)^2), sub-tiles
    row-major: power(i, j) <= max_i A_i + max_j C_j + the largest round(B dy / 2^8) at the
    sub-tile's four corners (B_i and dy_j are monotone in i and j, so the bilinear B dy peaks at
    a corner of their box)."""
    rows = np.asarray(rows, np.int64)
    n = TILE // size
    a_i, b_i, c_j, dy = axis_terms_fixed(fv, rows, tx, ty)
    bound = np.zeros((len(rows), n * n), np.int64)
    for sr in range(n):
        js = slice(sr * size, (sr + 1) * size)
        for sc in range(n):
            i0, i1 = sc * size, (sc + 1) * size - 1
            corners = [rshift_round(b_i[:, i] * dy[:, j], MEAN_FRAC)
                       for i in (i0, i1) for j in (js.start, js.stop - 1)]
            bound[:, sr * n + sc] = (a_i[:, i0:i1 + 1].max(axis=1) + c_j[:, js].max(axis=1)
                                     + np.max(corners, axis=0))
    return bound


def subtile_keep_fixed(fv: FixedView, rows: np.ndarray, tx: int, ty: int, size: int) -> np.ndarray:
    """The pair-skipping test: (len(rows), (16 / size)^2) booleans, sub-tiles row-major, False
    where no pixel of the size x size sub-tile can have v > 0 for that Gaussian: v is monotone
    in the power, so a sub-tile whose bound (:func:`subtile_bounds_fixed`) gives v = 0 holds no
    pair that contributes, and skipping it never changes the image."""
    rows = np.asarray(rows, np.int64)
    bound = subtile_bounds_fixed(fv, rows, tx, ty, size)
    return visibility_fixed(fv.opacity[rows, None], sat(bound, POWER_MIN, 0)) > 0
