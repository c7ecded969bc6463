"""Axis-oriented evaluation of the Gaussian exponent, and its operation counts.

For a tile with origin (x0, y0) and a Gaussian with mean (mx, my) and conic (a, b, c), with
dx_i = mx - (x0 + i + 0.5) along the tile's columns i and dy_j = my - (y0 + j + 0.5) along its
rows j (gsplat's pixel centres):

    power(i, j) = A_i + C_j + B_i * dy_j,   A_i = -a dx_i^2 / 2,  B_i = -b dx_i,  C_j = -c dy_j^2 / 2

16 values each per tile and Gaussian, then 1 multiply and 2 adds per pixel. With forward
differencing along a row (B_{i+1} dy_j = B_i dy_j + b dy_j) the per-pixel multiply goes too.

Counting rule (:func:`op_counts`): every multiply and every add or subtract of the exponent
evaluation counts once; constants that depend only on the Gaussian and the view (-a/2, -b,
-c/2) are per-Gaussian set-up shared by both forms and not counted; every tile is evaluated
in full (256 pixels), as the hardware does.
"""

from dataclasses import dataclass

import numpy as np

from .render import TILE, TileBins


def axis_terms(bins: TileBins, t: int, rows: np.ndarray | None = None):
    """(A, B, C, dy), each (len(rows), 16), of tile ``t``."""
    proj = bins.proj
    rows = bins.tile(t) if rows is None else rows
    ty, tx = divmod(t, proj.tiles_x)
    k = np.arange(TILE) + 0.5
    dx = proj.mean2d[rows, 0:1] - (tx * TILE + k)[None, :]
    dy = proj.mean2d[rows, 1:2] - (ty * TILE + k)[None, :]
    a, b, c = (proj.conic[rows, i:i + 1] for i in range(3))
    return -0.5 * a * dx * dx, -b * dx, -0.5 * c * dy * dy, dy


def axis_power(bins: TileBins, t: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The exponent of every (Gaussian, pixel) pair of the full 16x16 tile ``t`` by the axis
    form: shape (len(rows), 16, 16) indexed [g, row j, column i]."""
    a_i, b_i, c_j, dy = axis_terms(bins, t, rows)
    return a_i[:, None, :] + c_j[:, :, None] + b_i[:, None, :] * dy[:, :, None]


def axis_power_fd(bins: TileBins, t: int, rows: np.ndarray | None = None) -> np.ndarray:
    """As :func:`axis_power`, with the product term forward-differenced along each row: it
    starts at B_0 dy_j and steps by b dy_j (one add per pixel instead of a multiply)."""
    a_i, b_i, c_j, dy = axis_terms(bins, t, rows)
    rows = bins.tile(t) if rows is None else rows
    b = bins.proj.conic[rows, 1]
    start = b_i[:, None, 0:1] * dy[:, :, None]                  # B_0 dy_j
    step = (b[:, None] * dy)[:, :, None]                          # b dy_j
    steps = np.concatenate([start, np.repeat(step, TILE - 1, axis=2)], axis=2)
    return a_i[:, None, :] + c_j[:, :, None] + np.cumsum(steps, axis=2)


@dataclass(frozen=True)
class OpCount:
    mul: int
    add: int

    @property
    def total(self) -> int:
        return self.mul + self.add

    def __mul__(self, k):
        return OpCount(self.mul * k, self.add * k)

    def __add__(self, other):
        return OpCount(self.mul + other.mul, self.add + other.add)


P = TILE * TILE
# Standard form per pair: dx, dy (2 adds); dx^2, dy^2, dx dy, (-a/2) dx^2, (-c/2) dy^2,
# (-b) dx dy (6 multiplies); two adds to sum the three terms.
STANDARD_PAIR = OpCount(6, 4)
# Axis form per tile entry: dx_i, dy_j (32 adds); dx_i^2, A_i, B_i, dy_j^2, C_j (80 multiplies).
AXIS_ENTRY = OpCount(80, 32)
AXIS_PAIR = OpCount(1, 2)
# Forward-differenced: per row j the start B_0 dy_j and step b dy_j (32 multiplies, plus -b dx_0
# once); no B_i row; per pixel two adds plus one add to step the product (not on column 0).
FD_ENTRY = OpCount(16 * 4 + 1 + 32, 32)
FD_PIXELS = OpCount(0, 3 * P - TILE)


def op_counts(entries: int) -> dict:
    """Multiplies and adds of the exponent for ``entries`` tile-list entries (a frame), per
    form: ``standard``, ``axis`` and ``axis_fd`` (forward-differenced)."""
    return {
        "standard": STANDARD_PAIR * (P * entries),
        "axis": (AXIS_ENTRY + AXIS_PAIR * P) * entries,
        "axis_fd": (FD_ENTRY + FD_PIXELS) * entries,
    }


def reduction(entries: int = 1) -> dict:
    """Fraction of the standard form's multiply-adds saved by each axis form."""
    c = op_counts(entries)
    return {k: 1.0 - c[k].total / c["standard"].total for k in ("axis", "axis_fd")}
