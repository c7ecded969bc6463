"""cocotb testbench of the ``sparse`` family against :mod:`accelsmith.models.sparse`.

N:M engines: the dense corner cases of :mod:`.bitweight` pruned to N:M, random tiles over the
density range, and malformed metadata (a group with repeated or descending indices, every group
of a tile malformed) that must zero exactly those groups, set STATUS.ERROR for that job only,
and leave the timing and the following jobs untouched.

Dual-side (bitmap) engines: the same dense corner cases, every pair of densities of
:data:`DENSITIES` on the two operands, empty rows and columns, all non-zeros in one buffer row
bank, and malformed steps (a count that disagrees with its bitmap) that must add nothing and set
STATUS.ERROR. Cycle counts are checked against the model exactly on every stall-free job.
"""

from __future__ import annotations

import cocotb
import numpy as np

from accelsmith.models.sparse import BitmapGeometry, NMGeometry, NMMatrix, OuterProductJob, prune_nm

from .bitweight import batch_corners, corner_operands, random_operand
from .tiles import Job, batch, make_job, run_tile_test

DENSITIES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def geometry(manifest: dict):
    return (NMGeometry if manifest["format"] == "nm" else BitmapGeometry).from_manifest(manifest)


def corrupt(comp: NMMatrix, rng: np.random.Generator, every_group: bool = False) -> bool:
    """Give one group (or all) indices that are not strictly ascending; False if impossible."""
    if comp.n == 1 or comp.groups == 0:
        return False
    idx = comp.indices.reshape(comp.rows, comp.groups, comp.n)
    targets = np.ndindex(comp.rows, comp.groups) if every_group else \
        [(int(rng.integers(comp.rows)), int(rng.integers(comp.groups)))]
    for r, grp in targets:
        if rng.random() < 0.5:
            idx[r, grp, :] = rng.integers(comp.m)             # repeated index
        else:
            idx[r, grp, :] = np.sort(rng.choice(comp.m, comp.n, replace=False))[::-1]   # descending
    return True


def corner_jobs(g, rng: np.random.Generator) -> list[Job]:
    if isinstance(g, BitmapGeometry):
        return bitmap_corner_jobs(g, rng)
    jobs = [make_job(g, name, g.compress(prune_nm(A, g.n, g.m)), B)
            for name, A, B in corner_operands(g, rng)]
    k = 3 * g.k_per_step + 1
    jobs += batch_corners(g, rng, lambda name, k: nm_tile(g, name, k, 1.0, rng))
    for name, every in (("one malformed group", False), ("every group malformed", True)):
        comp = g.compress(prune_nm(random_operand(g.a_fmt, (g.m_tile, k), rng), g.n, g.m))
        if corrupt(comp, rng, every):
            jobs.append(make_job(g, name, comp, random_operand(g.b_fmt, (k, g.n_tile), rng), error=True))
            jobs.append(make_job(g, f"after {name}", g.compress(prune_nm(
                random_operand(g.a_fmt, (g.m_tile, k), rng), g.n, g.m)),
                random_operand(g.b_fmt, (k, g.n_tile), rng)))
    return jobs


def nm_tile(g: NMGeometry, name: str, k: int, density: float, rng, may_corrupt: bool = False) -> Job:
    A = random_operand(g.a_fmt, (g.m_tile, k), rng)
    A *= rng.random(A.shape) < density
    comp = g.compress(prune_nm(A, g.n, g.m))
    B = random_operand(g.b_fmt, (k, g.n_tile), rng)
    error = may_corrupt and rng.random() < 0.05 and corrupt(comp, rng)
    return make_job(g, name, comp, B, error=error)


def random_job(g, index: int, rng: np.random.Generator) -> Job:
    if isinstance(g, BitmapGeometry):
        return bitmap_random_job(g, index, rng)
    density = DENSITIES[index % len(DENSITIES)]
    if rng.random() < 0.4:      # several tiles of the same K in one job
        k = int(rng.integers(0, 3 * g.k_per_step + 3))
        return batch(g, [nm_tile(g, f"random #{index}.{t}", k, density, rng, True)
                         for t in range(int(rng.integers(2, 5)))])
    return nm_tile(g, f"random #{index}", int(rng.integers(1, 3 * g.k_per_step + 3)), density, rng, True)


def sparse_operands(g: BitmapGeometry, k: int, da: float, db: float, rng):
    A = random_operand(g.a_fmt, (g.m_tile, k), rng) * (rng.random((g.m_tile, k)) < da)
    B = random_operand(g.b_fmt, (k, g.n_tile), rng) * (rng.random((k, g.n_tile)) < db)
    return A, B


def miscount(job: OuterProductJob, rng) -> bool:
    """Make one step's A or B count disagree with its bitmap; False if the job has no steps."""
    if not job.steps:
        return False
    s = int(rng.integers(job.steps))
    counts, length = (job.a_counts, job.a_bitmaps.shape[1]) if rng.random() < 0.5 else \
        (job.b_counts, job.b_bitmaps.shape[1])
    counts[s] = (counts[s] + int(rng.integers(1, length + 1))) % (length + 1)
    return True


def bitmap_corner_jobs(g: BitmapGeometry, rng) -> list[Job]:
    jobs = [make_job(g, name, g.job(A, B)) for name, A, B in corner_operands(g, rng)]
    k = 9
    for da in DENSITIES:
        for db in DENSITIES:
            A, B = sparse_operands(g, k, da, db, rng)
            jobs.append(make_job(g, f"density A {da:.0%} x B {db:.0%}", g.job(A, B)))
    A, B = sparse_operands(g, k, 0.7, 0.7, rng)
    A[rng.integers(g.m_tile)] = 0
    A[:, rng.integers(k)] = 0
    B[:, rng.integers(g.n_tile)] = 0
    B[rng.integers(k)] = 0
    jobs.append(make_job(g, "empty rows and columns", g.job(A, B)))
    A, B = sparse_operands(g, k, 1.0, 1.0, rng)
    A[np.arange(g.m_tile) != rng.integers(g.m_tile)] = 0
    jobs.append(make_job(g, "all non-zeros in one row bank", g.job(A, B)))
    for side in range(3):
        A, B = sparse_operands(g, k, 0.6, 0.6, rng)
        job = g.job(A, B)
        if miscount(job, rng):
            jobs.append(make_job(g, f"malformed count #{side}", job, error=True))
    return jobs


def bitmap_random_job(g: BitmapGeometry, index: int, rng) -> Job:
    k = int(rng.integers(1, 20))
    A, B = sparse_operands(g, k, rng.choice(DENSITIES), rng.choice(DENSITIES), rng)
    job = g.job(A, B)
    error = rng.random() < 0.03 and miscount(job, rng)
    return make_job(g, f"random #{index}", job, error=error)


@cocotb.test()
async def sparse_tiles(dut):
    """Corner-case, malformed and random tiles, without and then with random stalls."""
    await run_tile_test(dut, geometry, corner_jobs, random_job)
