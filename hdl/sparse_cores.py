"""Compute cores of the sparse tensor engines (``sparse`` family).

:class:`NMSparseMatrix` keeps the output-stationary core contract of
:mod:`accelsmith.hdl.tensor_cores` (``en``, ``clear``, ``a``/``b`` per tick) and
:class:`OuterProductArray` the step handshake of :mod:`accelsmith.hdl.digit_serial`, so the
existing stream shells run them. Both add an ``error`` output that flags malformed metadata in
the operands on offer.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .tensor_cores import _OutputStationaryCore, _enabled_reg

__all__ = ["NMSparseMatrix", "OuterProductArray", "bitmap_operand_layout", "nm_operand_layout"]


def nm_operand_layout(a_shape, kept: int, m: int):
    """One step of N:M-compressed A: ``kept`` values and their in-group indices (row-major)."""
    return data.StructLayout({"value": data.ArrayLayout(a_shape, kept),
                              "index": data.ArrayLayout(unsigned((m - 1).bit_length()), kept)})


class NMSparseMatrix(_OutputStationaryCore):
    """``rows x cols`` PEs for N:M-sparse A (compressed along K) times dense B.

    A step covers ``groups`` groups of ``m`` along K (``k_per_step = groups * m`` dense K values).
    ``a`` carries, for each of the ``rows`` A rows, the ``groups * n`` kept values and their
    indices; ``b`` is the dense ``k_per_step x cols`` B block (row-major). Each kept value's index
    drives an ``m:1`` multiplexer that picks its B row, shared by all PEs of the A row; PE (i, j)
    then adds ``groups * n`` products to its accumulator. So a K-long dot product uses ``K * n / m``
    multiplier slots: ``rows * cols * groups * n`` multipliers do the work of a dense engine with
    ``rows * cols * groups * m``.

    Metadata check: a group whose indices are not strictly ascending is malformed; its values are
    replaced by zero before they reach the multipliers and ``error`` (combinational, on the ``a``
    input) is high. Dense mode is ``n == m`` (indices 0..m-1).

    With ``result_buffer`` (the default) a tile's results are read while the next tile
    accumulates (see :class:`~accelsmith.hdl.tensor_cores._OutputStationaryCore`).

    MACs per tick: ``rows * cols * groups * n`` multiplies, ``rows * cols * k_per_step`` dense
    MACs. Latency: 1 tick (the operand registers).
    """

    def __init__(self, rows, cols, groups, n, m, a_shape, b_shape, acc_shape, mac="baseline",
                 encoding="booth", result_buffer=True):
        self.groups, self.n, self.m = groups, n, m
        self.kept = groups * n
        super().__init__(rows, cols, groups * m, a_shape, b_shape, acc_shape, mac, encoding, {
            "a": In(nm_operand_layout(a_shape, rows * self.kept, m)),
            "error": Out(1),
        }, result_buffer=result_buffer)
        self.latency = 1

    def _group_valid(self, index):
        """Per (row, group): the ``n`` indices are strictly ascending."""
        valid = []
        for r in range(self.m_tile):
            for g in range(self.groups):
                base = (r * self.groups + g) * self.n
                pairs = [index[base + t] < index[base + t + 1] for t in range(self.n - 1)]
                valid.append(Cat(*pairs).all() if pairs else C(1, 1))
        return valid

    def elaborate(self, platform):
        m = Module()
        R, N, kept = self.m_tile, self.n_tile, self.kept
        tokens = self._first_tokens(m)
        valid = self._group_valid(self.a.index)
        m.d.comb += self.error.eq(~Cat(*valid).all())
        masked = [Mux(valid[x // self.n], self.a.value[x], 0) for x in range(R * kept)]
        a = [_enabled_reg(m, self, masked[x], self.a_shape, f"a_{x}") for x in range(R * kept)]
        idx = [_enabled_reg(m, self, self.a.index[x], self.a.index[x].shape(), f"idx_{x}")
               for x in range(R * kept)]
        b = [_enabled_reg(m, self, self.b[x], self.b_shape, f"b_{x}")
             for x in range(self.k_per_step * N)]
        b_rows = [Cat(b[k * N + j] for j in range(N)) for k in range(self.k_per_step)]
        row_layout = data.ArrayLayout(self.b_shape, N)
        for i in range(R):
            pairs = [[] for _ in range(N)]
            for t in range(kept):
                x = i * kept + t
                g = t // self.n
                # The activation multiplexer: this kept value's index picks one B row of its group.
                picked = Signal(row_layout, name=f"b_sel_{i}_{t}")
                m.d.comb += picked.eq(Array(b_rows[g * self.m:(g + 1) * self.m])[idx[x]])
                digits = self.datapath.encode(m, a[x], f"enc{x}")
                for j in range(N):
                    pairs[j].append((digits, picked[j]))
            for j in range(N):
                self._accumulate(m, i, j, pairs[j], tokens.__getitem__)
        return m


def bitmap_operand_layout(shape, length: int):
    """One condensed vector: ``bitmap`` (bit i = element i non-zero), ``count`` (its popcount,
    checked), and the non-zero values front-packed into ``value`` (the rest zero)."""
    return data.StructLayout({"bitmap": length, "count": range(length + 1),
                              "value": data.ArrayLayout(shape, length)})


def _popcount(bits):
    return sum(bits[i] for i in range(len(bits))) if len(bits) else C(0, 1)


class OuterProductArray(wiring.Component):
    """Dual-side sparse core: an ``rows x cols`` grid of multipliers computes outer products of
    condensed operands into an ``m_tile x n_tile`` accumulation buffer.

    A step is one k: the condensed column ``A[:, k]`` (bitmap + non-zeros, ``m_tile`` long) and
    the condensed row ``B[k, :]`` (``n_tile`` long). The step runs ``ceil(nnz_a / rows) *
    ceil(nnz_b / cols)`` passes, one per cycle (at least one cycle): pass (p, q) multiplies
    non-zeros ``p*rows ..`` of A with non-zeros ``q*cols ..`` of B, every pair at once, and the
    bitmaps place each product: the product of the A value of rank ``r`` (r-th set bit, row
    ``i``) and the B value of rank ``s`` (column ``j``) is added to accumulator (i, j).

    Accumulation buffer: one bank per output row, one adder per entry. The products of a pass
    have distinct rows and distinct columns (ranks are distinct), so no two ever meet in one
    entry: there are no bank conflicts to resolve and no stall. Each row bank picks its grid row
    with a ``rows:1`` multiplexer and each entry its grid column with a ``cols:1`` multiplexer.

    Malformed input: a vector whose ``count`` differs from its bitmap's popcount is taken as
    empty (its step adds nothing, in one cycle) and ``error`` (combinational, on the ``a``/``b``
    inputs) is high.

    Handshake as :class:`~accelsmith.hdl.digit_serial.DigitSerialMatrix`: a step is taken when
    ``step_valid & step_ready`` (idle, or the last cycle of the step before); ``busy`` until its
    last pass is accumulated; accumulators are final the cycle after ``busy`` falls.
    ``acc_carry`` is zero (binary accumulators).
    """

    def __init__(self, rows, cols, m_tile, n_tile, a_shape, b_shape, acc_shape):
        self.rows, self.cols, self.m_tile, self.n_tile = rows, cols, m_tile, n_tile
        self.k_per_step = 1
        self.latency = 0
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        acc = data.ArrayLayout(data.ArrayLayout(unsigned(acc_shape.width), n_tile), m_tile)
        super().__init__({
            "clear": In(1),
            "step_valid": In(1),
            "step_ready": Out(1),
            "busy": Out(1),
            "a": In(bitmap_operand_layout(a_shape, m_tile)),
            "b": In(bitmap_operand_layout(b_shape, n_tile)),
            "error": Out(1),
            "acc_sum": Out(acc),
            "acc_carry": Out(acc),
        })

    def _side(self, m, port, lanes, accept, chunk, name):
        """Registers of one operand's vector; returns (per element: in this pass, its lane), the
        lane values of this pass, vector empty, index of the last chunk, malformed input."""
        length = len(port.bitmap)
        ok = _popcount(port.bitmap) == port.count
        bitmap = Signal(length, name=f"{name}_bitmap")
        values = Signal(port.value.shape(), name=f"{name}_values")
        ranks = [Signal(range(length + 1), name=f"{name}_rank{i}") for i in range(length)]
        chunks = -(-length // lanes)
        last_chunk = Signal(range(chunks + 1), name=f"{name}_last_chunk")
        empty = Signal(name=f"{name}_empty")
        count = Mux(ok, port.count, 0)
        with m.If(accept):
            m.d.sync += [bitmap.eq(Mux(ok, port.bitmap, 0)), values.eq(port.value),
                         empty.eq(count == 0), last_chunk.eq((count - 1) // lanes)]
            m.d.sync += [ranks[i].eq(_popcount(port.bitmap[:i])) for i in range(length)]
        base = chunk * lanes
        hits = [bitmap[i] & (ranks[i] >= base) & (ranks[i] < base + lanes) for i in range(length)]
        lane_of = [(ranks[i] - base)[:max(1, (lanes - 1).bit_length())] for i in range(length)]
        zero = Const(0, port.value.shape().elem_shape)
        padded = [values[x] for x in range(length)] + [zero] * (chunks * lanes - length)
        lane_values = [Array(padded[c * lanes + r] for c in range(chunks))[chunk] for r in range(lanes)]
        return hits, lane_of, lane_values, empty, last_chunk, ~ok

    def elaborate(self, platform):
        m = Module()
        R, Cn = self.rows, self.cols
        active, accept = Signal(), Signal()
        p = Signal(range(max(2, -(-self.m_tile // R))))
        q = Signal(range(max(2, -(-self.n_tile // Cn))))
        a_hit, a_lane, a_vals, a_empty, a_last, a_bad = self._side(m, self.a, R, accept, p, "a")
        b_hit, b_lane, b_vals, b_empty, b_last, b_bad = self._side(m, self.b, Cn, accept, q, "b")
        m.d.comb += self.error.eq(a_bad | b_bad)
        last_q = b_empty | (q == b_last)
        finish = active & (a_empty | b_empty | ((p == a_last) & last_q))
        m.d.comb += [self.step_ready.eq(~active | finish), accept.eq(self.step_valid & self.step_ready),
                     self.busy.eq(active)]
        with m.If(self.clear):
            m.d.sync += active.eq(0)
        with m.Elif(accept):
            m.d.sync += [active.eq(1), p.eq(0), q.eq(0)]
        with m.Elif(finish):
            m.d.sync += active.eq(0)
        with m.Elif(active):
            with m.If(last_q):
                m.d.sync += [q.eq(0), p.eq(p + 1)]
            with m.Else():
                m.d.sync += q.eq(q + 1)

        products = [[Signal(self.acc_shape, name=f"prod{r}_{c}") for c in range(Cn)] for r in range(R)]
        for r in range(R):
            for c in range(Cn):
                m.d.comb += products[r][c].eq(a_vals[r] * b_vals[c])
        grid_rows = Array(Array(row) for row in products)
        for i in range(self.m_tile):
            row = grid_rows[a_lane[i]]           # this row bank's grid row
            for j in range(self.n_tile):
                acc = self.acc_sum[i][j]
                with m.If(self.clear):
                    m.d.sync += acc.eq(0)
                with m.Elif(active & a_hit[i] & b_hit[j]):
                    m.d.sync += acc.eq(acc + row[b_lane[j]])
        return m
