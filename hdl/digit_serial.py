"""Digit-serial 2D-Matrix cores: PEs that spend cycles only on non-zero radix-4 digits.

All cores here are ``rows x cols`` output-stationary grids (A broadcast along rows, B along
columns, like :class:`~accelsmith.hdl.tensor_cores.BroadcastMatrix`) whose step takes a number
of cycles that depends on the data; the shell hands them one step at a time
(``step_valid``/``step_ready``) and waits for ``busy`` to fall before reading the accumulators.
Accumulators are carry-save pairs (``acc_sum + acc_carry``); the one carry-propagate adder per
output column sits in the shell's readout.

Modes (``mac``), with ``G = 4`` k values per step and ``nd`` digits per A value:

* ``opt3`` sparsity-encoding PE: for each bit weight ``bw`` in turn, the non-zero digits among the
  step's 4 A digits of that weight are issued one per cycle (digit and position); the PE selects
  ``+-B`` or ``+-2B`` of that position, shifts it by ``2bw`` and adds it to its sum and carry
  words through a carry-save tree. Every PE has its own encoder and issue logic.
  Cycles per step: ``sum over bw of max(1, max over rows of nnz(row, bw))`` (rows run in
  lockstep).
* ``opt4c``: ``opt3`` with the encoders and issue logic moved out of the PEs, one per row of A,
  shared by the row's ``cols`` PEs. Same cycles.
* ``opt4e``: ``opt4c`` whose PEs take all bit weights at once: ``nd`` lanes per output, one per bit
  weight (fixed shifts, no shifter), reduced with the accumulator's two words in one carry-save
  tree (the 6:2 compressor for INT8). Cycles per step: ``max(1, max over rows and bw of nnz)``.
* ``bitslice`` (Laconic-style reference): one k value per step; both operands are
  digit-encoded, and every pair of non-zero digits (one of A, one of B) is one cycle: the PE adds
  ``+-2**e`` (one-hot) for the pair's combined exponent. Rows run through their A terms and
  columns through their B terms in lockstep: ``P * Q`` cycles for ``P`` = most A terms in the
  column of A, ``Q`` = most B terms in the row of B, 1 if either is 0.

The cycle formulas are implemented by :func:`accelsmith.models.bitweight.step_cycles`, which
the testbench checks against the hardware's CYCLES register exactly.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from accelsmith.models.digits import digit_count

from .multiplier import DIGIT, PartialProductGenerator, Term, digit_encoder
from .tensor_cores import BitWeightDatapath

__all__ = ["SparseDigitIssuer", "DigitSerialMatrix", "DIGIT_SERIAL_MACS"]

DIGIT_SERIAL_MACS = ("opt3", "opt4c", "opt4e", "bitslice")


class SparseDigitIssuer(wiring.Component):
    """Issues the set positions of ``mask`` one per cycle, lowest first.

    ``fresh`` starts a new mask (``mask`` is used instead of the remembered remainder);
    ``advance`` consumes the position on offer. ``pos``/``valid`` is the position on offer this
    cycle (``valid`` low when nothing is left); ``last`` is high when nothing remains after it.
    Latency 0 (``pos`` follows ``mask`` combinationally when ``fresh``); one position per cycle.
    """

    def __init__(self, width: int):
        self.width = width
        super().__init__({"mask": In(width), "fresh": In(1), "advance": In(1), "clear": In(1),
                          "pos": Out(range(max(2, width))), "valid": Out(1), "last": Out(1)})

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(self.width)
        current = Signal(self.width)
        m.d.comb += current.eq(Mux(self.fresh, self.mask, remaining))
        rest = Signal(self.width)
        m.d.comb += rest.eq(current & (current - 1))          # clear the lowest set bit
        for p in reversed(range(self.width)):
            with m.If(current[p]):
                m.d.comb += self.pos.eq(p)
        m.d.comb += [self.valid.eq(current.any()), self.last.eq(~rest.any())]
        with m.If(self.clear):
            m.d.sync += remaining.eq(0)
        with m.Elif(self.advance):
            m.d.sync += remaining.eq(rest)
        with m.Elif(self.fresh):
            m.d.sync += remaining.eq(current)
        return m


def _nonzero(digit) -> Value:
    return digit.one | digit.two


class DigitSerialMatrix(wiring.Component):
    """A ``rows x cols`` digit-serial output-stationary core (see the module docstring for the
    modes and their cycle counts).

    Per step the shell offers one A block (``rows x k_per_step``) and one B block
    (``k_per_step x cols``) with ``step_valid``; the core takes it in a cycle where
    ``step_ready`` is high (when idle, or in the last cycle of the step before, so steps follow
    each other without a bubble) and is ``busy`` until its last cycle has been accumulated.
    ``clear`` zeroes the accumulators. ``latency`` is 0: accumulators are final in the cycle
    after ``busy`` falls.
    """

    def __init__(self, rows, cols, a_shape, b_shape, acc_shape, mac, encoding="ent",
                 compressor="dadda"):
        if mac not in DIGIT_SERIAL_MACS:
            raise ValueError(f"mac {mac!r} is not digit-serial")
        self.m_tile, self.n_tile = rows, cols
        self.k_per_step = 1 if mac == "bitslice" else 4
        self.a_shape, self.b_shape, self.acc_shape = a_shape, b_shape, acc_shape
        self.mac, self.encoding = mac, encoding
        self.datapath = BitWeightDatapath(mac, a_shape, b_shape, acc_shape, encoding, compressor)
        self.latency = 0
        acc = data.ArrayLayout(data.ArrayLayout(unsigned(acc_shape.width), cols), rows)
        super().__init__({
            "clear": In(1),
            "step_valid": In(1),
            "step_ready": Out(1),
            "busy": Out(1),
            "a": In(data.ArrayLayout(a_shape, rows * self.k_per_step)),
            "b": In(data.ArrayLayout(b_shape, self.k_per_step * cols)),
            "acc_sum": Out(acc),
            "acc_carry": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        R, C, G = self.m_tile, self.n_tile, self.k_per_step
        a_cur = Signal(data.ArrayLayout(self.a_shape, R * G))
        b_cur = Signal(data.ArrayLayout(self.b_shape, G * C))
        active = Signal()
        finish = Signal()
        accept = Signal()
        m.d.comb += [self.step_ready.eq(~active | finish), accept.eq(self.step_valid & self.step_ready),
                     self.busy.eq(active)]
        with m.If(self.clear):
            m.d.sync += active.eq(0)
        with m.Elif(accept):
            m.d.sync += [active.eq(1), a_cur.eq(self.a), b_cur.eq(self.b)]
        with m.Elif(finish):
            m.d.sync += active.eq(0)
        self._accept, self._active, self._finish = accept, active, finish
        if self.mac == "bitslice":
            self._bitslice(m, a_cur, b_cur)
        else:
            self._digit_serial(m, a_cur, b_cur)
        return m

    def _encode(self, m, value, of_a: bool, name):
        dp = self.datapath
        enc = digit_encoder(dp.a_fmt if of_a else dp.b_fmt, self.encoding)
        m.submodules[name] = enc
        m.d.comb += enc.a.eq(value)
        return enc.digits

    def _accumulate(self, m, i, j, rows):
        """Carry-save accumulate ``rows`` into output (i, j) in every active cycle."""
        dp = self.datapath
        s, c = self.acc_sum[i][j], self.acc_carry[i][j]
        new_s, new_c = dp.reduce(m, rows + [(s, Term(dp.width)), (c, Term(dp.width))],
                                 f"pe{i}_{j}_csa")
        with m.If(self.clear):
            m.d.sync += [s.eq(0), c.eq(0)]
        with m.Elif(self._active):
            m.d.sync += [s.eq(new_s), c.eq(new_c)]

    def _issuer(self, m, mask, fresh, advance, name):
        m.submodules[name] = iss = SparseDigitIssuer(len(mask))
        m.d.comb += [iss.mask.eq(mask), iss.fresh.eq(fresh), iss.advance.eq(advance),
                     iss.clear.eq(self.clear)]
        return iss

    def _pp(self, m, digit_word, b, name):
        m.submodules[name] = ppg = PartialProductGenerator(self.datapath.b_fmt)
        m.d.comb += [ppg.digit.as_value().eq(digit_word), ppg.b.eq(b)]
        return ppg

    def _digit_serial(self, m, a_cur, b_cur):
        """opt3 / opt4c / opt4e: A digits issued per bit weight, B selected by position."""
        R, C, G = self.m_tile, self.n_tile, self.k_per_step
        nd = digit_count(self.datapath.a_fmt, self.encoding)
        lanes = nd if self.mac == "opt4e" else 1
        bw = Signal(range(nd + 1))
        fresh = Signal()
        all_last = Signal()
        pass_done = self._active & all_last   # every issuer has offered its last digit
        m.d.comb += self._finish.eq(pass_done & (bw == nd - 1) if lanes == 1 else pass_done)
        with m.If(self._accept):
            m.d.sync += [bw.eq(0), fresh.eq(1)]
        with m.Elif(pass_done):
            m.d.sync += [bw.eq(bw + 1), fresh.eq(1)]
        with m.Else():
            m.d.sync += fresh.eq(0)

        lasts = []

        def issue(digits_row, name):
            """Issuers of one row's digits: per lane (bit weight), (digit word, pos, shift)."""
            out = []
            for lane in range(lanes):
                words = [Array(digits_row[kk][b].as_value() for b in range(nd))[bw] if lanes == 1
                         else digits_row[kk][lane].as_value() for kk in range(G)]
                mask = Cat(w[0] | w[1] for w in words)
                iss = self._issuer(m, mask, fresh, self._active, f"{name}_iss{lane}")
                lasts.append(iss.last)
                word = Mux(iss.valid, Array(words)[iss.pos], 0)
                out.append((word, iss.pos))
            return out

        shared = self.mac in ("opt4c", "opt4e")
        row_issue = []
        for i in range(R):
            if shared:
                digits_row = [self._encode(m, a_cur[i * G + kk], True, f"enc{i}_{kk}") for kk in range(G)]
                row_issue.append(issue(digits_row, f"row{i}"))
        for i in range(R):
            for j in range(C):
                if shared:
                    lanes_ij = row_issue[i]
                else:   # opt3: every PE encodes and issues for itself
                    digits_row = [self._encode(m, a_cur[i * G + kk], True, f"pe{i}_{j}_enc{kk}")
                                  for kk in range(G)]
                    lanes_ij = issue(digits_row, f"pe{i}_{j}")
                rows = []
                for lane, (word, pos) in enumerate(lanes_ij):
                    b_sel = Array(b_cur[kk * C + j] for kk in range(G))[pos]
                    ppg = self._pp(m, word, b_sel, f"pe{i}_{j}_pp{lane}")
                    if lanes == 1:
                        # Shift by the current bit weight: a 2bw-way select of wires.
                        width = ppg.width + 2 * (nd - 1)
                        shifted = Signal(signed(width), name=f"pe{i}_{j}_shifted")
                        neg_at = Signal(2 * nd, name=f"pe{i}_{j}_neg")
                        with m.Switch(bw):
                            for b in range(nd):
                                with m.Case(b):
                                    m.d.comb += [shifted.eq(ppg.pp << (2 * b)),
                                                 neg_at.eq(ppg.neg << (2 * b))]
                        rows += [(shifted, Term(width, True, 0)), (neg_at, Term(2 * nd, False, 0))]
                    else:
                        rows += [(ppg.pp, Term(ppg.width, True, 2 * lane)),
                                 (ppg.neg, Term(1, False, 2 * lane))]
                self._accumulate(m, i, j, rows)
        m.d.comb += all_last.eq(Cat(*lasts).all())

    def _bitslice(self, m, a_cur, b_cur):
        """Laconic-style: each cycle one (A digit, B digit) pair per PE, as +-2**e."""
        R, C = self.m_tile, self.n_tile
        dp = self.datapath
        fresh_a, fresh_b = Signal(), Signal()
        a_digits = [self._encode(m, a_cur[i], True, f"enc_a{i}") for i in range(R)]
        b_digits = [self._encode(m, b_cur[j], False, f"enc_b{j}") for j in range(C)]
        a_masks = [Cat(_nonzero(d) for d in digs) for digs in a_digits]
        b_masks = [Cat(_nonzero(d) for d in digs) for digs in b_digits]
        b_pass_done = Signal()
        a_iss = [self._issuer(m, a_masks[i], fresh_a, self._active & b_pass_done, f"row{i}_iss")
                 for i in range(R)]
        b_iss = [self._issuer(m, b_masks[j], fresh_b | fresh_a, self._active, f"col{j}_iss")
                 for j in range(C)]
        a_zero = ~Cat(mk.any() for mk in a_masks).any()
        b_zero = ~Cat(mk.any() for mk in b_masks).any()
        m.d.comb += [b_pass_done.eq(Cat(x.last for x in b_iss).all()),
                     self._finish.eq(self._active & ((b_pass_done & Cat(x.last for x in a_iss).all())
                                                     | a_zero | b_zero))]
        with m.If(self._accept):
            m.d.sync += [fresh_a.eq(1), fresh_b.eq(1)]
        with m.Else():
            m.d.sync += [fresh_a.eq(0), fresh_b.eq(self._active & b_pass_done)]

        def term(digits, iss):
            word = data.View(DIGIT, Array(digits[x].as_value() for x in range(len(digits)))[iss.pos])
            exponent = Cat(word.two, iss.pos)     # 2 * position + (magnitude 2)
            return iss.valid, word.neg, exponent

        width = dp.width
        for i in range(R):
            va, na, ea = term(a_digits[i], a_iss[i])
            for j in range(C):
                vb, nb, eb = term(b_digits[j], b_iss[j])
                e = Signal(len(ea) + 1, name=f"pe{i}_{j}_exp")
                m.d.comb += e.eq(ea + eb)
                valid, neg = va & vb, na ^ nb
                one_hot = Signal(width, name=f"pe{i}_{j}_term")
                m.d.comb += one_hot.eq(Mux(valid, (Const(1, width) << e)[:width] ^ neg.replicate(width), 0))
                self._accumulate(m, i, j, [(one_hot, Term(width)), (valid & neg, Term(1))])

