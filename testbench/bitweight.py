"""cocotb testbench of the ``bitweight`` family against :mod:`accelsmith.models.bitweight`.

Dense tiles of the configured formats through the shared runner of :mod:`.tiles`: corner cases
(extremes, zeros, identity, one non-zero, K = 0, K longer than the array) and random tiles, the
CYCLES register checked against the model's count (exact for the data-dependent digit-serial
engines too).
"""

from __future__ import annotations

import cocotb
import numpy as np

from accelsmith.models.bitweight import EngineGeometry

from .tiles import Job, batch, make_job, run_tile_test


def corner_operands(g: EngineGeometry, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Structured cases: extremes, zeros, identity, one non-zero, multi-step and empty K."""
    m, n, ks = g.m_tile, g.n_tile, g.k_per_step
    k_long = 5 * ks + 1 if ks > 1 else 7
    a_full = lambda k, v: np.full((m, k), v, dtype=np.int64)
    b_full = lambda k, v: np.full((k, n), v, dtype=np.int64)
    jobs = [
        ("all most-negative", a_full(k_long, g.a_fmt.min), b_full(k_long, g.b_fmt.min)),
        ("all max", a_full(k_long, g.a_fmt.max), b_full(k_long, g.b_fmt.max)),
        ("min x max", a_full(k_long, g.a_fmt.min), b_full(k_long, g.b_fmt.max)),
        ("zeros", a_full(ks, 0), b_full(ks, 0)),
        ("identity", np.eye(m, dtype=np.int64), random_operand(g.b_fmt, (m, n), rng)),
        ("K = 0", np.zeros((m, 0), dtype=np.int64), np.zeros((0, n), dtype=np.int64)),
    ]
    one_a = np.zeros((m, k_long), dtype=np.int64)
    one_a[rng.integers(m), rng.integers(k_long)] = g.a_fmt.min or g.a_fmt.max
    jobs.append(("single non-zero", one_a, random_operand(g.b_fmt, (k_long, n), rng)))
    k_many = 4 * ks + 3
    jobs.append(("K larger than the array", random_operand(g.a_fmt, (m, k_many), rng),
                 random_operand(g.b_fmt, (k_many, n), rng)))
    return jobs


def corner_jobs(g: EngineGeometry, rng: np.random.Generator) -> list[Job]:
    jobs = [make_job(g, *case) for case in corner_operands(g, rng)]
    if g.buffered:
        jobs += batch_corners(g, rng, lambda name, k: make_job(g, name, *random_operands(g, rng, k)))
    return jobs


def batch_corners(g, rng, tile_job) -> list[Job]:
    """Several tiles per job: too short to hide the readout (K of 1 step), long enough, and
    K = 0. ``tile_job(name, k)`` makes one tile of reduction length ``k``."""
    out = []
    for steps, tiles in ((1, 3), (g.pipeline_latency + g.m_tile + 1, 3), (0, 2), (2, 5)):
        k = steps * g.k_per_step
        out.append(batch(g, [tile_job(f"batch of {tiles}, {steps} steps, tile {t}", k)
                             for t in range(tiles)]))
    return out


def random_operand(fmt, shape, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)


def random_operands(g: EngineGeometry, rng: np.random.Generator, k: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(1, 3 * g.k_per_step + 3)) if k is None else k
    A = random_operand(g.a_fmt, (g.m_tile, k), rng)
    B = random_operand(g.b_fmt, (k, g.n_tile), rng)
    if rng.random() < 0.2:  # sparse operands exercise zero handling
        A *= rng.random(A.shape) < 0.3
    return A, B


def random_job(g: EngineGeometry, index: int, rng: np.random.Generator) -> Job:
    if g.buffered and rng.random() < 0.4:
        k = int(rng.integers(0, 3 * g.k_per_step + 3))
        return batch(g, [make_job(g, f"random #{index}.{t}", *random_operands(g, rng, k))
                         for t in range(int(rng.integers(2, 5)))])
    return make_job(g, f"random #{index}", *random_operands(g, rng))


@cocotb.test()
async def gemm_tiles(dut):
    """Corner-case and random tiles, without and then with random stalls."""
    await run_tile_test(dut, EngineGeometry.from_manifest, corner_jobs, random_job)
