"""Compute cores of the dense integer tensor engines (behavioural multipliers: the baselines).

Every core advances only in cycles where ``en`` is high (a stalled stream freezes the whole
datapath), and ``clear`` zeroes all of its state. Time below is counted in such enabled cycles
("ticks"). The stream shells in :mod:`accelsmith.hdl.tensor_engine` feed them and read them out.

Output-stationary cores take one A block (``m x k``, row-major) and one B block (``k x n``,
row-major) per tick and keep an ``m x n`` accumulator array; ``latency`` is the number of ticks
after the last block until every accumulator holds it.

Weight-stationary cores hold a ``k x n`` weight block written row by row through
``w_en``/``w_row``/``w_data``, take one A row of ``k`` values per tick, and present the ``n``
products-sums of that row on ``out`` exactly ``latency`` ticks later.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import adder_tree

__all__ = ["SystolicOSArray", "BroadcastMatrix", "Cube", "SystolicWSArray", "MultiplierAdderTree"]


def _enabled_reg(m, core, value, shape, name):
    """A register that loads ``value`` on enabled ticks and is zeroed by ``clear``."""
    reg = Signal(shape, name=name)
    with m.If(core.clear):
        m.d.sync += reg.eq(0)
    with m.Elif(core.en):
        m.d.sync += reg.eq(value)
    return reg


def _delay(m, core, value, depth, shape, name):
    for d in range(depth):
        value = _enabled_reg(m, core, value, shape, f"{name}_d{d}")
    return value


class _OutputStationaryCore(wiring.Component):
    def __init__(self, m_tile, n_tile, k_per_step, a_shape, b_shape, acc_shape):
        self.m_tile, self.n_tile, self.k_per_step = m_tile, n_tile, k_per_step
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        super().__init__({
            "en": In(1),
            "clear": In(1),
            "a": In(data.ArrayLayout(a_shape, m_tile * k_per_step)),
            "b": In(data.ArrayLayout(b_shape, k_per_step * n_tile)),
            "acc": Out(data.ArrayLayout(data.ArrayLayout(acc_shape, n_tile), m_tile)),
        })

    def _accumulate(self, m, i, j, increment):
        acc = self.acc[i][j]
        with m.If(self.clear):
            m.d.sync += acc.eq(0)
        with m.Elif(self.en):
            m.d.sync += acc.eq(acc + increment)


class SystolicOSArray(_OutputStationaryCore):
    """Output-stationary systolic array of ``rows x cols`` multiply-accumulate PEs.

    A values enter at the left edge and move one PE right per tick, B values enter at the top and
    move one PE down per tick; row ``i`` of A is delayed by ``i`` ticks and column ``j`` of B by
    ``j`` ticks at the edge (input skew inside the core), so PE (i, j) multiplies A[i, k] by
    B[k, j] at tick ``k + i + j + 1`` and adds the product to its own accumulator.

    MACs per tick: ``rows * cols``. Latency: ``rows + cols - 1`` ticks after the last step.
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape):
        super().__init__(rows, cols, 1, a_shape, b_shape, acc_shape)
        self.latency = rows + cols - 1

    def elaborate(self, platform):
        m = Module()
        R, C = self.m_tile, self.n_tile
        a_in = [[None] * C for _ in range(R)]
        b_in = [[None] * C for _ in range(R)]
        for i in range(R):
            a_in[i][0] = _delay(m, self, self.a[i], i + 1, self.a_shape, f"a_skew{i}")
        for j in range(C):
            b_in[0][j] = _delay(m, self, self.b[j], j + 1, self.b_shape, f"b_skew{j}")
        for i in range(R):
            for j in range(C):
                if j + 1 < C:
                    a_in[i][j + 1] = _enabled_reg(m, self, a_in[i][j], self.a_shape, f"a_{i}_{j}")
                if i + 1 < R:
                    b_in[i + 1][j] = _enabled_reg(m, self, b_in[i][j], self.b_shape, f"b_{i}_{j}")
                self._accumulate(m, i, j, a_in[i][j] * b_in[i][j])
        return m


class BroadcastMatrix(_OutputStationaryCore):
    """2D-Matrix: ``rows x cols`` MACs; each registered A value is broadcast along its row and
    each B value along its column, so the whole outer product of one step lands in one tick.

    MACs per tick: ``rows * cols``. Latency: 1 tick (the operand registers).
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape):
        super().__init__(rows, cols, 1, a_shape, b_shape, acc_shape)
        self.latency = 1

    def elaborate(self, platform):
        m = Module()
        a = [_enabled_reg(m, self, self.a[i], self.a_shape, f"a_{i}") for i in range(self.m_tile)]
        b = [_enabled_reg(m, self, self.b[j], self.b_shape, f"b_{j}") for j in range(self.n_tile)]
        for i in range(self.m_tile):
            for j in range(self.n_tile):
                self._accumulate(m, i, j, a[i] * b[j])
        return m


class Cube(_OutputStationaryCore):
    """3D-Cube: ``n x n x n`` multipliers compute an n x n x n block of the GEMM triple loop per
    tick: ``n*n`` dot products of length ``n`` (adder trees) added to ``n*n`` accumulators.

    MACs per tick: ``n**3``. Latency: 1 tick (the operand registers).
    """

    def __init__(self, n, a_shape, b_shape, acc_shape):
        super().__init__(n, n, n, a_shape, b_shape, acc_shape)
        self.latency = 1

    def elaborate(self, platform):
        m = Module()
        n = self.m_tile
        a = [_enabled_reg(m, self, self.a[x], self.a_shape, f"a_{x}") for x in range(n * n)]
        b = [_enabled_reg(m, self, self.b[x], self.b_shape, f"b_{x}") for x in range(n * n)]
        for i in range(n):
            for j in range(n):
                self._accumulate(m, i, j, adder_tree(a[i * n + k] * b[k * n + j] for k in range(n)))
        return m


class _WeightStationaryCore(wiring.Component):
    def __init__(self, k_per_step, n_tile, a_shape, b_shape, acc_shape):
        self.k_per_step, self.n_tile = k_per_step, n_tile
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        super().__init__({
            "en": In(1),
            "clear": In(1),
            "w_en": In(1),
            "w_row": In(range(k_per_step)),
            "w_data": In(data.ArrayLayout(b_shape, n_tile)),
            "a": In(data.ArrayLayout(a_shape, k_per_step)),
            "out": Out(data.ArrayLayout(acc_shape, n_tile)),
        })

    def _weights(self, m):
        weights = [[Signal(self.b_shape, name=f"w_{k}_{j}") for j in range(self.n_tile)]
                   for k in range(self.k_per_step)]
        for k, row in enumerate(weights):
            with m.If(self.clear):
                m.d.sync += [w.eq(0) for w in row]
            with m.Elif(self.w_en & (self.w_row == k)):
                m.d.sync += [w.eq(self.w_data[j]) for j, w in enumerate(row)]
        return weights


class SystolicWSArray(_WeightStationaryCore):
    """Weight-stationary systolic array of ``rows x cols`` PEs, PE (r, c) holding weight B[r, c].

    A row values enter at the left edge (value ``r`` delayed ``r`` ticks) and move right one PE
    per tick; partial sums move down one PE per tick and leave at the bottom edge, where column
    ``c`` is delayed ``cols - 1 - c`` ticks so a whole output row appears at once.

    MACs per tick: ``rows * cols``. Latency: ``rows + cols`` ticks from an A row to its outputs.
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape):
        super().__init__(rows, cols, a_shape, b_shape, acc_shape)
        self.latency = rows + cols

    def elaborate(self, platform):
        m = Module()
        R, C = self.k_per_step, self.n_tile
        w = self._weights(m)
        psum = [Const(0, self.acc_shape)] * C
        for r in range(R):
            a = _delay(m, self, self.a[r], r + 1, self.a_shape, f"a_skew{r}")
            for c in range(C):
                psum[c] = _enabled_reg(m, self, psum[c] + a * w[r][c], self.acc_shape,
                                       f"psum_{r}_{c}")
                if c + 1 < C:
                    a = _enabled_reg(m, self, a, self.a_shape, f"a_{r}_{c}")
        for c in range(C):
            m.d.comb += self.out[c].eq(_delay(m, self, psum[c], C - 1 - c, self.acc_shape,
                                              f"deskew{c}"))
        return m


class MultiplierAdderTree(_WeightStationaryCore):
    """``units`` dot-product units, each ``k`` multipliers feeding a balanced adder tree, sharing
    one registered A row; unit ``j`` holds column ``j`` of the weight block.

    MACs per tick: ``k * units``. Latency: 2 ticks (operand register, then the registered sum).
    """

    def __init__(self, k, units, a_shape, b_shape, acc_shape):
        super().__init__(k, units, a_shape, b_shape, acc_shape)
        self.latency = 2

    def elaborate(self, platform):
        m = Module()
        w = self._weights(m)
        k = self.k_per_step
        a = [_enabled_reg(m, self, self.a[x], self.a_shape, f"a_{x}") for x in range(k)]
        for j in range(self.n_tile):
            dot = adder_tree(a[x] * w[x][j] for x in range(k))
            m.d.comb += self.out[j].eq(_enabled_reg(m, self, dot, self.acc_shape, f"sum_{j}"))
        return m
