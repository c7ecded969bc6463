"""The tile-job runner shared by every family's cocotb testbench.

A family testbench turns its operands into :class:`Job` objects (payload words, expected tile,
model cycle count, whether STATUS.ERROR must be set) and calls :func:`run_tile_test`. Jobs run
back to back: operand beats of later jobs are queued while earlier ones compute, results are
checked row by row by a scoreboard that names lost, duplicated, reordered and wrong rows, and the
CYCLES register is checked against the model (exactly when no stream stalls, as a lower bound
otherwise). Every seventh job gets a second START and a different K_STEPS while it runs, which
the engine must ignore. Parameters come from the environment (set by :mod:`accelsmith.flows.sim`):
``ACCELSMITH_MANIFEST``, ``ACCELSMITH_VECTORS`` (random tiles besides the corner cases), the
seed, and ``ACCELSMITH_PROGRESS``: a file the runner rewrites with the tiles checked and the
cycles simulated so far, which the flow prints while the simulation runs.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from accelsmith.models.bitweight import EngineGeometry
from accelsmith.models.packing import pack, unpack
from accelsmith.sw_driver.registers import RegisterMap

from .streams import CycleLoop, MismatchError, RegisterPort, StreamSink, StreamSource


@dataclass
class Job:
    """One tile job as the hardware sees it."""

    name: str
    a_words: list[int]
    b_words: list[int]
    steps: int
    expected: np.ndarray
    cycles: int                 # stall-free cycles from START to the last row accepted
    error: bool = False         # STATUS.ERROR expected after the job
    tiles: int = 1              # the TILES register (engines with a result buffer)


def make_job(g, name: str, *operands, error: bool = False) -> Job:
    """One tile job of any engine: ``operands`` are what its geometry's ``job_words``,
    ``expected`` and ``job_cycles_for`` take (dense A and B, an N:M A and B, an outer-product job)."""
    a_words, b_words, steps = g.job_words(*operands)
    return Job(name, a_words, b_words, steps, g.expected(*operands), g.job_cycles_for(*operands), error)


def batch(g, jobs: list[Job]) -> Job:
    """Jobs of the same K as one job of several tiles (engines with a TILES register)."""
    steps = {job.steps for job in jobs}
    if len(steps) != 1:
        raise ValueError("a batch needs tiles of the same K_STEPS")
    return Job(" + ".join(job.name for job in jobs), [w for j in jobs for w in j.a_words],
               [w for j in jobs for w in j.b_words], jobs[0].steps,
               np.vstack([job.expected for job in jobs]), g.job_cycles(jobs[0].steps, len(jobs)),
               any(job.error for job in jobs), len(jobs))


class Progress:
    """Tile jobs checked and cycles simulated, written to ``path`` (if any) at most every
    ``every`` seconds, atomically, as one JSON object."""

    def __init__(self, path: str | None, total: int, every: float = 1.0):
        self.path, self.total, self.every = path, total, every
        self.jobs = 0
        self._last = 0.0

    def job_done(self, cycle: int):
        self.jobs += 1
        now = time.monotonic()
        if self.path and (now - self._last >= self.every or self.jobs >= self.total):
            self._last = now
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as fh:
                json.dump({"jobs": self.jobs, "total": self.total, "cycles": cycle}, fh)
            os.replace(tmp, self.path)


class Scoreboard:
    """Compares received result rows, in order, with the expected rows of all queued jobs."""

    def __init__(self, g: EngineGeometry):
        self.g = g
        self.expected: list[tuple[str, int, int]] = []   # (job name, row, packed row)
        self.checked = 0

    def expect(self, job: Job):
        for r in range(len(job.expected)):
            last = r % self.g.m_tile == self.g.m_tile - 1
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
        if word ^ want == 1 << (self.g.n_tile * self.g.acc_fmt.bits):
            return head + " -- the data is right, the last flag is wrong"
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


async def run_jobs(dut, jobs, g, regs, csr, a_src, b_src, sink, board, loop, exact_cycles, log,
                   progress: Progress | None = None):
    """Queue every job's operands, then start the jobs one after another and check them."""
    has_error_flag = hasattr(regs.STATUS, "ERROR")
    has_tiles = hasattr(regs, "TILES")
    for job in jobs:
        for word in job.a_words:
            a_src.push(word)
        for word in job.b_words:
            b_src.push(word)
        board.expect(job)
    for index, job in enumerate(jobs):
        if has_tiles:
            await csr.write(regs.TILES.address, job.tiles)
        elif job.tiles != 1:
            raise MismatchError(f"job '{job.name}' has {job.tiles} tiles but no TILES register")
        await csr.write(regs.K_STEPS.address, job.steps)
        await csr.write(regs.CTRL.address, regs.CTRL.START.mask)
        if index % 7 == 3:
            # A running job ignores START and keeps the K_STEPS it latched.
            await csr.write(regs.CTRL.address, regs.CTRL.START.mask)
            await csr.write(regs.K_STEPS.address, job.steps + 5)
        budget = 50 * (job.cycles + 10) + 2000
        start_cycle = loop.cycle
        while True:
            status = await csr.read(regs.STATUS.address)
            board.check(sink.received)
            if status & regs.STATUS.DONE.mask and not status & regs.STATUS.BUSY.mask:
                break
            if loop.cycle - start_cycle > budget:
                raise MismatchError(f"job '{job.name}' ({job.steps} steps) did not finish within "
                                    f"{budget} cycles: hang (status {status:#x}, {board.pending} rows pending)")
        if has_error_flag and bool(status & regs.STATUS.ERROR.mask) != job.error:
            raise MismatchError(f"job '{job.name}': STATUS.ERROR = {int(not job.error)}, expected "
                                f"{int(job.error)}")
        if job.error and not has_error_flag:
            raise MismatchError(f"job '{job.name}' expects an error but the engine has no ERROR flag")
        cycles = await csr.read(regs.CYCLES.address)
        if exact_cycles and cycles != job.cycles:
            raise MismatchError(f"job '{job.name}': CYCLES = {cycles}, model predicts {job.cycles} "
                                f"for {job.steps} steps without stalls")
        if cycles < job.cycles:
            raise MismatchError(f"job '{job.name}': CYCLES = {cycles} below the stall-free "
                                f"minimum {job.cycles}")
        if progress is not None:
            progress.job_done(loop.cycle)
        if (index + 1) % 500 == 0:
            log.info("%d/%d tiles checked", index + 1, len(jobs))
    await ClockCycles(dut.clk, 4)
    board.check(sink.received)
    if board.pending:
        raise MismatchError(f"{board.pending} result rows never arrived (lost)")
    if a_src.queue or b_src.queue:
        raise MismatchError(f"operand beats left unconsumed: a {len(a_src.queue)}, b {len(b_src.queue)}")


async def run_tile_test(dut, geometry: Callable[[dict], object],
                        corner_jobs: Callable[[object, np.random.Generator], list[Job]],
                        random_job: Callable[[object, int, np.random.Generator], Job]):
    """Corner-case and random tiles, first without stalls (exact cycle counts), then with
    random valid/ready stalls on every stream."""
    import cocotb

    with open(os.environ["ACCELSMITH_MANIFEST"]) as fh:
        manifest = json.load(fh)
    vectors = int(os.environ.get("ACCELSMITH_VECTORS", "2000"))
    g = geometry(manifest)
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
    progress = Progress(os.environ.get("ACCELSMITH_PROGRESS"), len(corners) + vectors)
    await run_jobs(dut, quiet, g, regs, csr, a_src, b_src, sink, board, loop, True, dut._log,
                   progress)
    dut._log.info("%d tiles without stalls passed with exact cycle counts", len(quiet))

    stalled = 0
    remaining = vectors - n_quiet
    while stalled < remaining:
        batch = min(250, remaining - stalled)
        for endpoint in (a_src, b_src, sink):
            endpoint.stall = prng.choice([0.1, 0.3, 0.6, 0.9])
        jobs = [random_job(g, n_quiet + stalled + i, rng) for i in range(batch)]
        await run_jobs(dut, jobs, g, regs, csr, a_src, b_src, sink, board, loop, False, dut._log,
                       progress)
        stalled += batch
    dut._log.info("PASS: %d random tiles (%d without stalls, %d with random stalls) and %d corner "
                  "cases, %d result rows, seed %d", n_quiet + stalled, n_quiet, stalled, len(corners),
                  board.checked, seed)
