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

``pipeline`` (0 to 3; the multiplier-adder tree 0 to 2, the weight-stationary systolic array 0 or
1) inserts register stages into every multiply-accumulate for FPGA clocks, each adding one tick
of latency and no loss of throughput:

* 1: the products are registered before they are accumulated (behavioural multipliers: the DSP
  block's output register; the operand registers in front of it are its input registers).
  Carry-save modes register the products' carry-save pair.
* 2 (output-stationary cores, the tree): as 1, and the multipliers' operands are registered again in
  front of each multiplier (the DSP block's input registers); with ``dsp="ecp5"`` both stages
  are the registers inside an ECP5 ``MULT18X18D`` (:func:`~accelsmith.hdl.dsp.ecp5_registered_product`).
  Carry-save modes register the selected partial products, so the digit selection, the
  products' reduction and the accumulator's compression each have a tick.
* 3 (output-stationary cores): as 2, and the products are registered once more: the route from
  a DSP column to an accumulator the placer put far away gets a tick of its own. Carry-save
  modes instead register each PE's digits (and the B value beside them), so the encoder, the
  digit selection, the products' reduction and the accumulator's compression each have a tick.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from accelsmith.models.intformat import IntFormat

from .arith import adder_tree
from .dsp import ecp5_registered_product
from .multiplier import CarrySaveTree, PartialProductGenerator, Term, digit_encoder

__all__ = ["SystolicOSArray", "BroadcastMatrix", "Cube", "SystolicWSArray", "MultiplierAdderTree",
           "BitWeightDatapath", "COMPRESSORS"]


# Carry-save tree schedules: name -> (CarrySaveTree reduction, cell).
COMPRESSORS = {"dadda": ("dadda", "3:2"), "wallace": ("wallace", "3:2"), "4:2": ("dadda", "4:2")}


def _fmt(shape) -> IntFormat:
    return IntFormat(shape.width, shape.signed)


class BitWeightDatapath:
    """How a core turns products into sums: one object per core, shared by its PEs.

    ``mac="baseline"``: behavioural ``*`` and ``+`` (the synthesis tool picks the multiplier).
    Every other mode computes ``a * b`` as ``sum(d[bw] * b * 4**bw)`` over the radix-4 digits
    of ``a`` (``encoding`` ``"booth"`` or ``"ent"``): digits select partial products
    ``{0, +-b, +-2b}`` and a :class:`CarrySaveTree` reduces them, with no carry-propagate adder
    until the result leaves the carry-save form. ``compressor`` picks that tree's schedule (see
    :data:`COMPRESSORS`).
    """

    def __init__(self, mac, a_shape, b_shape, acc_shape, encoding="booth", compressor="dadda"):
        if compressor not in COMPRESSORS:
            raise ValueError(f"unknown compressor {compressor!r}; one of {', '.join(COMPRESSORS)}")
        self.mac, self.encoding, self.compressor = mac, encoding, compressor
        self.a_fmt, self.b_fmt, self.acc_fmt = _fmt(a_shape), _fmt(b_shape), _fmt(acc_shape)
        self.width = acc_shape.width

    @property
    def carry_save(self) -> bool:
        return self.mac != "baseline"

    def encode(self, m, a, name):
        """Digits of ``a`` (baseline: ``a`` itself); call once per value and share the result."""
        if not self.carry_save:
            return a
        m.submodules[name] = enc = digit_encoder(self.a_fmt, self.encoding)
        m.d.comb += enc.a.eq(a)
        return enc.digits

    def partial_products(self, m, digits, b, name, bws=None, shift=0):
        """Rows ``(value, Term)`` of ``d[bw] * b * 4**bw * 2**shift`` for the bit weights ``bws``
        (default all): one partial product and its negation bit per digit."""
        rows = []
        for bw in range(len(digits)) if bws is None else bws:
            m.submodules[f"{name}_pp{bw}"] = ppg = PartialProductGenerator(self.b_fmt)
            m.d.comb += [ppg.digit.eq(digits[bw]), ppg.b.eq(b)]
            rows.append((ppg.pp, Term(ppg.width, True, shift + 2 * bw)))
            rows.append((ppg.neg, Term(1, False, shift + 2 * bw)))
        return rows

    def reduce(self, m, rows, name, width=None):
        """Carry-save reduction of ``rows`` to a ``(sum, carry)`` pair of ``width`` bits."""
        reduction, cell = COMPRESSORS[self.compressor]
        m.submodules[name] = tree = CarrySaveTree([t for _, t in rows], width or self.width,
                                                  reduction=reduction, cell=cell)
        m.d.comb += [tree.rows[f"r{i}"].eq(v) for i, (v, _) in enumerate(rows)]
        return tree.sum, tree.carry

    def dot_rows(self, m, pairs, name):
        """Rows of ``sum(a * b for (digits_of_a, b) in pairs)``."""
        rows = []
        for x, (digits, b) in enumerate(pairs):
            rows += self.partial_products(m, digits, b, f"{name}_{x}")
        return rows


def _clear_of(core):
    """What zeroes a core's registers: ``clear``, or nothing (None) for a ``stall_free`` core,
    whose registers a finished job leaves zero (the flush drains zero operands through every
    stage, the readout shifts zeros into every result row) and which the domain reset (the SoC's
    ABORT) zeroes too: no job-start pulse then fans out to every register and DSP."""
    return None if getattr(core, "stall_free", False) else core.clear


def _priority(m, *branches):
    """Synchronous ``m.If`` / ``m.Elif`` over ``(condition, statements)`` in order of priority;
    branches whose condition is None are left out."""
    for n, (cond, stmts) in enumerate((c, s) for c, s in branches if c is not None):
        with (m.Elif if n else m.If)(cond):
            m.d.sync += stmts


def _enabled_reg(m, core, value, shape, name):
    """A register that loads ``value`` on enabled ticks and is zeroed by ``clear``."""
    reg = Signal(shape, name=name)
    _priority(m, (_clear_of(core), reg.eq(0)), (core.en, reg.eq(value)))
    return reg


def _registered(m, core, value, name):
    """``value`` through one enabled register of its own shape."""
    return _enabled_reg(m, core, value, value.shape(), name)


def _delay(m, core, value, depth, shape, name):
    for d in range(depth):
        value = _enabled_reg(m, core, value, shape, f"{name}_d{d}")
    return value


def _operand_registers(m, core, port, pattern):
    """The operands on ``core``'s ``port`` after their register(s), the first named
    ``pattern.format(x)``. A ``stall_free`` core registers the payload and its ``step`` input as
    they are, then loads a second register with the payload, or zero where the step was not
    real (:attr:`_OutputStationaryCore.edge`): a shell's stream handshake drives one flip-flop
    rather than every operand bit, and that flip-flop drives only the multiplexers of these
    registers, so no path leaves it for the datapath behind them."""
    values, shape = getattr(core, port), getattr(core, f"{port}_shape")
    regs = [_enabled_reg(m, core, values[x], shape, pattern.format(x)) for x in range(len(values))]
    if "step" not in core.signature.members:
        return regs
    real = _registered(m, core, core.step, f"{port}_step")
    return [_enabled_reg(m, core, Mux(real, r, 0), shape, pattern.format(x) + "_z")
            for x, r in enumerate(regs)]


def _skewed_operands(m, core, port, name):
    """Operand ``x`` on ``core``'s ``port`` after ``x + 1`` registers (``{name}{x}_d0`` on), as a
    systolic array's edge takes them. A ``stall_free`` core delays the ``step`` bit alike by a
    step chain (``{port}_step_d{x}``) and gives every operand one more register (``..._z``) that
    loads it, or zero where its step was not real, so a shell's stream handshake drives one
    flip-flop rather than a whole edge, each step bit drives the multiplexers of one operand's
    register, and no step bit reaches the datapath combinationally (compare
    :func:`_operand_registers`)."""
    values, shape = getattr(core, port), getattr(core, f"{port}_shape")
    stepped = "step" in core.signature.members
    out, real = [], getattr(core, "step", None)
    for x in range(len(values)):
        value = _delay(m, core, values[x], x + 1, shape, f"{name}{x}")
        if stepped:
            real = _registered(m, core, real, f"{port}_step_d{x}")
            value = _enabled_reg(m, core, Mux(real, value, 0), shape, f"{name}{x}_z")
        out.append(value)
    return out


class _OutputStationaryCore(wiring.Component):
    """Accumulators are ``acc_sum + acc_carry`` (modulo 2**acc bits): the baseline keeps a binary
    sum and leaves ``acc_carry`` zero; carry-save modes keep both words and leave the
    carry-propagate addition to the reader (once per result row, in the shell).

    With ``result_buffer`` the core has a ``first`` input, a tile-boundary token that travels with
    the step it marks: when it reaches a PE, the PE copies its accumulator (the previous tile's
    final value) into its result register and starts the new tile from that step's products
    alone. ``acc_sum``/``acc_carry`` then show the result registers, so one tile is read out
    while the next accumulates; ``boundary_ticks`` is how many ticks after the token's step all
    PEs have copied (the core's latency).

    ``pipeline``: register stages in each PE's multiply-accumulate, ``dsp``: ``None`` or
    ``"ecp5"`` (see the module docstring). Pipelined cores are ``stall_free``: the shells hold
    ``en`` high in every cycle and feed zero operands while a stream stalls (a bubble adds
    nothing), so no enable fans out to the array's registers and DSP blocks, and they ignore
    ``clear`` (a finished job leaves them zero, see :func:`_clear_of`). Their ``step`` input says
    the operands on ``a``/``b`` are a real step (see :func:`_operand_registers`). They also have a
    ``shift`` input, one bit per row: in a tick where bit ``i`` is high row ``i`` of
    ``acc_sum``/``acc_carry`` takes the row below (the last row: zero; without a result buffer
    in place of accumulating: the shells shift only after the flush), so the reader only ever
    takes row 0 and no row multiplexer spans the array. A reader shifts the rows that still
    hold results (a row whose bit stays low while the one above shifts is already zero), so
    each row's bit can come from a register of its own.
    """

    def __init__(self, m_tile, n_tile, k_per_step, a_shape, b_shape, acc_shape, mac, encoding,
                 extra_members=None, result_buffer=False, compressor="dadda", pipeline=0, dsp=None):
        if pipeline not in (0, 1, 2, 3):
            raise ValueError(f"pipeline {pipeline!r}: output-stationary cores take 0 to 3 stages")
        if dsp not in (None, "ecp5") or dsp and (mac != "baseline" or pipeline < 2):
            raise ValueError(f"dsp {dsp!r}: None, or 'ecp5' with mac 'baseline' and pipeline 2 or 3")
        self.pipeline, self.dsp = pipeline, dsp
        self.stall_free = pipeline > 0
        # The register behind which a stall-free core zeroes the operands of steps that were not
        # real (see _operand_registers): one tick of latency in front of the pipeline stages.
        self.edge = 1 if self.stall_free else 0
        self.m_tile, self.n_tile, self.k_per_step = m_tile, n_tile, k_per_step
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        self.datapath = BitWeightDatapath(mac, a_shape, b_shape, acc_shape, encoding, compressor)
        self.result_buffer = result_buffer
        acc = data.ArrayLayout(data.ArrayLayout(unsigned(acc_shape.width), n_tile), m_tile)
        super().__init__({
            "en": In(1),
            "clear": In(1),
            "a": In(data.ArrayLayout(a_shape, m_tile * k_per_step)),
            "b": In(data.ArrayLayout(b_shape, k_per_step * n_tile)),
            "acc_sum": Out(acc),
            "acc_carry": Out(acc),
            **({"first": In(1)} if result_buffer else {}),
            **({"shift": In(m_tile), "step": In(1)} if pipeline else {}),
            **(extra_members or {}),
        })

    @property
    def boundary_ticks(self) -> int:
        return self.latency

    def _first_tokens(self, m, depth=1):
        """The ``first`` token as PEs see it 1, 2, .. ``depth`` ticks after its step was taken."""
        if not self.result_buffer:
            return [None] * depth
        taps, token = [], self.first
        for d in range(depth):
            token = _enabled_reg(m, self, token, 1, f"first_d{d + 1}")
            taps.append(token)
        return taps

    def _accumulate(self, m, i, j, pairs, token=lambda d: None):
        """Add ``sum(a * b for a, b in pairs)`` to accumulator (i, j); ``a`` as :meth:`encode` d.
        ``token(d)`` (result-buffer cores): the ``first`` token of the step whose operands the
        PE sees now, ``d`` ticks later, so the accumulator starts a new tile with the products
        of its step after the pipeline stages (see the class docstring)."""
        dp, stages, name = self.datapath, self.pipeline, f"pe{i}_{j}"
        if dp.carry_save:
            if stages >= 3:
                # The digits and their B operand registered: the encoder gets a tick of its own.
                pairs = [(_registered(m, self, d, f"{name}_digits{x}_r"), _registered(m, self, b, f"{name}_b{x}_r"))
                         for x, (d, b) in enumerate(pairs)]
            rows = dp.dot_rows(m, pairs, name)
            if stages >= 2:
                rows = [(_registered(m, self, v, f"{name}_pp_r{x}"), t) for x, (v, t) in enumerate(rows)]
            if stages >= 1:
                pair = dp.reduce(m, rows, f"{name}_prod_csa")
                rows = [(_registered(m, self, v, f"{name}_prod_{h}_r"), Term(dp.width))
                        for v, h in zip(pair, "sc")]
        elif stages >= 2 and self.dsp == "ecp5":
            rows = [ecp5_registered_product(m, self, a, b, f"{name}_dsp{x}", _clear_of(self))
                    for x, (a, b) in enumerate(pairs)]
        else:
            if stages >= 2:
                # The multiplier's operand registers (a DSP block's input registers). Where
                # PEs share an operand, synthesis may merge the copies again.
                pairs = [(_registered(m, self, a, f"{name}_a{x}_r"), _registered(m, self, b, f"{name}_b{x}_r"))
                         for x, (a, b) in enumerate(pairs)]
            rows = [a * b for a, b in pairs]
            if stages >= 1:
                rows = [_registered(m, self, p, f"{name}_prod{x}_r") for x, p in enumerate(rows)]
        if stages >= 3 and not dp.carry_save:
            # The products once more, so they cross from a DSP column to accumulators placed far
            # from it in a tick of their own.
            rows = [_registered(m, self, v, f"{name}_prod_rr{x}") for x, v in enumerate(rows)]
        first = token(stages + self.edge)
        out_s, out_c = self.acc_sum[i][j], self.acc_carry[i][j]
        if self.result_buffer:
            acc_s = Signal(out_s.shape(), name=f"acc_{i}_{j}")
            acc_c = Signal(out_c.shape(), name=f"acc_c_{i}_{j}") if dp.carry_save else C(0, out_c.shape())
            base_s, base_c = Mux(first, 0, acc_s), Mux(first, 0, acc_c)
        else:
            acc_s, acc_c = out_s, out_c
            base_s, base_c = acc_s, acc_c
        if dp.carry_save:
            rows = rows + [(base_s, Term(dp.width)), (base_c, Term(dp.width))]
            new_s, new_c = dp.reduce(m, rows, f"{name}_csa")
            updates = [acc_s.eq(new_s), acc_c.eq(new_c)]
        else:
            updates = [acc_s.eq(base_s + adder_tree(rows))]
        # Pipelined cores read out by shifting every row one up (row 0 leaves) instead of
        # through a row multiplexer: each result register only sees its neighbour below.
        below = ([self.acc_sum[i + 1][j], self.acc_carry[i + 1][j]] if i + 1 < self.m_tile else [0, 0])
        shifted = [out_s.eq(below[0]), out_c.eq(below[1])] if self.pipeline else None
        live = [acc_s, acc_c] if dp.carry_save or not self.result_buffer else [acc_s]
        clear = _clear_of(self)
        # Without a result buffer the rows shift out of the accumulators themselves, after the
        # flush: the products are zero by then.
        _priority(m, (clear, [v.eq(0) for v in live]),
                  (self.shift[i] if shifted and not self.result_buffer else None, shifted),
                  (self.en, updates))
        if self.result_buffer:
            _priority(m, (clear, [out_s.eq(0), out_c.eq(0)]),
                      (self.en & first, [out_s.eq(acc_s), out_c.eq(acc_c)]),
                      (self.shift[i] if shifted else None, shifted))


class SystolicOSArray(_OutputStationaryCore):
    """Output-stationary systolic array of ``rows x cols`` multiply-accumulate PEs.

    A values enter at the left edge and move one PE right per tick, B values enter at the top and
    move one PE down per tick; row ``i`` of A is delayed by ``i`` ticks and column ``j`` of B by
    ``j`` ticks at the edge (input skew inside the core), so PE (i, j) multiplies A[i, k] by
    B[k, j] at tick ``k + i + j + 1`` and adds the product to its own accumulator.

    MACs per tick: ``rows * cols``. Latency: ``rows + cols - 1 + pipeline`` ticks after the last
    step, one more when pipelined (the zeroing edge register, see :func:`_skewed_operands`).
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape, mac="baseline", encoding="booth",
                 result_buffer=False, compressor="dadda", pipeline=0, dsp=None):
        super().__init__(rows, cols, 1, a_shape, b_shape, acc_shape, mac, encoding,
                         result_buffer=result_buffer, compressor=compressor, pipeline=pipeline, dsp=dsp)
        self.latency = rows + cols - 1 + pipeline + self.edge

    def elaborate(self, platform):
        m = Module()
        R, C = self.m_tile, self.n_tile
        # The tile token reaches PE (i, j) with its step's operands, i + j + 1 ticks later.
        tokens = self._first_tokens(m, R + C - 1 + self.pipeline + self.edge)
        a_in = [[None] * C for _ in range(R)]
        b_in = [[None] * C for _ in range(R)]
        a_edge, b_edge = _skewed_operands(m, self, "a", "a_skew"), _skewed_operands(m, self, "b", "b_skew")
        for i in range(R):
            a_in[i][0] = a_edge[i]
        for j in range(C):
            b_in[0][j] = b_edge[j]
        for i in range(R):
            for j in range(C):
                if j + 1 < C:
                    a_in[i][j + 1] = _enabled_reg(m, self, a_in[i][j], self.a_shape, f"a_{i}_{j}")
                if i + 1 < R:
                    b_in[i + 1][j] = _enabled_reg(m, self, b_in[i][j], self.b_shape, f"b_{i}_{j}")
                # Each PE encodes the A value passing through it (OPT1 keeps encoders in PEs).
                digits = self.datapath.encode(m, a_in[i][j], f"enc{i}_{j}")
                self._accumulate(m, i, j, [(digits, b_in[i][j])], lambda d, x=i + j: tokens[x + d])
        return m


class BroadcastMatrix(_OutputStationaryCore):
    """2D-Matrix: ``rows x cols`` MACs; each registered A value is broadcast along its row and
    each B value along its column, so the whole outer product of one step lands in one tick.

    MACs per tick: ``rows * cols``. Latency: ``1 + pipeline`` ticks (the operand registers, then
    the pipeline stages), one more when pipelined (the zeroing edge register).
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape, mac="baseline", encoding="booth",
                 result_buffer=False, compressor="dadda", pipeline=0, dsp=None):
        super().__init__(rows, cols, 1, a_shape, b_shape, acc_shape, mac, encoding,
                         result_buffer=result_buffer, compressor=compressor, pipeline=pipeline, dsp=dsp)
        self.latency = 1 + pipeline + self.edge

    def elaborate(self, platform):
        m = Module()
        tokens = self._first_tokens(m, 1 + self.pipeline + self.edge)
        a, b = _operand_registers(m, self, "a", "a_{}"), _operand_registers(m, self, "b", "b_{}")
        # A row's PEs see the same value: one encoder per row (synthesis would merge copies).
        digits = [self.datapath.encode(m, a[i], f"enc{i}") for i in range(self.m_tile)]
        for i in range(self.m_tile):
            for j in range(self.n_tile):
                self._accumulate(m, i, j, [(digits[i], b[j])], tokens.__getitem__)
        return m


class Cube(_OutputStationaryCore):
    """3D-Cube: ``n x n x n`` multipliers compute an n x n x n block of the GEMM triple loop per
    tick: ``n*n`` dot products of length ``n`` (adder trees) added to ``n*n`` accumulators.

    MACs per tick: ``n**3``. Latency: ``1 + pipeline`` ticks (the operand registers, then the
    pipeline stages), one more when pipelined (the zeroing edge register).
    """

    def __init__(self, n, a_shape, b_shape, acc_shape, mac="baseline", encoding="booth",
                 result_buffer=False, compressor="dadda", pipeline=0, dsp=None):
        super().__init__(n, n, n, a_shape, b_shape, acc_shape, mac, encoding,
                         result_buffer=result_buffer, compressor=compressor, pipeline=pipeline, dsp=dsp)
        self.latency = 1 + pipeline + self.edge

    def elaborate(self, platform):
        m = Module()
        n = self.m_tile
        tokens = self._first_tokens(m, 1 + self.pipeline + self.edge)
        a, b = _operand_registers(m, self, "a", "a_{}"), _operand_registers(m, self, "b", "b_{}")
        digits = [self.datapath.encode(m, a[x], f"enc{x}") for x in range(n * n)]
        for i in range(n):
            for j in range(n):
                # OPT1: the n products and the accumulator's two words enter one carry-save tree.
                self._accumulate(m, i, j, [(digits[i * n + k], b[k * n + j]) for k in range(n)],
                                 tokens.__getitem__)
        return m


class _WeightStationaryCore(wiring.Component):
    """Outputs are ``out + out_carry`` (modulo 2**acc bits): the baseline leaves ``out_carry``
    zero; carry-save modes present both words and leave the carry-propagate addition to the
    shell, which merges it with its accumulation (one adder instead of two in a row).

    ``pipeline``: 0 or 1 register stages after the multipliers (see the module docstring).
    Pipelined cores are ``stall_free``: the shell holds ``en`` high and ignores the outputs of
    the cycles where the A stream stalled (a row's products only ever reach that row's outputs,
    so those cycles' operands need no zeroing), and they ignore ``clear`` (every step loads
    every weight row before its A rows)."""

    def __init__(self, k_per_step, n_tile, a_shape, b_shape, acc_shape, mac, encoding, compressor,
                 pipeline=0, max_pipeline=1, dsp=None):
        if pipeline not in range(max_pipeline + 1):
            raise ValueError(f"pipeline {pipeline!r}: {type(self).__name__} takes 0 to {max_pipeline} stages")
        if dsp not in (None, "ecp5") or dsp and (mac != "baseline" or pipeline != 2):
            raise ValueError(f"dsp {dsp!r}: None, or 'ecp5' with mac 'baseline' and pipeline 2")
        self.pipeline, self.dsp = pipeline, dsp
        self.stall_free = pipeline > 0
        self.k_per_step, self.n_tile = k_per_step, n_tile
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        self.datapath = BitWeightDatapath(mac, a_shape, b_shape, acc_shape, encoding, compressor)
        super().__init__({
            "en": In(1),
            "clear": In(1),
            "w_en": In(1),
            "w_row": In(range(k_per_step)),
            "w_data": In(data.ArrayLayout(b_shape, n_tile)),
            "a": In(data.ArrayLayout(a_shape, k_per_step)),
            "out": Out(data.ArrayLayout(acc_shape, n_tile)),
            "out_carry": Out(data.ArrayLayout(acc_shape, n_tile)),
        })

    def _weights(self, m):
        weights = [[Signal(self.b_shape, name=f"w_{k}_{j}") for j in range(self.n_tile)]
                   for k in range(self.k_per_step)]
        w_en, w_row, w_data = self.w_en, self.w_row, self.w_data
        if self.stall_free:
            # A weight row is written a cycle late, from registers, so the shell's handshake
            # drives three registers rather than every weight's enable. Safe: a weight row is
            # first used a tick after the step's first A row is taken, which follows its write.
            w_en, w_row, w_data = (_registered(m, self, v, f"{name}_q") for v, name in
                                   ((w_en, "w_en"), (w_row, "w_row"), (w_data, "w_data")))
        for k, row in enumerate(weights):
            _priority(m, (_clear_of(self), [w.eq(0) for w in row]),
                      (w_en & (w_row == k), [w.eq(w_data[j]) for j, w in enumerate(row)]))
        return weights


class SystolicWSArray(_WeightStationaryCore):
    """Weight-stationary systolic array of ``rows x cols`` PEs, PE (r, c) holding weight B[r, c].

    A row values enter at the left edge (value ``r`` delayed ``r`` ticks) and move right one PE
    per tick; partial sums move down one PE per tick and leave at the bottom edge, where column
    ``c`` is delayed ``cols - 1 - c`` ticks so a whole output row appears at once.

    With ``mac="opt1"`` each PE encodes its A value and partial sums move down in carry-save
    form (two words) and leave the array in that form.

    With ``pipeline=1`` every PE registers its product before adding it to the partial sum
    passing down; all PEs shift by the same tick, so the partial sums still meet their products.

    MACs per tick: ``rows * cols``. Latency: ``rows + cols + pipeline`` ticks from an A row to its
    outputs.
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape, mac="baseline", encoding="booth",
                 compressor="dadda", pipeline=0):
        super().__init__(rows, cols, a_shape, b_shape, acc_shape, mac, encoding, compressor, pipeline)
        self.latency = rows + cols + pipeline

    def elaborate(self, platform):
        m = Module()
        R, C = self.k_per_step, self.n_tile
        dp = self.datapath
        w = self._weights(m)
        width = self.acc_shape.width
        psum = [(Const(0, width), Const(0, width))] * C
        a_edge = _skewed_operands(m, self, "a", "a_skew")
        for r in range(R):
            a = a_edge[r]
            for c in range(C):
                s_in, c_in = psum[c]
                name = f"pe{r}_{c}"
                if dp.carry_save:
                    rows = dp.partial_products(m, dp.encode(m, a, f"enc{r}_{c}"), w[r][c], name)
                    if self.pipeline:
                        pair = dp.reduce(m, rows, f"{name}_prod_csa")
                        rows = [(_registered(m, self, v, f"{name}_prod_{h}_r"), Term(width))
                                for v, h in zip(pair, "sc")]
                    new = dp.reduce(m, rows + [(s_in, Term(width)), (c_in, Term(width))],
                                    f"{name}_csa")
                else:
                    product = a * w[r][c]
                    if self.pipeline:
                        product = _registered(m, self, product, f"{name}_prod_r")
                    new = (s_in + product, c_in)
                psum[c] = tuple(_enabled_reg(m, self, v, unsigned(width), f"psum_{r}_{c}_{h}")
                                for v, h in zip(new, "sc"))
                if c + 1 < C:
                    a = _enabled_reg(m, self, a, self.a_shape, f"a_{r}_{c}")
        for c in range(C):
            m.d.comb += self.out[c].eq(_delay(m, self, psum[c][0], C - 1 - c, self.acc_shape,
                                              f"deskew{c}"))
            if dp.carry_save:
                m.d.comb += self.out_carry[c].eq(_delay(m, self, psum[c][1], C - 1 - c,
                                                        self.acc_shape, f"deskew{c}_c"))
        return m


class MultiplierAdderTree(_WeightStationaryCore):
    """``units`` dot-product units, each ``k`` multipliers feeding a balanced adder tree, sharing
    one registered A row; unit ``j`` holds column ``j`` of the weight block.

    With ``mac="opt2"`` (same-bit-weight compressor array) one encoder per A element is shared by
    all units; each unit reduces its ``k`` partial products of one bit weight in a carry-save
    tree (one per bit weight), then the bit-weight sums are shifted and reduced together to one
    carry-save pair per unit, registered as ``out``/``out_carry``.

    With ``pipeline=1`` the products (opt2: each bit weight's carry-save pair) are registered
    before the adder tree (opt2: the shift-and-reduce); ``pipeline=2`` also registers the
    multipliers' operands (opt2: the selected partial products), with ``dsp="ecp5"`` inside
    ECP5 ``MULT18X18D`` blocks (their input and output registers).

    MACs per tick: ``k * units``. Latency: ``2 + pipeline`` ticks (operand register, the
    pipeline stages, then the registered sum).
    """

    def __init__(self, k, units, a_shape, b_shape, acc_shape, mac="baseline", encoding="booth",
                 compressor="dadda", pipeline=0, dsp=None):
        super().__init__(k, units, a_shape, b_shape, acc_shape, mac, encoding, compressor, pipeline,
                         max_pipeline=2, dsp=dsp)
        self.latency = 2 + pipeline

    def elaborate(self, platform):
        m = Module()
        dp = self.datapath
        w = self._weights(m)
        k = self.k_per_step
        width = self.acc_shape.width
        a = _operand_registers(m, self, "a", "a_{}")
        digits = [dp.encode(m, a[x], f"enc{x}") for x in range(k)]
        for j in range(self.n_tile):
            if dp.carry_save:
                weight_sums = []
                for bw in range(len(digits[0])):
                    rows = []
                    for x in range(k):
                        rows += dp.partial_products(m, digits[x], w[x][j], f"u{j}_{x}", [bw], -2 * bw)
                    if self.pipeline >= 2:
                        rows = [(_registered(m, self, v, f"u{j}_bw{bw}_pp_r{x}"), t)
                                for x, (v, t) in enumerate(rows)]
                    # Modulo 2**(width - 2bw): exact once shifted into place.
                    s_bw, c_bw = dp.reduce(m, rows, f"u{j}_bw{bw}_csa", max(1, width - 2 * bw))
                    if self.pipeline:
                        s_bw = _registered(m, self, s_bw, f"u{j}_bw{bw}_s_r")
                        c_bw = _registered(m, self, c_bw, f"u{j}_bw{bw}_c_r")
                    weight_sums += [(s_bw, Term(len(s_bw), False, 2 * bw)),
                                    (c_bw, Term(len(c_bw), False, 2 * bw))]
                dot, carry = dp.reduce(m, weight_sums, f"u{j}_csa")
                m.d.comb += self.out_carry[j].eq(_enabled_reg(m, self, carry, self.acc_shape,
                                                              f"carry_{j}"))
            elif self.dsp == "ecp5":
                dot = adder_tree([ecp5_registered_product(m, self, a[x], w[x][j], f"u{j}_dsp{x}",
                                                          _clear_of(self)) for x in range(k)])
            else:
                pairs = [(a[x], w[x][j]) for x in range(k)]
                if self.pipeline >= 2:
                    # The multipliers' operand registers (a DSP block's input registers).
                    pairs = [(_registered(m, self, a, f"u{j}_a{x}_r"), _registered(m, self, b, f"u{j}_w{x}_r"))
                             for x, (a, b) in enumerate(pairs)]
                products = [a * b for a, b in pairs]
                if self.pipeline:
                    products = [_registered(m, self, p, f"u{j}_prod{x}_r") for x, p in enumerate(products)]
                dot = adder_tree(products)
            m.d.comb += self.out[j].eq(_enabled_reg(m, self, dot, self.acc_shape, f"sum_{j}"))
        return m
