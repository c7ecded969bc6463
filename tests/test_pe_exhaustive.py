"""Single-PE exhaustive tests (Amaranth simulator): every INT8 operand pair through one opt1 PE
and one opt3 PE, accumulating, with the accumulator checked after every step."""

import numpy as np
from amaranth import signed
from amaranth.sim import Simulator

from accelsmith.hdl.digit_serial import DigitSerialMatrix
from accelsmith.hdl.tensor_cores import BroadcastMatrix
from accelsmith.models.bitweight import step_cycles
from accelsmith.models.intformat import IntFormat

S8 = IntFormat(8, True)
ACC = IntFormat(24, True)


def all_pairs():
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    return a.reshape(-1), b.reshape(-1)


def accumulator(ctx, core):
    raw = (ctx.get(core.acc_sum[0][0]) + ctx.get(core.acc_carry[0][0])) % (1 << ACC.bits)
    return int(ACC.wrap(raw))


def test_opt1_pe_all_int8_pairs():
    core = BroadcastMatrix(1, 1, signed(8), signed(8), signed(24), mac="opt1")
    a, b = all_pairs()
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


def test_opt3_pe_all_int8_pairs():
    """16,384 steps of 4 pairs each; the PE's busy time per step must match the cycle model."""
    core = DigitSerialMatrix(1, 1, signed(8), signed(8), signed(24), mac="opt3")
    a, b = all_pairs()
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
