"""Tile schedules and the off-chip Gaussian traffic they cause.

A schedule is the order in which the rasteriser visits a frame's tiles. Consecutive tiles share
many Gaussians, so with an on-chip buffer of S Gaussians (least recently used replaced) the
order decides how many Gaussians are fetched from off-chip memory per frame.

Orders (``ORDERS``), each a permutation of tile ids ``ty * tiles_x + tx``:

* ``raster`` -- row by row, left to right;
* ``morton`` -- Z-order of (tx, ty) over the enclosing power-of-two grid, tiles outside the
  image skipped;
* ``hilbert`` -- the Hilbert curve over the enclosing power-of-two grid, tiles outside skipped;
* ``pi`` -- our definition of the seed paper's pi-trajectory: the frame is cut into bands of
  ``band`` tile rows (default 2); each band is swept column by column, the direction inside a
  column alternating (down, up, down, ...), and successive bands alternate left-to-right and
  right-to-left. With two rows per band the path inside a band is a chain of pi-shaped loops;
  every step moves to a neighbouring tile when the frame is an odd number of tiles wide (the
  garden's 41), otherwise the step between bands skips one tile row.
"""

from collections import OrderedDict

import numpy as np

from .render import TileBins

ORDERS = ("raster", "morton", "hilbert", "pi")
# Fewest off-chip fetches summed over buffer sizes 256-16384 on the garden's three views
# (docs/gaussian.md, benchmarks/gaussian_models.py).
DEFAULT_ORDER = "hilbert"


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _morton_key(x: np.ndarray, y: np.ndarray, bits: int) -> np.ndarray:
    key = np.zeros_like(x)
    for b in range(bits):
        key |= ((x >> b) & 1) << (2 * b) | ((y >> b) & 1) << (2 * b + 1)
    return key


def _hilbert_xy(n: int, d: int):
    """Position of step ``d`` on the Hilbert curve of an n x n grid (n a power of two)."""
    x = y = 0
    s, t = 1, d
    while s < n:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def tile_order(name: str, tiles_x: int, tiles_y: int, band: int = 2) -> np.ndarray:
    """The visiting order of a tiles_x x tiles_y frame under schedule ``name``."""
    if name == "raster":
        return np.arange(tiles_x * tiles_y)
    if name == "morton":
        ys, xs = np.mgrid[0:tiles_y, 0:tiles_x]
        bits = _pow2(max(tiles_x, tiles_y)).bit_length()
        key = _morton_key(xs.ravel(), ys.ravel(), bits)
        return (ys.ravel() * tiles_x + xs.ravel())[np.argsort(key, kind="stable")]
    if name == "hilbert":
        n = _pow2(max(tiles_x, tiles_y))
        out = []
        for d in range(n * n):
            x, y = _hilbert_xy(n, d)
            if x < tiles_x and y < tiles_y:
                out.append(y * tiles_x + x)
        return np.array(out)
    if name == "pi":
        out = []
        for k, y0 in enumerate(range(0, tiles_y, band)):
            rows = list(range(y0, min(y0 + band, tiles_y)))
            cols = range(tiles_x) if k % 2 == 0 else range(tiles_x - 1, -1, -1)
            for m, x in enumerate(cols):
                for y in (rows if m % 2 == 0 else rows[::-1]):
                    out.append(y * tiles_x + x)
        return np.array(out)
    raise ValueError(f"tile order '{name}' is not known; allowed: {', '.join(ORDERS)}")


def count_fetches(bins: TileBins, order: np.ndarray, capacity: int) -> int:
    """Gaussians fetched from off-chip memory for one frame visiting ``bins``' tiles in
    ``order`` through an LRU buffer of ``capacity`` Gaussians (a miss fetches one Gaussian)."""
    return int(sum(fetch.sum() for fetch, _ in buffer_slots(bins, order, capacity)))


def buffer_slots(bins: TileBins, order: np.ndarray, capacity: int, state=None):
    """The host's half of the rasteriser's Gaussian buffer: for each tile in ``order``, per entry
    of its list, ``(fetch, slot)``: whether the Gaussian must be fetched into ``slot`` (a miss)
    or is resident there, least recently used replaced (:func:`count_fetches` adds up the
    misses); a miss takes the next free slot, or the evicted one's.
    ``state`` (a dict this fills) carries the buffer across calls, e.g. over a frame's runs.

    Returns ``[(fetch (n,) bool, slot (n,) int), ...]`` in the order of ``order``."""
    state = {} if state is None else state
    cache = state.setdefault("cache", OrderedDict())        # Gaussian -> slot, LRU first
    out = []
    for t in order:
        rows = bins.tile(int(t)).tolist()
        fetch = np.zeros(len(rows), bool)
        slot = np.zeros(len(rows), np.int64)
        for n, g in enumerate(rows):
            if g in cache:
                cache.move_to_end(g)
                slot[n] = cache[g]
                continue
            fetch[n] = True
            if len(cache) < capacity:
                slot[n] = len(cache)
            else:
                _, slot[n] = cache.popitem(last=False)
            cache[g] = int(slot[n])
        out.append((fetch, slot))
    return out
