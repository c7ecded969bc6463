"""Multiplier building blocks against the digit models: exhaustive for 4- and 8-bit encoders and
partial products, random for carry-save trees of many shapes."""

import itertools

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from accelsmith.hdl.arith import const_product, csd_digits
from accelsmith.hdl.multiplier import (BoothEncoder, CarryPropagateAdder, CarrySaveTree, ENTEncoder,
                                       PartialProductGenerator, Term)
from accelsmith.models.digits import booth_digits, ent_digits
from accelsmith.models.intformat import IntFormat

FORMATS = [IntFormat(b, s) for b in (4, 8) for s in (True, False)]


def run_comb(dut, cases, probe):
    """Apply each list of (port, value) pairs in ``cases`` to ``dut`` and collect ``probe(ctx)`` for each."""
    out = []

    async def bench(ctx):
        for case in cases:
            for port, value in case:
                ctx.set(port, value)
            out.append(probe(ctx))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def decode_digits(word: int, count: int) -> list[int]:
    digits = []
    for bw in range(count):
        one, two, neg = (word >> (3 * bw)) & 1, (word >> (3 * bw + 1)) & 1, (word >> (3 * bw + 2)) & 1
        assert not (one and two), "digit with both magnitudes set"
        digits.append((one + 2 * two) * (-1 if neg else 1))
        assert not (neg and not (one or two)), "negative zero digit"
    return digits


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("encoder,model", [(BoothEncoder, booth_digits), (ENTEncoder, ent_digits)],
                         ids=["booth", "ent"])
def test_encoder_exhaustive(encoder, model, fmt):
    dut = encoder(fmt)
    values = list(range(fmt.min, fmt.max + 1))
    got = run_comb(dut, [[(dut.a, v)] for v in values],
                   lambda ctx: decode_digits(ctx.get(dut.digits.as_value()), dut.count))
    want = model(np.array(values), fmt).tolist()
    assert got == want


def test_encoder_int16_random():
    fmt = IntFormat(16, True)
    values = np.random.default_rng(3).integers(fmt.min, fmt.max + 1, 3000).tolist() + [fmt.min, fmt.max]
    for encoder, model in ((BoothEncoder, booth_digits), (ENTEncoder, ent_digits)):
        dut = encoder(fmt)
        got = run_comb(dut, [[(dut.a, v)] for v in values],
                       lambda ctx: decode_digits(ctx.get(dut.digits.as_value()), dut.count))
        assert got == model(np.array(values), fmt).tolist()


@pytest.mark.parametrize("b_fmt", FORMATS, ids=str)
def test_partial_product_exhaustive(b_fmt):
    dut = PartialProductGenerator(b_fmt)
    digit_bits = {0: 0, 1: 0b001, 2: 0b010, -1: 0b101, -2: 0b110}
    cases = [(d, b) for d in digit_bits for b in range(b_fmt.min, b_fmt.max + 1)]
    got = run_comb(dut, [[(dut.digit.as_value(), digit_bits[d]), (dut.b, b)] for d, b in cases],
                   lambda ctx: ctx.get(dut.pp) + ctx.get(dut.neg))
    assert got == [d * b for d, b in cases]


TREE_SHAPES = [
    ([Term(10, True, 0), Term(10, True, 2), Term(10, True, 4), Term(10, True, 6),
      Term(1, False, 0), Term(1, False, 2), Term(24), Term(24)], 24),
    ([Term(8, False, 0)] * 3, 10),
    ([Term(5, True, s) for s in range(0, 30, 3)] + [Term(3, False, 7)], 20),
    ([Term(18, True, 0)] * 16 + [Term(16)], 28),
    ([Term(4, True, 0)], 6),
]


@pytest.mark.parametrize("reduction,cell", [("dadda", "3:2"), ("wallace", "3:2"), ("dadda", "4:2")])
@pytest.mark.parametrize("shape", range(len(TREE_SHAPES)))
def test_carry_save_tree_random(shape, reduction, cell):
    terms, width = TREE_SHAPES[shape]
    dut = CarrySaveTree(terms, width, reduction=reduction, cell=cell)
    rng = np.random.default_rng(shape)
    cases, want = [], []
    for _ in range(400 if len(terms) < 10 else 120):
        values = [int(rng.integers(-(1 << (t.width - 1)) if t.signed else 0,
                                   (1 << (t.width - 1)) if t.signed else (1 << t.width)))
                  for t in terms]
        cases.append([(dut.rows[f"r{i}"], v) for i, v in enumerate(values)])
        want.append(sum(v << t.shift for v, t in zip(values, terms)) % (1 << width))
    got = run_comb(dut, cases, lambda ctx: (ctx.get(dut.sum) + ctx.get(dut.carry)) % (1 << width))
    assert got == want


def test_carry_save_tree_extremes():
    """All-ones and most-negative rows: the sign-extension constant must be exact."""
    terms = [Term(6, True, 0), Term(6, True, 1), Term(6, False, 3), Term(12)]
    dut = CarrySaveTree(terms, 12)
    extremes = [(-32, 31), (-32, 31), (0, 63), (0, 4095)]
    cases, want = [], []
    for values in itertools.product(*extremes):
        cases.append([(dut.rows[f"r{i}"], v) for i, v in enumerate(values)])
        want.append(sum(v << t.shift for v, t in zip(values, terms)) % 4096)
    got = run_comb(dut, cases, lambda ctx: (ctx.get(dut.sum) + ctx.get(dut.carry)) % 4096)
    assert got == want


def test_carry_propagate_adder():
    dut = CarryPropagateAdder(9)
    cases = [(a, b) for a in range(0, 512, 37) for b in range(0, 512, 41)] + [(511, 511)]
    got = run_comb(dut, [[(dut.a, a), (dut.b, b)] for a, b in cases], lambda ctx: ctx.get(dut.sum))
    assert got == [(a + b) % 512 for a, b in cases]


@pytest.mark.parametrize("k", [0, 1, 3, 255, 47274, 0b101101110111, (1 << 20) - 1])
def test_const_product_is_exact_and_uses_canonical_digits(k):
    digits = csd_digits(k)
    assert sum(sign << shift for shift, sign in digits) == k
    shifts = [shift for shift, _ in digits]
    assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))       # no two digits adjacent
    assert len(digits) <= bin(k).count("1")

    class Product(Elaboratable):
        def __init__(self):
            self.x, self.y = Signal(signed(18)), Signal(signed(40))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.y.eq(const_product(self.x, k))
            return m

    dut = Product()
    xs = [-(1 << 17), -1, 0, 1, (1 << 17) - 1, *np.random.default_rng(k).integers(-(1 << 17), 1 << 17, 200)]
    got = run_comb(dut, [[(dut.x, int(x))] for x in xs], lambda ctx: ctx.get(dut.y))
    assert got == [int(x) * k for x in xs]


def test_multiples_and_quadratic_series_are_exact():
    """The set-up's product-free series: k x and k^2 z - k y for k = 0..15, at the operands'
    extremes and at random."""
    from accelsmith.hdl.arith import multiples, quadratic_series

    class Series(Elaboratable):
        def __init__(self):
            self.x, self.y, self.z = Signal(signed(30)), Signal(signed(49)), Signal(signed(35))
            self.kx = [Signal(signed(34), name=f"kx{k}") for k in range(16)]
            self.p = [Signal(signed(58), name=f"p{k}") for k in range(16)]

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [s.eq(v) for s, v in zip(self.kx, multiples(m, self.x, 16))]
            m.d.comb += [s.eq(v) for s, v in zip(self.p, quadratic_series(m, self.y, self.z))]
            return m

    dut = Series()
    rng = np.random.default_rng(3)
    ends = lambda bits: [-(1 << (bits - 1)), -1, 0, 1, (1 << (bits - 1)) - 1]      # noqa: E731
    cases = [(x, y, z) for x, y, z in zip(ends(30), ends(49), ends(35)[::-1])]
    cases += [(int(rng.integers(-(1 << 29), 1 << 29)), int(rng.integers(-(1 << 48), 1 << 48)),
               int(rng.integers(-(1 << 34), 1 << 34))) for _ in range(100)]
    got = run_comb(dut, [[(dut.x, x), (dut.y, y), (dut.z, z)] for x, y, z in cases],
                   lambda ctx: ([ctx.get(s) for s in dut.kx], [ctx.get(s) for s in dut.p]))
    for (x, y, z), (kx, p) in zip(cases, got):
        assert kx == [k * x for k in range(16)]
        assert p == [k * k * z - k * y for k in range(16)]
