"""Golden model of the ``bitweight`` family: integer GEMM with the configured semantics, and the
job layout (how a GEMM tile becomes stream beats) shared by the testbench and the host driver.

A *job* computes one output tile ``C = A @ B`` with ``A`` of shape (m_tile, K) and ``B`` of shape
(K, n_tile). K is cut into *steps* of ``k_per_step`` values (zero-padded at the end); the engine
accumulates over ``K_STEPS`` steps and then streams the tile out, one row of ``n_tile``
accumulators per beat, the last row flagged ``last``.

Two dataflows cover the five architectures:

* ``output_stationary`` (systolic OS, 2D-Matrix, 3D-Cube): per step one ``a`` beat holding the
  A block (m_tile x k_per_step, row-major) and one ``b`` beat holding the B block
  (k_per_step x n_tile, row-major).
* ``weight_stationary`` (systolic WS, multiplier-adder tree): per step ``k_per_step`` ``b`` beats
  (the rows of the B block, loaded into the array), then ``m_tile`` ``a`` beats (the rows of the A
  block, streamed through it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .digits import digit_count
from .digits import digits as encode_digits
from .intformat import IntFormat
from .packing import pack

DIGIT_SERIAL = ("opt3", "opt4c", "opt4e", "bitslice")

def gemm(A, B, a_fmt: IntFormat, b_fmt: IntFormat, acc_fmt: IntFormat) -> np.ndarray:
    """``A @ B`` computed exactly, then wrapped to the accumulator format (two's complement wrap
    when the accumulator is narrower than the exact result; the hardware wraps identically)."""
    A = np.asarray(A, dtype=np.int64)
    B = np.asarray(B, dtype=np.int64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"gemm: shapes {A.shape} and {B.shape} do not chain")
    if not a_fmt.contains(A):
        raise ValueError(f"gemm: A has values outside {a_fmt} [{a_fmt.min}, {a_fmt.max}]")
    if not b_fmt.contains(B):
        raise ValueError(f"gemm: B has values outside {b_fmt} [{b_fmt.min}, {b_fmt.max}]")
    # Python integers cannot overflow; the int64 path is exact while |sum| < 2**62.
    bound = max(abs(a_fmt.min), a_fmt.max) * max(abs(b_fmt.min), b_fmt.max) * max(1, A.shape[1])
    exact = A @ B if bound < (1 << 62) else A.astype(object) @ B.astype(object)
    return acc_fmt.wrap(exact)


@dataclass(frozen=True)
class EngineGeometry:
    """Shape and number formats of one generated engine, as recorded in its manifest."""

    dataflow: str
    m_tile: int
    n_tile: int
    k_per_step: int
    pipeline_latency: int
    a_fmt: IntFormat
    b_fmt: IntFormat
    acc_fmt: IntFormat
    schedule: str = "fixed"     # "fixed", or the digit-serial mode whose step cycles depend on data
    encoding: str = "booth"
    buffered: bool = False      # result buffer: TILES tiles per job, readout overlapping compute
    readout_latency: int = 0    # cycles a result row spends in the shell's output buffer (0 or 1)

    @classmethod
    def from_manifest(cls, manifest: dict) -> "EngineGeometry":
        """Read back :meth:`to_manifest`; subclasses' extra fields are read by name."""
        g = manifest["geometry"]
        fmt = lambda d: IntFormat(d["bits"], d["signed"])
        extra = {f.name: g[f.name] for f in fields(cls)[len(fields(EngineGeometry)):]}
        return cls(g["dataflow"], g["m_tile"], g["n_tile"], g["k_per_step"], g["pipeline_latency"],
                   fmt(g["a"]), fmt(g["b"]), fmt(g["acc"]), g.get("schedule", "fixed"),
                   g.get("encoding", "booth"), g.get("buffered", False),
                   g.get("readout_latency", 0), **extra)

    def to_manifest(self) -> dict:
        fmt = lambda f: {"bits": f.bits, "signed": f.signed}
        extra = {f.name: getattr(self, f.name) for f in fields(self)[len(fields(EngineGeometry)):]}
        return {"dataflow": self.dataflow, "m_tile": self.m_tile, "n_tile": self.n_tile,
                "k_per_step": self.k_per_step, "pipeline_latency": self.pipeline_latency,
                "a": fmt(self.a_fmt), "b": fmt(self.b_fmt), "acc": fmt(self.acc_fmt),
                "a_beat_len": self.a_beat_len, "b_beat_len": self.b_beat_len,
                "schedule": self.schedule, "encoding": self.encoding, "buffered": self.buffered,
                "readout_latency": self.readout_latency,
                **extra}

    def stream_layouts(self) -> dict:
        """The exact bit layout of each stream's payload and the order of beats in a job, for
        the manifest (``streams``) and docs/integration.md. Step ``s`` covers K indices
        ``s*k_per_step ... (s+1)*k_per_step - 1``; K is zero-padded to whole steps."""
        a, b, ks, n = self.a_fmt.bits, self.b_fmt.bits, self.k_per_step, self.n_tile
        if self.output_stationary:
            a_text = (f"one beat per step: element i = r*{ks} + k holds A[r][s*{ks} + k] "
                      f"(r < {self.m_tile}, k < {ks}) in bits [i*{a}, (i+1)*{a})")
            b_text = (f"one beat per step: element i = k*{n} + c holds B[s*{ks} + k][c] "
                      f"(k < {ks}, c < {n}) in bits [i*{b}, (i+1)*{b})")
        else:
            a_text = (f"{self.m_tile} beats per step, one per output row r: element k holds "
                      f"A[r][s*{ks} + k] (k < {ks}) in bits [k*{a}, (k+1)*{a})")
            b_text = (f"{ks} beats per step (the weights of the step, loaded before its A rows "
                      f"stream): beat j, element c holds B[s*{ks} + j][c] (c < {n}) in bits "
                      f"[c*{b}, (c+1)*{b})")
        return {"a": {"payload_bits": self.a_beat_len * a, "layout": a_text},
                "b": {"payload_bits": self.b_beat_len * b, "layout": b_text},
                "c": self.result_layout()}

    def result_layout(self) -> dict:
        acc, n = self.acc_fmt.bits, self.n_tile
        return {"payload_bits": n * acc + 1, "last_bit": n * acc,
                "layout": (f"{self.m_tile} beats per tile, rows r = 0 .. {self.m_tile - 1} in "
                           f"order: element c holds C[r][c] (c < {n}) in bits [c*{acc}, "
                           f"(c+1)*{acc}), {self.acc_fmt}; bit {n * acc} ('last') is 1 on row "
                           f"{self.m_tile - 1} only; with TILES > 1 the tiles follow in order")}

    @property
    def output_stationary(self) -> bool:
        return self.dataflow == "output_stationary"

    @property
    def a_beat_len(self) -> int:
        return self.m_tile * self.k_per_step if self.output_stationary else self.k_per_step

    @property
    def b_beat_len(self) -> int:
        return self.k_per_step * self.n_tile if self.output_stationary else self.n_tile

    def steps(self, k: int) -> int:
        """Number of steps (the K_STEPS register) for a reduction of length ``k``."""
        return -(-k // self.k_per_step)

    def job_beats(self, A, B) -> tuple[list[list[int]], list[list[int]], int]:
        """Cut one tile job into the ``a`` and ``b`` beats the engine consumes, in order.

        Returns ``(a_beats, b_beats, steps)``; each beat is a list of element values.
        """
        A = np.asarray(A, dtype=np.int64)
        B = np.asarray(B, dtype=np.int64)
        if A.shape[0] != self.m_tile or B.shape[1] != self.n_tile or A.shape[1] != B.shape[0]:
            raise ValueError(f"job: A {A.shape} and B {B.shape} do not fit a "
                             f"{self.m_tile}x{self.n_tile} output tile")
        steps = self.steps(A.shape[1])
        pad = steps * self.k_per_step - A.shape[1]
        A = np.pad(A, ((0, 0), (0, pad)))
        B = np.pad(B, ((0, pad), (0, 0)))
        a_beats, b_beats = [], []
        ks = self.k_per_step
        for s in range(steps):
            a_blk = A[:, s * ks:(s + 1) * ks]
            b_blk = B[s * ks:(s + 1) * ks, :]
            if self.output_stationary:
                a_beats.append(a_blk.reshape(-1).tolist())
                b_beats.append(b_blk.reshape(-1).tolist())
            else:
                b_beats.extend(row.tolist() for row in b_blk)
                a_beats.extend(row.tolist() for row in a_blk)
        return a_beats, b_beats, steps

    def job_words(self, A, B) -> tuple[list[int], list[int], int]:
        """:meth:`job_beats` packed into stream payload words."""
        a_beats, b_beats, steps = self.job_beats(A, B)
        return ([pack(beat, self.a_fmt.bits) for beat in a_beats],
                [pack(beat, self.b_fmt.bits) for beat in b_beats], steps)

    def expected(self, A, B) -> np.ndarray:
        """The tile the engine produces for this job (:func:`gemm` in its formats)."""
        return gemm(A, B, self.a_fmt, self.b_fmt, self.acc_fmt)

    def job_cycles_for(self, A, B) -> int:
        """Cycles from START to the last result accepted for this job, with no stalls (exact,
        also for the data-dependent digit-serial engines)."""
        if self.schedule == "fixed":
            return self.job_cycles(self.steps(np.shape(A)[1]))
        a_beats, b_beats, steps = self.job_beats(A, B)
        ks = self.k_per_step
        a_blocks = np.array(a_beats).reshape(steps, self.m_tile, ks)
        b_blocks = np.array(b_beats).reshape(steps, ks, self.n_tile)
        return variable_step_job_cycles(
            [step_cycles(a, b, self.schedule, self.a_fmt, self.b_fmt, self.encoding)
             for a, b in zip(a_blocks, b_blocks)], self.m_tile)

    def job_cycles(self, steps: int, tiles: int = 1) -> int:
        """Cycles from START to the last result accepted, with no stalls on any stream (for
        digit-serial engines: the fastest case, one cycle per step). ``tiles`` > 1 only for
        ``buffered`` engines (the TILES register)."""
        if self.buffered:
            return buffered_job_cycles(steps, tiles, self.pipeline_latency, self.m_tile) + self.readout_latency
        if tiles != 1:
            raise ValueError("only engines with a result buffer take several tiles per job")
        if self.schedule != "fixed":
            return self.m_tile + 1 + (steps + 1 if steps else 0)
        if self.output_stationary:
            return steps + self.pipeline_latency + self.m_tile + self.readout_latency
        return steps * (self.k_per_step + self.m_tile + self.pipeline_latency) + self.m_tile

    def worst_step_cycles(self) -> int:
        """The most cycles one step can take, over all operand data (1 for fixed schedules)."""
        if self.schedule == "fixed":
            return 1
        digits = digit_count(self.a_fmt, self.encoding)
        if self.schedule == "bitslice":
            return digits * digit_count(self.b_fmt, self.encoding)
        # opt3/opt4c: every bit weight of the step's k values; opt4e: all weights at once
        return digits * self.k_per_step if self.schedule in ("opt3", "opt4c") else self.k_per_step

    def job_cycle_bound(self, steps: int, tiles: int = 1) -> int:
        """The most cycles from START to the last result accepted, over all operand data, with
        no stalls on any stream (what ``accelsmith prove`` proves a job finishes within)."""
        if self.schedule == "fixed":
            return self.job_cycles(steps, tiles)
        return variable_step_job_cycles([self.worst_step_cycles()] * steps, self.m_tile)

    def macs_per_cycle(self) -> float:
        """Peak multiply-accumulates per cycle while operands stream (digit-serial engines: at
        their fastest step, every bit weight at its minimum of one cycle for opt3/opt4c)."""
        if self.schedule in ("opt3", "opt4c"):
            return self.m_tile * self.n_tile * self.k_per_step / digit_count(self.a_fmt, self.encoding)
        if self.output_stationary:
            return self.m_tile * self.n_tile * self.k_per_step
        return self.k_per_step * self.n_tile


def buffered_job_cycles(steps: int, tiles: int, latency: int, m_tile: int) -> int:
    """Stall-free BUSY cycles of one job of :class:`~accelsmith.hdl.tensor_engine.
    BufferedOutputStationaryEngine`: a cycle-by-cycle model of its sequencer (the simulations
    check it against the CYCLES register). Tiles follow each other without a gap while
    ``steps >= latency + m_tile + 1``; one job of one tile takes ``steps + 1 + latency + m_tile``.

    Raises :class:`ValueError` for impossible arguments, or if the model runs past twice the
    longest job its geometry allows (a sequencer change that never reaches IDLE)."""
    if steps < 0 or tiles < 0 or latency < 1 or m_tile < 1:
        raise ValueError(f"buffered_job_cycles: steps {steps}, tiles {tiles}, latency {latency}, "
                         f"m_tile {m_tile}: need steps, tiles >= 0 and latency, m_tile >= 1")
    bound = 2 * (max(tiles, 1) * (steps + latency + m_tile + 2) + latency + m_tile) + 16
    state = "TOKEN" if steps == 0 else "FEED"
    first_step = opening = True
    steps_left, tiles_left = steps, max(tiles, 1)
    full = capturing = False
    ticks = row = cycles = 0
    while state != "IDLE":
        cycles += 1
        if cycles > bound:
            raise ValueError(f"buffered_job_cycles: no IDLE after {bound} cycles (steps {steps}, "
                             f"tiles {tiles}, latency {latency}, m_tile {m_tile}): the model "
                             f"never finishes")
        free = not full and not capturing
        read_last = full and row == m_tile - 1
        token = en = False
        if state == "FEED":
            if not first_step or opening or free:
                en, token = True, first_step and not opening
                first_step = opening = False
                steps_left -= 1
                if steps_left == 0:
                    tiles_left, steps_left, first_step = tiles_left - 1, steps, True
                    if tiles_left == 0:
                        state = "TOKEN"
            else:
                en = capturing
        elif state == "TOKEN":
            if free:
                en = token = True
                if steps == 0 and tiles_left > 1:
                    tiles_left -= 1
                else:
                    state = "FLUSH"
            else:
                en = capturing
        elif capturing:
            en = True
        elif not full or read_last:
            state = "IDLE"
        if full:
            row = 0 if read_last else row + 1
            full = not read_last
        if token:
            capturing, ticks = True, latency
        elif en and capturing:
            ticks -= 1
            if ticks == 0:
                capturing, full = False, True
    return cycles


def variable_step_job_cycles(step_cycles: list[int], m_tile: int) -> int:
    """Stall-free job cycles under :class:`~accelsmith.hdl.tensor_engine.VariableStepEngine`:
    the first step is taken in the first BUSY cycle, the core's last cycle is followed by one
    cycle before the ``m_tile`` result rows; ``m_tile + 1`` for a job without steps."""
    return m_tile + 1 if not len(step_cycles) else 2 + int(sum(step_cycles)) + m_tile


def step_cycles(a_blk, b_blk, mac: str, a_fmt: IntFormat, b_fmt: IntFormat, encoding: str) -> int:
    """Cycles a digit-serial core spends on one step (A block ``rows x k``, B block ``k x cols``).

    ``opt3``/``opt4c``: for each bit weight, ``max(1, most non-zero A digits of that weight in any
    row)``, summed. ``opt4e``: all bit weights at once, ``max(1, most in any row and weight)``.
    ``bitslice`` (k = 1): ``P * Q`` for ``P`` the most non-zero digits of any A value and ``Q``
    of any B value, 1 if either is 0. See :mod:`accelsmith.hdl.digit_serial`.
    """
    nz_a = encode_digits(a_blk, a_fmt, encoding) != 0           # rows x k x nd
    if mac == "bitslice":
        p = int(nz_a.sum(axis=-1).max(initial=0))
        q = int((encode_digits(b_blk, b_fmt, encoding) != 0).sum(axis=-1).max(initial=0))
        return 1 if p == 0 or q == 0 else p * q
    per_weight = nz_a.sum(axis=1).max(axis=0)                 # most non-zeros per bit weight
    if mac == "opt4e":
        return max(1, int(per_weight.max()))
    if mac in ("opt3", "opt4c"):
        return int(np.maximum(per_weight, 1).sum())
    raise ValueError(f"mac {mac!r} has no data-dependent schedule")
