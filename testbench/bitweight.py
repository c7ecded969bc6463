"""cocotb testbench of the ``bitweight`` family against :mod:`accelsmith.models.bitweight`.

Parameters come from the environment (set by :mod:`accelsmith.flows.sim`):
``ACCELSMITH_MANIFEST`` (the design's manifest), ``ACCELSMITH_VECTORS`` (random tiles, checked
in addition to the corner cases) and
cocotb's random seed. Jobs run back to back: operand beats of later jobs are queued while
earlier ones compute, results are checked row by row by a scoreboard that names lost,
duplicated, reordered and wrong rows, and the CYCLES register is checked against the model's
cycle count (exactly when no stream stalls, as a lower bound otherwise). Every seventh job gets
a second START and a different K_STEPS while it runs, which the engine must ignore.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from accelsmith.models.bitweight import EngineGeometry, gemm
from accelsmith.models.packing import pack, unpack
from accelsmith.sw_driver.registers import RegisterMap

from .streams import CycleLoop, RegisterPort, StreamSink, StreamSource, MismatchError


@dataclass
class Job:
    name: str
    A: np.ndarray
    B: np.ndarray
    expected: np.ndarray = field(init=False)


def corner_jobs(g: EngineGeometry, rng: np.random.Generator) -> list[Job]:
    """Structured cases: extremes, zeros, identity, one non-zero, multi-step and empty K."""
    m, n, ks = g.m_tile, g.n_tile, g.k_per_step
    k_long = 5 * ks + 1 if ks > 1 else 7
    a_full = lambda k, v: np.full((m, k), v, dtype=np.int64)
    b_full = lambda k, v: np.full((k, n), v, dtype=np.int64)
    jobs = [
        Job("all most-negative", a_full(k_long, g.a_fmt.min), b_full(k_long, g.b_fmt.min)),
        Job("all max", a_full(k_long, g.a_fmt.max), b_full(k_long, g.b_fmt.max)),
        Job("min x max", a_full(k_long, g.a_fmt.min), b_full(k_long, g.b_fmt.max)),
        Job("zeros", a_full(ks, 0), b_full(ks, 0)),
        Job("identity", np.eye(m, dtype=np.int64), random_operand(g.b_fmt, (m, n), rng)),
        Job("K = 0", np.zeros((m, 0), dtype=np.int64), np.zeros((0, n), dtype=np.int64)),
    ]
    one_a = np.zeros((m, k_long), dtype=np.int64)
    one_a[rng.integers(m), rng.integers(k_long)] = g.a_fmt.min or g.a_fmt.max
    jobs.append(Job("single non-zero", one_a, random_operand(g.b_fmt, (k_long, n), rng)))
    k_many = 4 * ks + 3
    jobs.append(Job("K larger than the array", random_operand(g.a_fmt, (m, k_many), rng),
                    random_operand(g.b_fmt, (k_many, n), rng)))
    return jobs


def random_operand(fmt, shape, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)


def random_job(g: EngineGeometry, index: int, rng: np.random.Generator) -> Job:
    k = int(rng.integers(1, 3 * g.k_per_step + 3))
    A = random_operand(g.a_fmt, (g.m_tile, k), rng)
    B = random_operand(g.b_fmt, (k, g.n_tile), rng)
    if rng.random() < 0.2:  # sparse operands exercise zero handling
        A *= rng.random(A.shape) < 0.3
    return Job(f"random #{index}", A, B)


class Scoreboard:
    """Compares received result rows, in order, with the expected rows of all queued jobs."""

    def __init__(self, g: EngineGeometry):
        self.g = g
        self.expected: list[tuple[str, int, int]] = []   # (job name, row, packed row)
        self.checked = 0

    def expect(self, job: Job):
        for r in range(self.g.m_tile):
            last = r == self.g.m_tile - 1
            word = pack(job.expected[r], self.g.acc_fmt.bits) | (last << (self.g.n_tile * self.g.acc_fmt.bits))
            self.expected.append((job.name, r, word))

    def check(self, received):
        while received:
            word = received.popleft()
            if self.checked >= len(self.expected):
                raise MismatchError(f"extra result row {self._show(word)} after all expected rows: "
                                  f"duplicated or spurious output")
            name, row, want = self.expected[self.checked]
            if word != want:
                raise MismatchError(self._diagnose(word))
            self.checked += 1

    def _show(self, word):
        data = unpack(word, self.g.acc_fmt, self.g.n_tile)
        last = word >> (self.g.n_tile * self.g.acc_fmt.bits)
        return f"{data} last={last}"

    def _diagnose(self, word) -> str:
        name, row, want = self.expected[self.checked]
        head = f"job '{name}' row {row}: got {self._show(word)}, expected {self._show(want)}"
        if self.checked and word == self.expected[self.checked - 1][2]:
            return head + " -- the previous row was duplicated"
        later = [i for i in range(self.checked + 1, min(len(self.expected), self.checked + 64))
                 if self.expected[i][2] == word]
        if later:
            skipped = later[0] - self.checked
            return head + (f" -- it matches expected row {later[0]} ('{self.expected[later[0]][0]}' "
                           f"row {self.expected[later[0]][1]}): {skipped} row(s) lost or reordered")
        return head + " -- wrong value"

    @property
    def pending(self) -> int:
        return len(self.expected) - self.checked


async def run_jobs(dut, jobs, g, regs, csr, a_src, b_src, sink, board, loop, exact_cycles, log):
    """Queue every job's operands, then start the jobs one after another and check them."""
    plans = []
    for job in jobs:
        job.expected = gemm(job.A, job.B, g.a_fmt, g.b_fmt, g.acc_fmt)
        a_beats, b_beats, steps = g.job_beats(job.A, job.B)
        for beat in a_beats:
            a_src.push(pack(beat, g.a_fmt.bits))
        for beat in b_beats:
            b_src.push(pack(beat, g.b_fmt.bits))
        board.expect(job)
        plans.append(steps)
    for index, (job, steps) in enumerate(zip(jobs, plans)):
        await csr.write(regs.K_STEPS.address, steps)
        await csr.write(regs.CTRL.address, regs.CTRL.START.mask)
        if index % 7 == 3:
            # A running job ignores START and keeps the K_STEPS it latched.
            await csr.write(regs.CTRL.address, regs.CTRL.START.mask)
            await csr.write(regs.K_STEPS.address, steps + 5)
        model = g.job_cycles_for(job.A, job.B)
        budget = 50 * (model + 10) + 2000
        start_cycle = loop.cycle
        while True:
            status = await csr.read(regs.STATUS.address)
            board.check(sink.received)
            if status & regs.STATUS.DONE.mask and not status & regs.STATUS.BUSY.mask:
                break
            if loop.cycle - start_cycle > budget:
                raise MismatchError(f"job '{job.name}' ({steps} steps) did not finish within {budget} "
                                  f"cycles: hang (status {status:#x}, {board.pending} rows pending)")
        cycles = await csr.read(regs.CYCLES.address)
        if exact_cycles and cycles != model:
            raise MismatchError(f"job '{job.name}': CYCLES = {cycles}, model predicts {model} "
                              f"for {steps} steps without stalls")
        if cycles < model:
            raise MismatchError(f"job '{job.name}': CYCLES = {cycles} below the stall-free "
                              f"minimum {model}")
        if (index + 1) % 500 == 0:
            log.info("%d/%d tiles checked", index + 1, len(jobs))
    await ClockCycles(dut.clk, 4)
    board.check(sink.received)
    if board.pending:
        raise MismatchError(f"{board.pending} result rows never arrived (lost)")
    if a_src.queue or b_src.queue:
        raise MismatchError(f"operand beats left unconsumed: a {len(a_src.queue)}, b {len(b_src.queue)}")


@cocotb.test()
async def gemm_tiles(dut):
    """Corner-case and random tiles, first without stalls (exact cycle counts), then with
    random valid/ready stalls on every stream."""
    with open(os.environ["ACCELSMITH_MANIFEST"]) as fh:
        manifest = json.load(fh)
    vectors = int(os.environ.get("ACCELSMITH_VECTORS", "2000"))
    g = EngineGeometry.from_manifest(manifest)
    regs = RegisterMap.from_manifest(manifest)
    seed = int(os.environ.get("ACCELSMITH_SEED", cocotb.RANDOM_SEED))
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    csr = RegisterPort(dut)
    a_src = StreamSource(dut, "a", prng)
    b_src = StreamSource(dut, "b", prng)
    sink = StreamSink(dut, "c", prng)
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    loop = CycleLoop(dut.clk, [a_src, b_src, sink], csr)
    loop.start()
    await RisingEdge(dut.clk)

    board = Scoreboard(g)
    corners = corner_jobs(g, rng)
    n_quiet = min(vectors, max(8, vectors // 4))
    quiet = corners + [random_job(g, i, rng) for i in range(n_quiet)]
    await run_jobs(dut, quiet, g, regs, csr, a_src, b_src, sink, board, loop, True, dut._log)
    dut._log.info("%d tiles without stalls passed with exact cycle counts", len(quiet))

    stalled = 0
    remaining = vectors - n_quiet
    while stalled < remaining:
        batch = min(250, remaining - stalled)
        for endpoint in (a_src, b_src, sink):
            endpoint.stall = prng.choice([0.1, 0.3, 0.6, 0.9])
        jobs = [random_job(g, n_quiet + stalled + i, rng) for i in range(batch)]
        await run_jobs(dut, jobs, g, regs, csr, a_src, b_src, sink, board, loop, False, dut._log)
        stalled += batch
    dut._log.info("PASS: %d random tiles (%d without stalls, %d with random stalls) and %d corner "
                  "cases, %d result rows, seed %d", n_quiet + stalled, n_quiet, stalled, len(corners),
                  board.checked, seed)
