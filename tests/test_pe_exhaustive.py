"""Single-PE exhaustive tests (Amaranth simulator): INT8 operand pairs through one opt1 PE and
one opt3 PE, accumulating, with the accumulator checked after every step. The default suite
takes every value of each operand against the other's edge values (8,192 pairs); the slow tier
takes all 65,536 pairs."""

import numpy as np
import pytest
from amaranth import signed
from amaranth.sim import Simulator

from accelsmith.hdl.digit_serial import DigitSerialMatrix
from accelsmith.hdl.tensor_cores import BroadcastMatrix
from accelsmith.models.bitweight import step_cycles
from accelsmith.models.intformat import IntFormat

S8 = IntFormat(8, True)
ACC = IntFormat(24, True)


# Each operand's edge values (range ends, sign, 0, +-1, powers of two) and three others.
EDGES = np.array([-128, -127, -65, -64, -2, -1, 0, 1, 2, 3, 63, 64, 126, 127, -91, 45])
PAIRS = ["edges", pytest.param("all", marks=pytest.mark.slow)]


def operand_pairs(which):
    """``all``: every pair; ``edges``: every value of one operand against EDGES of the other."""
    if which == "all":
        a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
        return a.reshape(-1), b.reshape(-1)
    a, b = np.meshgrid(np.arange(-128, 128), EDGES, indexing="ij")
    return np.concatenate([a.reshape(-1), b.reshape(-1)]), np.concatenate([b.reshape(-1), a.reshape(-1)])


def accumulator(ctx, core):
    raw = (ctx.get(core.acc_sum[0][0]) + ctx.get(core.acc_carry[0][0])) % (1 << ACC.bits)
    return int(ACC.wrap(raw))


@pytest.mark.parametrize("which", PAIRS)
def test_opt1_pe_int8_pairs(which):
    core = BroadcastMatrix(1, 1, signed(8), signed(8), signed(24), mac="opt1")
    a, b = operand_pairs(which)
    want = ACC.wrap(np.cumsum(a * b))
    got = []

    async def bench(ctx):
        ctx.set(core.en, 1)
        for x, y in zip(a.tolist(), b.tolist()):
            ctx.set(core.a[0], x)
            ctx.set(core.b[0], y)
            await ctx.tick()
            got.append(accumulator(ctx, core))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # The operand register delays each product by one tick.
    assert got[1:] == want[:-1].tolist()


@pytest.mark.parametrize("which", PAIRS)
def test_opt3_pe_int8_pairs(which):
    """Steps of 4 pairs each (all: 16,384); the PE's busy time per step must match the cycle model."""
    core = DigitSerialMatrix(1, 1, signed(8), signed(8), signed(24), mac="opt3")
    a, b = operand_pairs(which)
    a, b = a.reshape(-1, 4), b.reshape(-1, 4)
    want = ACC.wrap(np.cumsum((a * b).sum(axis=1)))
    model = [step_cycles(x[None, :], y[:, None], "opt3", S8, S8, "ent") for x, y in zip(a, b)]
    got, cycles = [], []

    async def bench(ctx):
        for x, y in zip(a.tolist(), b.tolist()):
            for k in range(4):
                ctx.set(core.a[k], x[k])
                ctx.set(core.b[k], y[k])
            ctx.set(core.step_valid, 1)
            await ctx.tick()
            ctx.set(core.step_valid, 0)
            n = 0
            while ctx.get(core.busy):
                await ctx.tick()
                n += 1
            cycles.append(n)
            got.append(accumulator(ctx, core))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == want.tolist()
    assert cycles == model
