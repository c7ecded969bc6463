"""The 8N1 UART PHY, bit by bit in Amaranth's simulator against a line model: several baud
divisors, the far end's clock off by +-2 %, glitches, framing errors, a line held low."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from accelsmith.hdl.uart import UARTReceiver, UARTTransmitter, uart_divisor


def frame_bits(byte: int, stop: int = 1) -> list[int]:
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def line(frames: list[list[int]], period: float, rng: random.Random, gap_bits: float = 1.5):
    """Per-cycle levels of a line carrying ``frames`` with a bit time of ``period`` cycles
    (fractional: the sender's clock differs), idle gaps of up to ``gap_bits`` bits between."""
    levels = [1] * 8
    t = float(len(levels))
    for bits in frames:
        for bit in bits:
            end = t + period
            levels += [bit] * (round(end) - round(t))
            t = end
        gap = rng.uniform(0, gap_bits) * period
        levels += [1] * (round(t + gap) - round(t))
        t += gap
    return levels + [1] * int(3 * period + 8)


def receive(divisor: int, levels: list[int], ready_every: int = 1):
    dut = UARTReceiver(divisor)
    got = []

    async def bench(ctx):
        for i, level in enumerate(levels):
            ctx.set(dut.rx, level)
            ready = i % ready_every == 0
            ctx.set(dut.data.ready, ready)
            if ready and ctx.get(dut.data.valid):
                got.append(ctx.get(dut.data.payload))
            await ctx.tick()
        if ctx.get(dut.data.valid):                     # the byte still on offer
            got.append(ctx.get(dut.data.payload))
        got.append(("framing", ctx.get(dut.framing_errors), "overruns", ctx.get(dut.overruns)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got[:-1], got[-1][1], got[-1][3]


@pytest.mark.parametrize("divisor", [4, 5, 16, 87])
@pytest.mark.parametrize("skew", [-0.02, 0.0, 0.02])
def test_receiver_at_several_bauds_and_clock_skew(divisor, skew):
    rng = random.Random(divisor * 100 + int(skew * 1000))
    data = [rng.randrange(256) for _ in range(48)] + [0x00, 0xFF, 0x55, 0xAA]
    levels = line([frame_bits(b) for b in data], divisor * (1 + skew), rng)
    got, framing, overruns = receive(divisor, levels)
    assert got == data and framing == 0 and overruns == 0


@pytest.mark.parametrize("divisor", [8, 16])
def test_receiver_ignores_one_cycle_glitches(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(40)]
    levels = line([frame_bits(b) for b in data], divisor, rng, gap_bits=3)
    # Flip single cycles anywhere (idle line and inside bits), at least 3 cycles apart.
    flipped = 0
    i = 10
    while i < len(levels) - 1:
        if rng.random() < 0.08 and levels[i - 1] == levels[i] == levels[i + 1]:
            levels[i] ^= 1
            flipped += 1
            i += 3 * divisor
        i += 1
    assert flipped > 20
    got, framing, _ = receive(divisor, levels)
    assert got == data and framing == 0


def test_framing_errors_are_dropped_counted_and_recovered_from():
    divisor = 8
    rng = random.Random(1)
    frames = [frame_bits(0x12), frame_bits(0x34, stop=0), frame_bits(0x56),
              [0] * 30,                                 # a break: the line held low
              frame_bits(0x78), frame_bits(0x9A, stop=0), frame_bits(0xBC)]
    levels = line(frames, divisor, rng)
    got, framing, _ = receive(divisor, levels)
    assert got == [0x12, 0x56, 0x78, 0xBC]
    assert framing == 3                               # two bad stop bits and the break


def test_overruns_drop_bytes_but_never_corrupt_the_one_on_offer():
    divisor = 4
    rng = random.Random(2)
    data = [rng.randrange(256) for _ in range(30)]
    levels = line([frame_bits(b) for b in data], divisor, rng, gap_bits=0)
    got, _, overruns = receive(divisor, levels, ready_every=90)   # a slow reader
    assert overruns > 0 and len(got) + overruns == len(data)
    it = iter(data)
    assert all(b in it for b in got)                    # an ordered subsequence of what was sent


@pytest.mark.parametrize("divisor", [4, 9])
def test_transmitter_frames_round_trip_through_the_receiver(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(24)]
    tx = UARTTransmitter(divisor)
    levels = []

    async def bench(ctx):
        queue = list(data)
        for _ in range(len(data) * 10 * divisor + 200):
            ctx.set(tx.data.valid, bool(queue))
            ctx.set(tx.data.payload, queue[0] if queue else 0)
            levels.append(ctx.get(tx.tx))
            if queue and ctx.get(tx.data.ready):
                queue.pop(0)
            await ctx.tick()

    sim = Simulator(tx)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Exactly 8N1 at the bit time: decode the line with the model and with the receiver.
    start = levels.index(0)
    bits = [levels[start + divisor // 2 + k * divisor] for k in range(10)]
    assert bits == frame_bits(data[0])
    got, framing, _ = receive(divisor, levels)
    assert got == data and framing == 0


def test_divisor_choice():
    assert uart_divisor(100_000_000, 115_200) == 868
    assert uart_divisor(12_000_000, 3_000_000) == 4
    with pytest.raises(ValueError, match="at least 4"):
        uart_divisor(10_000_000, 3_000_000)
    with pytest.raises(ValueError, match="off"):
        uart_divisor(25_000_000, 4_000_000)           # divisor 6: 4.17 Mbaud, 4 % off
