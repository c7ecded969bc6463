"""The rasteriser hardware's timing (``hdl/gaussian.py``) as numbers: the exact cycle model.

With the tile and record streams always valid and the pixel stream always ready, a run of
``K`` tiles with ``n_k`` entries each keeps the ``cycles`` counter busy for

    E * sum(n_k) + K * (1 + FLUSH + 256) + SETUP_LATENCY + NORMALISER_LATENCY - 1
    (+ E when the first tile has entries)

cycles (:meth:`RasteriserTiming.run_cycles`): ``E = 256 / lanes``
cycles per entry; per tile one cycle to take its first entry, ``FLUSH`` cycles for the lane
pipeline to empty after its last entry, and 256 cycles to read the sums out (one pixel per
cycle); the next tile's set-up overlaps all of that, so tiles follow back to back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .render import TILE

PAIR_LATENCY = 7            # PairEvaluator: terms in -> summands out
NORMALISER_LATENCY = 16     # PixelNormaliser: sums accepted -> pixel valid
SETUP_LATENCY = 4           # AxisSetup: last group issued -> terms offered, minus one
PIXELS = TILE * TILE


@dataclass(frozen=True)
class RasteriserTiming:
    lanes: int

    @property
    def cycles_per_entry(self) -> int:
        return PIXELS // self.lanes

    @property
    def flush(self) -> int:
        """Cycles from a tile's last entry to the first read of its sums."""
        return PAIR_LATENCY + 1

    @property
    def tile_overhead(self) -> int:
        """Cycles a tile costs besides its entries: take, flush, read-out."""
        return 1 + self.flush + PIXELS

    def tile_cycles(self, entries: int) -> int:
        """Cycles a tile holds the evaluator (back to back with its neighbours)."""
        return self.cycles_per_entry * entries + self.tile_overhead

    def run_cycles(self, counts) -> int:
        """Busy cycles of a run of tiles with ``counts`` entries each, from the first tile beat
        to the last pixel, when no stream stalls: the first entry's set-up (``SETUP_LATENCY``
        cycles, plus ``E`` if the first tile has entries), every tile back to back, and the
        last pixels' way through the normaliser."""
        counts = [int(n) for n in counts]
        if not counts:
            return 0
        start = SETUP_LATENCY + (self.cycles_per_entry if counts[0] > 0 else 0)
        return start + sum(self.tile_cycles(n) for n in counts) + NORMALISER_LATENCY - 1
