"""The rasteriser hardware's timing (``hdl/gaussian.py``) as numbers: the exact cycle model.

An entry takes ``E = 256 / lanes`` cycles without pair skipping; with ``subtile`` skipping,
``(subtile / sqrt(lanes))^2`` cycles per kept sub-tile and at least one (:meth:`~RasteriserTiming.
work_cycles` sums a tile's). The sums live in two banks, so a tile's 256-cycle read-out overlaps
the evaluation of the next tile; with the tile and record streams always valid and the pixel
stream always ready, :meth:`RasteriserTiming.run_cycles` follows the hardware's rules cycle for
cycle (a take cycle per tile, the lane pipeline's ``flush`` before a read-out, a tile waiting
for its bank to be read out, a finished tile waiting for the read-out before it to start), from
the first tile beat (the set-up's ``SETUP_LATENCY`` + ``groups`` cycles, ``groups`` = E without
skipping and 1 with, when the first tile has entries) to the last pixel
(``NORMALISER_LATENCY`` after its read). The testbench checks it exactly on every stall-free run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fixed import DX_LIMIT, MEAN_FRAC, rshift_round, sat, subtile_keep_fixed
from .render import TILE

PAIR_LATENCY = 7            # PairEvaluator: terms in -> summands out
NORMALISER_LATENCY = 16     # PixelNormaliser: sums accepted -> pixel valid
SETUP_LATENCY = 4           # AxisSetup: last group issued -> terms offered, minus one
NETWORK_LATENCY = 8         # SorterNetwork: feature beat accepted -> weight offered
PIXELS = TILE * TILE


@dataclass(frozen=True)
class RasteriserTiming:
    lanes: int
    subtile: int = 0

    @property
    def side(self) -> int:
        return int(round(self.lanes ** 0.5))

    @property
    def cycles_per_entry(self) -> int:
        """Cycles of an entry with nothing skipped."""
        return PIXELS // self.lanes

    @property
    def cycles_per_subtile(self) -> int:
        return ((self.subtile or TILE) // self.side) ** 2

    @property
    def setup_groups(self) -> int:
        return 1 if self.subtile else self.cycles_per_entry

    @property
    def flush(self) -> int:
        """Cycles from a tile's last entry to the first read of its sums."""
        return PAIR_LATENCY + 1

    def entry_cycles(self, kept_subtiles: int) -> int:
        return max(1, kept_subtiles * self.cycles_per_subtile)

    def work_cycles(self, entries) -> int:
        """Cycles a tile's entries hold the lanes: ``entries`` is its number of entries (nothing
        skipped) or each entry's number of kept sub-tiles."""
        if isinstance(entries, int):
            return self.cycles_per_entry * entries
        return sum(self.entry_cycles(int(k)) for k in entries)

    def run_cycles(self, tiles) -> int:
        """Busy cycles of a run of tiles (each as :meth:`work_cycles` takes it), from the first
        tile beat to the last pixel, when no stream stalls.

        Two banks of sums: tile k is evaluated while tile k - 1 is read out. Tile k's entries
        run back to back from the cycle after its first is taken (once its bank, the one of tile
        k - 2, has been read out); its read-out starts ``flush`` cycles after its last entry and
        after the previous read-out, and lasts 256 cycles. A finished tile waits (and the
        evaluator with it) while the tile before it has not started its read-out."""
        tiles = list(tiles)
        if not tiles:
            return 0
        first = tiles[0] if isinstance(tiles[0], int) else len(tiles[0])
        t = SETUP_LATENCY + (self.setup_groups if first > 0 else 0)   # first entry taken
        d_start, d_end = [], []
        for k, tile in enumerate(tiles):
            work = self.work_cycles(tile)
            if work == 0:
                end = t                                 # an empty tile: its token alone
            else:
                free = d_end[k - 2] + 1 if k >= 2 else 0
                end = max(t + 1, free) + work - 1       # the cycle its last entry is done
            hand_over = max(end, d_start[k - 1]) if k else end
            start = max(hand_over + 1 + PAIR_LATENCY, d_end[k - 1] + 1 if k else 0) + 1
            d_start.append(start)
            d_end.append(start + PIXELS - 1)
            t = hand_over + 1                           # the next tile's first entry taken
        return d_end[-1] + NORMALISER_LATENCY
    @staticmethod
    def network_cycles(gaussians: int) -> int:
        """Busy cycles of ``gaussians`` through the sorter network without stalls (one per cycle,
        then the pipeline's depth)."""
        return gaussians + NETWORK_LATENCY - 1 if gaussians else 0

    def job_cycles(self, tiles) -> int:
        """CYCLES of a :class:`~accelsmith.hdl.gaussian.RasteriserEngine` job of ``tiles`` (as
        :meth:`run_cycles` takes them) fed from the SoC's buffers: the run plus the START
        cycle."""
        tiles = list(tiles)
        return self.run_cycles(tiles) + 1 if tiles else 0

    def tile_entries(self, fv, rows, tx: int, ty: int):
        """A tile as :meth:`work_cycles` takes it: its entry count, or with skipping each
        entry's kept sub-tiles (:func:`~.fixed.subtile_keep_fixed`)."""
        if not self.subtile or len(rows) == 0:
            return len(rows)
        return subtile_keep_fixed(fv, rows, tx, ty, self.subtile).sum(axis=1)


# |dy_0| where some row of the tile is inside the saturation: at most 2^20 + 15 * 256.
DY0_LIMIT = DX_LIMIT + (1 << 12)


def cross_terms_by_differences(b_i, mean_y, ty: int):
    """round(B_i dy_j / 2^8) of :func:`~accelsmith.models.gaussian.fixed.tile_sums_fixed`, (n, 16
    rows j, 16 columns i), without a product per pair: before saturation dy_j = dy_0 - 2^8 j, so
    for rows inside the saturation it is R_i - B_i j with R_i = round(B_i dy_0 / 2^8) (one
    product per column, dy_0 saturated to +-DY0_LIMIT, which no such row notices), and for rows
    saturated to +-2^20 exactly +-(B_i << 12). ``b_i`` (n, 16) as ``axis_terms_fixed`` gives it,
    ``mean_y`` (n,) in Q.8: the form that lets the set-up and lanes (not yet built on it) do
    without a wide multiplier."""
    b_i = np.asarray(b_i, np.int64)
    dy0 = (np.asarray(mean_y, np.int64) - ((ty * TILE) << MEAN_FRAC) - (1 << (MEAN_FRAC - 1)))[:, None]
    raw = dy0 - (np.arange(TILE) << MEAN_FRAC)[None, :]                       # (n, rows)
    r_i = rshift_round(b_i * sat(dy0, -DY0_LIMIT, DY0_LIMIT), MEAN_FRAC)  # (n, cols)
    inside = r_i[:, None, :] - b_i[:, None, :] * np.arange(TILE)[None, :, None]
    edge = (b_i * (DX_LIMIT >> MEAN_FRAC))[:, None, :]   # 2^20 a multiple of 2^8: exact
    return np.where((raw > DX_LIMIT)[:, :, None], edge,
                    np.where((raw < -DX_LIMIT)[:, :, None], -edge, inside))
