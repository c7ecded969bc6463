"""Multiplier building blocks in the bit-weight dimension, shared by every optimised engine.

A product ``a * b`` is ``sum(d[bw] * b * 4**bw)`` over radix-4 digits ``d[bw]`` of ``a``
(:mod:`accelsmith.models.digits`). The blocks here are the pieces of that sum: digit encoders
(:class:`BoothEncoder`, :class:`ENTEncoder`), the partial-product generator
(:class:`PartialProductGenerator`, ``{0, +-b, +-2b}``), bit-level carry-save reduction
(:class:`CarrySaveTree`, any number of rows to two) and the final carry-propagate adder
(:class:`CarryPropagateAdder`). All are combinational (latency 0); registers belong to the PEs
that use them.

Digits travel as :data:`DIGIT`: one-hot magnitude (``one``, ``two``) and ``neg``; a zero digit has
all three bits clear.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from accelsmith.models.digits import booth_digit_count, ent_digit_count
from accelsmith.models.intformat import IntFormat

__all__ = ["DIGIT", "BoothEncoder", "ENTEncoder", "digit_encoder", "PartialProductGenerator",
           "Term", "CarrySaveTree", "CarryPropagateAdder", "shape_of"]

DIGIT = data.StructLayout({"one": 1, "two": 1, "neg": 1})


def shape_of(fmt: IntFormat):
    return signed(fmt.bits) if fmt.signed else unsigned(fmt.bits)


class BoothEncoder(wiring.Component):
    """Radix-4 modified Booth encoder: ``a`` (any :class:`IntFormat`) to ``n`` digits.

    Digit ``bw`` looks at bits ``(2bw+1, 2bw, 2bw-1)`` of ``a`` (sign-extended, bit -1 = 0):
    ``one = x0 ^ x-1``, ``two`` for the patterns 011/100, ``neg = x1`` except for 111 (zero).
    ``n = ceil(bits/2)`` for signed formats, one more for unsigned. Combinational.
    """

    def __init__(self, fmt: IntFormat):
        self.fmt = fmt
        self.count = booth_digit_count(fmt)
        super().__init__({"a": In(shape_of(fmt)), "digits": Out(data.ArrayLayout(DIGIT, self.count))})

    def elaborate(self, platform):
        m = Module()
        width = 2 * self.count
        x = Signal(width + 1)   # x[0] is the implicit bit -1
        a = self.a
        sign = a[-1] if self.fmt.signed else C(0, 1)
        m.d.comb += x.eq(Cat(C(0, 1), a, sign.replicate(width - self.fmt.bits)))
        for bw in range(self.count):
            lo, mid, hi = x[2 * bw], x[2 * bw + 1], x[2 * bw + 2]
            d = self.digits[bw]
            m.d.comb += [d.one.eq(mid ^ lo),
                         d.two.eq((hi & ~mid & ~lo) | (~hi & mid & lo)),
                         d.neg.eq(hi & ~(mid & lo))]
        return m


class ENTEncoder(wiring.Component):
    """EN-T encoder: ``a`` to sign-magnitude, then radix-4 digits of the magnitude with a carry
    chain (pair + carry = 0, 1, 2 give that digit, 3 gives -1 and a carry, 4 gives 0 and a carry);
    the sign of ``a`` flips every non-zero digit. Combinational; the magnitude costs one negation
    (shared by all digits), the carry chain one AND-OR per digit.
    """

    def __init__(self, fmt: IntFormat):
        self.fmt = fmt
        self.count = ent_digit_count(fmt)
        super().__init__({"a": In(shape_of(fmt)), "digits": Out(data.ArrayLayout(DIGIT, self.count))})

    def elaborate(self, platform):
        m = Module()
        a = self.a
        sign = a[-1] if self.fmt.signed else C(0, 1)
        mag = Signal(2 * self.count)
        m.d.comb += mag.eq(Mux(sign, -a, a))
        carry = C(0, 1)
        for bw in range(self.count):
            a0, a1 = mag[2 * bw], mag[2 * bw + 1]
            d = self.digits[bw]
            # v = pair + carry: 1 -> +1, 2 -> +2, 3 -> -1 (carry out), 4 -> 0 (carry out)
            one, two = a0 ^ carry, (a1 & ~a0 & ~carry) | (~a1 & a0 & carry)
            minus_one = a1 & (a0 ^ carry)
            m.d.comb += [d.one.eq(one), d.two.eq(two), d.neg.eq(minus_one ^ (sign & (one | two)))]
            next_carry = Signal(name=f"carry{bw}")
            m.d.comb += next_carry.eq((a1 & a0) | (a1 & carry))
            carry = next_carry
        return m


def digit_encoder(fmt: IntFormat, encoding: str) -> wiring.Component:
    """The encoder of ``encoding`` (``"booth"`` or ``"ent"``) for operands of ``fmt``."""
    return {"booth": BoothEncoder, "ent": ENTEncoder}[encoding](fmt)


class PartialProductGenerator(wiring.Component):
    """One partial product ``d * b`` for a digit ``d`` in {0, +-1, +-2}, in carry-save friendly
    form: ``pp`` is ``|d| * b`` with every bit inverted when ``d`` is negative, and ``neg`` is the
    +1 that completes the two's complement negation (added at ``pp``'s least significant bit by
    whoever reduces it). So ``pp + neg == d * b``. Combinational: a 3:1 select and an XOR row.
    """

    def __init__(self, b_fmt: IntFormat):
        self.b_fmt = b_fmt
        self.width = b_fmt.bits + (1 if b_fmt.signed else 2)
        super().__init__({"digit": In(DIGIT), "b": In(shape_of(b_fmt)),
                          "pp": Out(signed(self.width)), "neg": Out(1)})

    def elaborate(self, platform):
        m = Module()
        b = self.b
        b_ext = Signal(signed(self.width))
        m.d.comb += b_ext.eq(b)
        magnitude = Mux(self.digit.two, b_ext << 1, Mux(self.digit.one, b_ext, 0))[:self.width]
        m.d.comb += [self.pp.eq(magnitude ^ self.digit.neg.replicate(self.width)),
                     self.neg.eq(self.digit.neg)]
        return m


class Term:
    """One row of a carry-save reduction: a ``width``-bit value (``signed`` or not) weighted by
    ``2**shift``."""

    def __init__(self, width: int, signed: bool = False, shift: int = 0):
        self.width, self.signed, self.shift = width, signed, shift

    def shape(self):
        return signed(self.width) if self.signed else unsigned(self.width)

    def __repr__(self):
        return f"Term({self.width}, {self.signed}, {self.shift})"


class CarrySaveTree(wiring.Component):
    """Reduces any number of rows to two: ``sum + carry == sum(rows[i] * 2**shift[i])`` modulo
    ``2**width``.

    Rows are :class:`Term` s (signed rows are handled without sign extension: the sign bit is
    inverted and a constant ``-2**p`` folded into one constant row, the usual trick, so narrow
    rows stay narrow). Bits are reduced column by column with full adders (3:2) and half adders,
    scheduled as ``reduction="dadda"`` (fewest adders) or ``"wallace"`` (greedy), or with 4:2
    compressors (``cell="4:2"``: two full adders whose middle carry goes sideways, so a stage
    halves the height with two XOR delays per 4:2 level). No carry-propagate adder anywhere:
    combinational depth grows with log(rows), not with ``width``.
    """

    def __init__(self, terms: list[Term], width: int, *, reduction: str = "dadda", cell: str = "3:2"):
        if reduction not in ("dadda", "wallace") or cell not in ("3:2", "4:2"):
            raise ValueError(f"unknown reduction {reduction!r} / cell {cell!r}")
        self.terms, self.width = list(terms), width
        self.reduction, self.cell = reduction, cell
        self.adders = 0
        super().__init__({
            "rows": In(data.StructLayout({f"r{i}": t.shape() for i, t in enumerate(self.terms)})),
            "sum": Out(width), "carry": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        W = self.width
        cols: list[list] = [[] for _ in range(W)]
        constant = 0
        for i, t in enumerate(self.terms):
            row = Value.cast(self.rows[f"r{i}"])
            for bit in range(t.width):
                p = t.shift + bit
                if p >= W:
                    break
                if t.signed and bit == t.width - 1:
                    cols[p].append(~row[bit])
                    constant -= 1 << p
                else:
                    cols[p].append(row[bit])
        constant %= 1 << W
        for p in range(W):
            if constant >> p & 1:
                cols[p].append(C(1, 1))
        self._counter = 0
        if self.cell == "4:2":
            while max(map(len, cols), default=0) > 3:
                cols = self._stage_4to2(m, cols)
        if self.reduction == "dadda":
            cols = self._dadda(m, cols)
        else:
            while max(map(len, cols), default=0) > 2:
                cols = self._wallace_stage(m, cols)
        m.d.comb += [self.sum.eq(Cat(*(c[0] if len(c) > 0 else C(0, 1) for c in cols))),
                     self.carry.eq(Cat(*(c[1] if len(c) > 1 else C(0, 1) for c in cols)))]
        return m

    def _full_adder(self, m, x, y, z):
        s, c = Signal(name=f"fa{self._counter}_s"), Signal(name=f"fa{self._counter}_c")
        self._counter += 1
        m.d.comb += [s.eq(x ^ y ^ z), c.eq((x & y) | (x & z) | (y & z))]
        return s, c

    def _half_adder(self, m, x, y):
        s, c = Signal(name=f"ha{self._counter}_s"), Signal(name=f"ha{self._counter}_c")
        self._counter += 1
        m.d.comb += [s.eq(x ^ y), c.eq(x & y)]
        return s, c

    def _wallace_stage(self, m, cols):
        out = [[] for _ in cols]
        for p, col in enumerate(cols):
            i = 0
            while len(col) - i >= 3:
                s, c = self._full_adder(m, *col[i:i + 3])
                out[p].append(s)
                if p + 1 < len(cols):
                    out[p + 1].append(c)
                i += 3
            if len(col) - i == 2 and len(col) > 2:
                s, c = self._half_adder(m, *col[i:i + 2])
                out[p].append(s)
                if p + 1 < len(cols):
                    out[p + 1].append(c)
                i += 2
            out[p].extend(col[i:])
        return out

    def _dadda(self, m, cols):
        heights = [2]
        while heights[-1] < max(map(len, cols), default=0):
            heights.append(heights[-1] * 3 // 2)
        for target in reversed(heights[:-1]):
            out = [[] for _ in cols]
            for p, col in enumerate(cols):
                col = list(col)
                while len(col) + len(out[p]) > target and len(col) >= 2:
                    excess = len(col) + len(out[p]) - target
                    if excess == 1 or len(col) < 3:
                        s, c = self._half_adder(m, col.pop(0), col.pop(0))
                    else:
                        s, c = self._full_adder(m, col.pop(0), col.pop(0), col.pop(0))
                    out[p].append(s)
                    if p + 1 < len(cols):
                        out[p + 1].append(c)
                out[p].extend(col)
            cols = out
        assert max(map(len, cols), default=0) <= 2, "Dadda schedule left a column taller than 2"
        return cols

    def _stage_4to2(self, m, cols):
        out = [[] for _ in cols]
        cin = []
        for p, col in enumerate(cols):
            col = list(col)
            lateral = []
            while len(col) >= 4:
                x1, x2, x3, x4 = (col.pop(0) for _ in range(4))
                s1, cout = self._full_adder(m, x1, x2, x3)       # cout does not depend on cin
                if cin:
                    s, c = self._full_adder(m, s1, x4, cin.pop(0))
                else:
                    s, c = self._half_adder(m, s1, x4)
                out[p].append(s)
                if p + 1 < len(cols):
                    out[p + 1].append(c)
                    lateral.append(cout)
            out[p].extend(col + cin)
            cin = lateral
        return out


class CarryPropagateAdder(wiring.Component):
    """``sum = (a + b) mod 2**width``: the one carry-propagate adder that turns a carry-save pair
    into a binary number. Written as ``+`` so the synthesis tool picks the adder architecture
    (Yosys maps it to its ``$alu`` and the technology's carry logic). Combinational."""

    def __init__(self, width: int):
        self.width = width
        super().__init__({"a": In(width), "b": In(width), "sum": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.sum.eq(self.a + self.b)
        return m
