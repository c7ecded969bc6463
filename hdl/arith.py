"""Arithmetic helpers shared by the tensor cores."""

from __future__ import annotations

from amaranth import *

__all__ = ["adder_tree", "carry_chain_sum", "csd_digits", "const_product", "multiples",
           "quadratic_series"]


def adder_tree(terms):
    """Sum of ``terms`` as a balanced binary tree of adders (depth ceil(log2 n)), combinational.

    Each level widens by one bit (Amaranth's ``+`` does), so the sum is exact; callers truncate
    to their accumulator width.
    """
    terms = list(terms)
    if not terms:
        return Const(0)
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def carry_chain_sum(m, terms, name="sum"):
    """The sum of ``terms`` as a balanced tree of two-input adders whose partial sums are kept
    wires of ``m``, exact. Yosys merges a sum of several operands into a carry-save tree of
    LUTs; two-input adders map to the FPGA's carry chains, about a quarter fewer logic cells on
    ECP5 (a 3-operand 60-bit sum: 120 LUT4 + 62 CCU2C against 93 CCU2C)."""
    terms = [Value.cast(t) for t in terms]
    if not terms:
        return Const(0)
    while len(terms) > 1:
        paired = []
        for x, y in zip(terms[0::2], terms[1::2]):
            partial = Signal((x + y).shape(), name=name, attrs={"keep": 1})
            m.d.comb += partial.eq(x + y)
            paired.append(partial)
        terms = paired + terms[len(paired) * 2:]
    return terms[0]


def csd_digits(k: int) -> list[tuple[int, int]]:
    """``k`` (>= 0) in canonical signed digits: (shift, +-1) pairs, no two shifts adjacent, so
    ``k = sum(sign << shift)`` with the fewest non-zero digits."""
    assert k >= 0
    digits, shift = [], 0
    while k:
        if k & 1:
            sign = 2 - (k & 3)          # 01 -> +1, 11 -> -1 (and carry)
            digits.append((shift, sign))
            k -= sign
        k >>= 1
        shift += 1
    return digits


def const_product(x, k: int, m=None, name="product"):
    """``x * k`` for a constant ``k`` >= 0 as shifts and an adder tree of its canonical signed
    digits: exact, combinational, and never a DSP block (FPGA tools map a ``*`` by a constant to
    one, which wide arrays of such products run out of). With a module ``m`` the tree's partial
    sums are kept wires of it (:func:`carry_chain_sum`)."""
    terms = [(x << s) if sign > 0 else -(x << s) for s, sign in csd_digits(k)]
    if m is not None:
        return carry_chain_sum(m, terms, name)
    return adder_tree(terms) if terms else Const(0)


def multiples(m, x, count: int, name="multiple"):
    """``[k * x for k in range(count)]`` as shifts and one adder per odd ``k`` > 1 (2k x is k x
    shifted, (2k + 1) x = 2k x + x): depth log2(count), kept wires of ``m``."""
    out = [Const(0), Value.cast(x)]
    for k in range(2, count):
        out.append(out[k // 2] << 1 if k % 2 == 0 else carry_chain_sum(m, [out[k - 1], x], name))
    return out[:count]


def quadratic_series(m, y, z, count: int = 16, group: int = 4, name="series"):
    """``[k * k * z - k * y for k in range(count)]`` by differences, the products of none: the
    values at multiples b of ``group`` as constant shift-adds, the others along their group as
    P[b + q] = P[b + q - 1] + (z - y + (2 b + 2 q - 2) z). About 1.7 adders per value, depth
    ``group`` + 2 adders; kept wires of ``m``."""
    first = carry_chain_sum(m, [z, -y], name)               # P[1] - P[0]
    out = []
    for b in range(0, count, group):
        value = Const(0) if b == 0 else carry_chain_sum(
            m, [const_product(z, b * b, m, name), -const_product(y, b, m, name)], name)
        step = first if b == 0 else carry_chain_sum(m, [first, const_product(z, 2 * b, m, name)], name)
        out.append(value)
        for q in range(1, min(group, count - b)):
            delta = step if q == 1 else carry_chain_sum(m, [step, const_product(z, 2 * q - 2, m, name)],
                                                         name)
            value = carry_chain_sum(m, [value, delta], name)
            out.append(value)
    return out
