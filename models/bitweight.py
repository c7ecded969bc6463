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

from dataclasses import dataclass

import numpy as np

from .intformat import IntFormat

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

    @classmethod
    def from_manifest(cls, manifest: dict) -> "EngineGeometry":
        g = manifest["geometry"]
        fmt = lambda d: IntFormat(d["bits"], d["signed"])
        return cls(g["dataflow"], g["m_tile"], g["n_tile"], g["k_per_step"], g["pipeline_latency"],
                   fmt(g["a"]), fmt(g["b"]), fmt(g["acc"]))

    def to_manifest(self) -> dict:
        fmt = lambda f: {"bits": f.bits, "signed": f.signed}
        return {"dataflow": self.dataflow, "m_tile": self.m_tile, "n_tile": self.n_tile,
                "k_per_step": self.k_per_step, "pipeline_latency": self.pipeline_latency,
                "a": fmt(self.a_fmt), "b": fmt(self.b_fmt), "acc": fmt(self.acc_fmt),
                "a_beat_len": self.a_beat_len, "b_beat_len": self.b_beat_len}

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

    def job_cycles(self, steps: int) -> int:
        """Cycles from START to the last result accepted, with no stalls on any stream."""
        if self.output_stationary:
            return steps + self.pipeline_latency + self.m_tile
        return steps * (self.k_per_step + self.m_tile + self.pipeline_latency) + self.m_tile

    def macs_per_cycle(self) -> int:
        """Peak multiply-accumulates per cycle while operands stream."""
        if self.output_stationary:
            return self.m_tile * self.n_tile * self.k_per_step
        return self.k_per_step * self.n_tile
