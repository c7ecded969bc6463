"""The rasteriser hardware's timing (``hdl/gaussian.py``) as numbers: the exact cycle model.

An entry takes ``E = 256 / lanes`` cycles without pair skipping; with ``subtile`` skipping,
``(subtile / sqrt(lanes))^2`` cycles per kept sub-tile and at least one (:meth:`~RasteriserTiming.
work_cycles` sums a tile's). The sums live in two banks, so a tile's 256-cycle read-out overlaps
the evaluation of the next tile; with the tile and record streams always valid and the pixel
stream always ready, :meth:`RasteriserTiming.run_cycles` follows the hardware's rules cycle for
cycle (a take cycle per tile, the lane pipeline's ``flush`` before a read-out, a tile waiting
for its bank to be read out, a finished tile waiting for the read-out before it to start), from
the first tile beat (through the set-up's :func:`setup_latency` stages, one record per cycle)
to the last pixel (``NORMALISER_LATENCY`` after its read). The testbench checks it exactly on every stall-free run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fixed import (CONIC_FRAC, DX_LIMIT, MEAN_FRAC, ONE16, POWER_FRAC, POWER_MIN, rshift_round,
                    sat, subtile_keep_fixed, visibility_fixed)
from .render import TILE

PAIR_LATENCY = 8            # PairEvaluator: terms in -> summands out
NORMALISER_LATENCY = 16     # PixelNormaliser: sums accepted -> pixel valid
TERM_STAGES = 5             # AxisSetup: its pipeline without skipping
SUBTILE_LATENCY = 3         # SubtileTest: the stages skipping adds to it
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
        tile beat to the last pixel, when no stream stalls: :func:`_run_cycles`, the set-up,
        the evaluator and the two banks of sums clocked cycle by cycle."""
        works = []
        for tile in tiles:
            if isinstance(tile, int):
                works.append([self.cycles_per_entry] * tile)
            else:
                works.append([self.entry_cycles(int(k)) for k in tile])
        return _run_cycles(works, setup_latency(self.subtile)) if works else 0

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


def setup_latency(subtile: int) -> int:
    """Stages of ``AxisSetup``'s pipeline, from a record issued to its terms in the last stage."""
    return TERM_STAGES + (SUBTILE_LATENCY if subtile else 0)


def _run_cycles(works: list[list[int]], stages: int) -> int:
    """Busy cycles of ``TileRasteriser`` for tiles whose entries take ``works[k][n]`` cycles each,
    fed without stalls: the registers of its :class:`AxisSetup` (tile and record takes, a record
    issued per cycle, ``stages`` pipeline stages, the offered term bank), its evaluator (take, run, hold) and its two banks of sums (pending tile, read-out,
    normaliser), stepped a cycle at a time with the hardware's rules. A tile boundary costs the
    set-up two cycles (the tile beat, the first record) that short entries cannot hide, which is
    why this is a simulation and not a sum."""
    n_tiles = len(works)
    # AxisSetup: FSM state, records left, the held record, next tile / record, the pipeline
    # (its last stage is ``collect``) and the offered bank; entries as (tile, index or None, last).
    setup, left, holding, next_tile, rec = "TILE", 0, False, 0, (0, 0)
    held = collect = offer = None
    pipe = [None] * (stages - 1)
    # Evaluator and banks.
    state, remaining, cur = "IDLE", 0, None
    wbank, pend, reading, read_bank, pixel = 0, None, False, 0, 0
    last_read, read_out, cycle, busy_cycles = -(1 << 30), 0, 0, 0
    while True:
        in_flight = cycle - NORMALISER_LATENCY <= last_read < cycle
        busy = (setup != "TILE" or any(p is not None for p in pipe) or collect is not None
                or offer is not None
                or state != "IDLE" or pend is not None or reading or in_flight)
        if not busy and next_tile == n_tiles and read_out == n_tiles:
            return busy_cycles
        busy_cycles += busy
        bank_free = not ((reading and read_bank == wbank) or (pend is not None and pend[0] == wbank))

        # Evaluator: this cycle's take, next state, whether a tile finishes.
        take = finish = False
        n_state, n_remaining, n_cur = state, remaining, cur

        def start(entry):
            nonlocal n_state, n_remaining, n_cur, finish
            if entry[1] is not None:
                n_state, n_remaining, n_cur = "RUN", works[entry[0]][entry[1]], entry
            elif pend is not None:
                n_state = "HOLD"
            else:
                n_state, finish = "IDLE", True

        if state == "IDLE" and offer is not None:
            take = True
            start(offer)
        elif state == "RUN" and bank_free:
            n_remaining = remaining - 1
            if n_remaining == 0 and cur[2]:
                n_state, finish = ("HOLD", False) if pend is not None else ("IDLE", True)
            elif n_remaining == 0:
                take = offer is not None
                if take:
                    start(offer)
                else:
                    n_state = "IDLE"
        elif state == "HOLD" and pend is None:
            n_state, finish = "IDLE", True

        # AxisSetup: banks, then the FSM (everything waits while ``en`` is low).
        transfer = collect is not None and (offer is None or take)
        en = collect is None or transfer
        issue = None
        n_setup, n_left, n_holding, n_next, n_rec, n_held = \
            setup, left, holding, next_tile, rec, held
        if en and setup == "TILE" and next_tile < n_tiles:
            n_left, n_next, n_rec = len(works[next_tile]), next_tile + 1, (next_tile, 0)
            n_setup = "RECORD" if works[next_tile] else "EMPTY"
        elif en and setup == "EMPTY":
            issue, n_setup = (rec[0], None, True), "TILE"
        elif en and setup == "RECORD":
            if holding:
                issue, n_holding = (*held, left == 0), False
                n_setup = "TILE" if left == 0 else setup
            if left:
                n_held, n_holding, n_left = rec, True, left - 1
                n_rec = (rec[0], rec[1] + 1)
        n_pipe, n_collect = pipe, collect
        if en:
            n_pipe, n_collect = [issue] + pipe[:-1], pipe[-1]
        n_offer = collect if transfer else (None if take else offer)

        # The pending tile and the read-out.
        n_pend, n_reading, n_bank, n_pixel = pend, reading, read_bank, pixel
        if pend is not None:
            if pend[1] != PAIR_LATENCY:
                n_pend = (pend[0], pend[1] + 1)
            elif not reading:
                n_pend, n_reading, n_bank, n_pixel = None, True, pend[0], 0
        if reading:
            last_read, n_pixel = cycle, pixel + 1
            if pixel == PIXELS - 1:
                n_reading, read_out = False, read_out + 1
        n_wbank = wbank
        if finish:
            n_pend, n_wbank = (wbank, 0), 1 - wbank

        setup, left, holding, next_tile, rec, held = \
            n_setup, n_left, n_holding, n_next, n_rec, n_held
        pipe, collect, offer = n_pipe, n_collect, n_offer
        state, remaining, cur = n_state, n_remaining, n_cur
        pend, reading, read_bank, pixel, wbank = n_pend, n_reading, n_bank, n_pixel, n_wbank
        cycle += 1


# |d_0| where some column (row) of the tile is inside the saturation: at most 2^20 + 15 * 256.
D0_LIMIT = DX_LIMIT + (1 << 12)
_SHIFT = CONIC_FRAC + MEAN_FRAC - POWER_FRAC      # the conic products' final shift (20)


def _quadratic_terms(conic, d0):
    """-round(conic round(d_k^2 / 2^8) / 2^21) for k = 0..15, d_k = d_0 - 2^8 k, from three
    products per entry: round(d_k^2 / 2^8) = S_0 - 2 k d_0 + 2^8 k^2 exactly (S_0 = round(d_0^2 /
    2^8)), so conic times it is conic S_0 - k (2 conic d_0) + k^2 (2^8 conic)."""
    k = np.arange(TILE)[None, :]
    s0 = rshift_round(d0 * d0, MEAN_FRAC)
    prod = conic * s0 - k * (2 * conic * d0) + k * k * (conic << MEAN_FRAC)
    return -rshift_round(prod, _SHIFT + 1)


def axis_terms_by_differences(fv, rows, tx: int, ty: int) -> dict:
    """The axis terms of an entry as the hardware's set-up computes them: a fixed number of
    products per entry (none per index or per pair), exact with
    :func:`~accelsmith.models.gaussian.fixed.axis_terms_fixed` and with its cross term
    round(B_i dy_j / 2^8) (:func:`cross_terms`). ``(len(rows), 16)`` arrays:

    * ``a``, ``c``: A_i, C_j by :func:`_quadratic_terms`; a saturated index (d = +-2^20) gives
      exactly -(conic << 11);
    * ``b``: B_i = -round(b dx_i / 2^20) with b dx_i = b d_0 - k (2^8 b), +-b where saturated;
    * ``r``: R_i = round(B_i dy_0 / 2^8) with B_i dy_0 from two products: writing
      2^8 b = k_b 2^20 + f (0 <= f < 2^20) and b d_0 + 2^19 = q_0 2^20 + rem, B_i = -(q_0 - i k_b
      - m_i) with m_i = ceil((i f - rem) / 2^20) in 0..15, so B_i dy_0 = -q_0 dy_0 + i (k_b dy_0)
      + m_i dy_0 (a 4-bit multiple); saturated columns -+(b dy_0);
    * ``hi``, ``lo``: rows saturated to +2^20 / -2^20;
    * ``nx``, ``ny`` (``(len(rows), 1)``): the column (row) whose pixel centre is nearest the
      mean, round(d_0 / 2^8) clamped to 0..15 (:func:`subtile_bounds_by_selection`).

    d_0 (dy_0) is the first column's (row's) offset saturated to +-D0_LIMIT, which no index
    inside the saturation notices."""
    rows = np.asarray(rows, np.int64)
    k = np.arange(TILE)[None, :]
    raw = {axis: (fv.mean[rows, n:n + 1] - ((t * TILE) << MEAN_FRAC) - (1 << (MEAN_FRAC - 1)))
           for n, (axis, t) in enumerate((("x", tx), ("y", ty)))}
    d0 = {axis: sat(v, -D0_LIMIT, D0_LIMIT) for axis, v in raw.items()}
    idx = {axis: d0[axis] - (k << MEAN_FRAC) for axis in d0}
    hi = {axis: idx[axis] > DX_LIMIT for axis in idx}
    lo = {axis: idx[axis] < -DX_LIMIT for axis in idx}
    a, b, c = (fv.conic[rows, n:n + 1] for n in range(3))
    edge_a, edge_c = -(a << 11), -(c << 11)
    a_i = np.where(hi["x"] | lo["x"], edge_a, _quadratic_terms(a, d0["x"]))
    c_j = np.where(hi["y"] | lo["y"], edge_c, _quadratic_terms(c, d0["y"]))
    p0 = b * d0["x"]
    b_i = np.where(hi["x"], -b, np.where(lo["x"], b, -rshift_round(p0 - k * (b << MEAN_FRAC), _SHIFT)))
    dy0 = d0["y"]
    kb, f = b >> (_SHIFT - MEAN_FRAC), (b & ((1 << (_SHIFT - MEAN_FRAC)) - 1)) << MEAN_FRAC
    h = p0 + (1 << (_SHIFT - 1))
    q0, rem = h >> _SHIFT, h & ((1 << _SHIFT) - 1)
    m_i = -((rem - k * f) >> _SHIFT)
    b_dy0 = -q0 * dy0 + k * (kb * dy0) + m_i * dy0
    b_dy0 = np.where(hi["x"], -(b * dy0), np.where(lo["x"], b * dy0, b_dy0))
    return {"a": a_i, "b": b_i, "c": c_j, "r": rshift_round(b_dy0, MEAN_FRAC),
            "hi": hi["y"], "lo": lo["y"], "m": m_i,
            **{f"n{axis}": nearest_index(d0[axis]) for axis in d0}}


def nearest_index(d0):
    """The index i in 0..15 whose offset d_0 - 2^8 i is smallest in magnitude."""
    return np.clip((d0 + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC, 0, TILE - 1)


def subtile_bounds_by_selection(terms: dict, size: int):
    """:func:`~accelsmith.models.gaussian.fixed.subtile_bounds_fixed` the way the hardware's
    sub-tile test computes it, with selections where the model takes maxima, exact because:

    * A_i = -round(a round(d_i^2 / 2^8) / 2^21) with a >= 0 (saturated: d_i = +-2^20) does not
      grow with |d_i|, so the largest A_i of a column range is at the index nearest the mean,
      ``nx`` clamped to the range (C_j likewise with ``ny``);
    * the corner term round(B_i dy_j / 2^8) at a column i is monotone in the saturated dy_j,
      which falls with j: the larger of the two row corners is the range's first row where
      B_i >= 0 and its last where B_i < 0. So two corners per sub-tile remain, not four."""
    n = TILE // size
    cross = cross_terms(terms)                         # (entries, rows j, columns i)
    entries = np.arange(len(terms["a"]))
    bound = np.zeros((len(entries), n * n), np.int64)
    for sr in range(n):
        j0, j1 = sr * size, (sr + 1) * size - 1
        max_c = terms["c"][entries, np.clip(terms["ny"][:, 0], j0, j1)]
        for sc in range(n):
            i0, i1 = sc * size, (sc + 1) * size - 1
            max_a = terms["a"][entries, np.clip(terms["nx"][:, 0], i0, i1)]
            corners = [cross[entries, np.where(terms["b"][:, i] < 0, j1, j0), i] for i in (i0, i1)]
            bound[:, sr * n + sc] = max_a + max_c + np.maximum(*corners)
    return bound


def cross_terms(terms: dict):
    """round(B_i dy_j / 2^8), (n, 16 rows j, 16 columns i), from :func:`axis_terms_by_differences`
    without a product: R_i - B_i j for rows inside the saturation (dy_j = dy_0 - 2^8 j), and
    +-(B_i << 12) for rows saturated to +-2^20 (2^20 a multiple of 2^8: exact)."""
    b_i, r_i = terms["b"][:, None, :], terms["r"][:, None, :]
    inside = r_i - b_i * np.arange(TILE)[None, :, None]
    edge = b_i << (DX_LIMIT.bit_length() - 1 - MEAN_FRAC)
    return np.where(terms["hi"][:, :, None], edge, np.where(terms["lo"][:, :, None], -edge, inside))


#: :func:`visible_power_thresholds` for an opacity that no power makes visible
NEVER_VISIBLE = 1


def visible_power_thresholds():
    """For every opacity (Q.16, 0..65535), the smallest power p in [POWER_MIN, 0] (Q.12) with
    ``visibility_fixed(opacity, p) > 0``, or NEVER_VISIBLE: v is monotone in p, so the sub-tile
    test's ``visibility(opacity, sat(bound)) > 0`` is ``sat(bound) >= threshold[opacity]``, a
    compare instead of an exp table and a product per sub-tile."""
    opacity = np.arange(ONE16, dtype=np.int64)
    lo = np.full(ONE16, POWER_MIN, np.int64)        # v = 0 at POWER_MIN (exp underflows)
    hi = np.zeros(ONE16, np.int64)
    assert not visibility_fixed(opacity, lo).any()
    visible = visibility_fixed(opacity, hi) > 0
    while (hi - lo > 1).any():                      # invariant: v(lo) = 0, v(hi) > 0 if visible
        mid = (lo + hi) // 2
        up = visibility_fixed(opacity, mid) > 0
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return np.where(visible, hi, NEVER_VISIBLE)
