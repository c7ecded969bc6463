"""How a GEMM of any size becomes engine jobs: tiling, K chunks, operand encoding (with the
encoders of :mod:`accelsmith.models`), and the golden result the hardware must reproduce.

A *tile job* computes one output tile over one chunk of K. Chunks exist only when a tile's
operands would not fit the SoC's buffers; their partial tiles are summed modulo the
accumulator width, which is exactly the wrap-around of the whole sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsmith.models.bitweight import EngineGeometry, gemm as golden_gemm
from accelsmith.models.intformat import IntFormat
from accelsmith.models.sparse import (BitmapGeometry, NMGeometry, NMMatrix, SparseFormatError,
                                      prune_nm)

__all__ = ["GemmError", "TileJob", "check_operand", "dims", "geometry_of", "plan", "golden",
           "prepare_a"]


class GemmError(ValueError):
    """Operands the engine cannot take (shapes, value ranges, sparsity format)."""


@dataclass
class TileJob:
    """One engine job: output tile ``(i, j)`` (tile indices) over K chunk ``chunk``."""

    tile: tuple[int, int]
    chunk: int
    a_words: list[int]
    b_words: list[int]
    steps: int
    macs: int               # useful multiply-accumulates (dense count)
    cycles: int             # stall-free engine cycles predicted by the model
    malformed: bool = False  # N:M metadata the engine will flag (STATUS.ERROR)


def geometry_of(manifest: dict) -> EngineGeometry:
    """The engine geometry recorded in an engine manifest, of the right class for its family."""
    if manifest["family"] == "sparse":
        cls = NMGeometry if manifest["config"]["format"] == "nm" else BitmapGeometry
        return cls.from_manifest(manifest)
    return EngineGeometry.from_manifest(manifest)


def check_operand(name: str, X, fmt: IntFormat) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise GemmError(f"{name} must be a 2-D matrix, got shape {X.shape}")
    if X.dtype.kind not in "iub":
        if X.dtype.kind == "f" and X.size and np.all(np.isfinite(X)) and np.all(X == np.round(X)):
            X = X.astype(np.int64)
        else:
            raise GemmError(f"{name} must hold integers, got dtype {X.dtype}")
    X = X.astype(np.int64)
    if not fmt.contains(X):
        lo, hi = int(X.min()), int(X.max())
        raise GemmError(f"{name} has values in [{lo}, {hi}], outside the engine's {fmt} range "
                        f"[{fmt.min}, {fmt.max}]")
    return X


def prepare_a(g: EngineGeometry, A, prune: bool = False):
    """A as the engine takes it: dense, or an :class:`NMMatrix` on N:M engines (a dense A must
    already be N:M unless ``prune``)."""
    if isinstance(g, NMGeometry):
        if isinstance(A, NMMatrix):
            if (A.n, A.m) != (g.n, g.m):
                raise GemmError(f"A is {A.n}:{A.m}, the engine is {g.n}:{g.m}")
            if A.fmt != g.a_fmt:
                raise GemmError(f"A's values are {A.fmt}, the engine takes {g.a_fmt}")
            shape = (A.rows, A.groups * A.n)
            if A.values.shape != shape or A.indices.shape != shape:
                raise GemmError(f"A: values {A.values.shape} and indices {A.indices.shape} must "
                                f"both be {shape}")
            return A
        dense = check_operand("A", A, g.a_fmt)
        if prune:
            dense = prune_nm(dense, g.n, g.m)
        try:
            return NMMatrix.compress(dense, g.n, g.m, g.a_fmt)
        except SparseFormatError as exc:
            raise GemmError(f"{exc}; this engine is {g.n}:{g.m}: pass prune=True (--prune) to "
                            f"keep the {g.n} largest of every {g.m}") from None
    if isinstance(A, NMMatrix):
        raise GemmError("A is an N:M matrix but the engine is dense; give A dense")
    return check_operand("A", A, g.a_fmt)


def dims(A) -> tuple[int, int]:
    return (A.rows, A.k) if isinstance(A, NMMatrix) else A.shape


def golden(g: EngineGeometry, A, B) -> np.ndarray:
    """What the hardware must return for ``A @ B``: the exact product wrapped to the accumulator
    (N:M groups with malformed metadata contribute zero, as in the hardware)."""
    dense = A.decompress(strict=False) if isinstance(A, NMMatrix) else A
    return golden_gemm(dense, B, g.a_fmt, g.b_fmt, g.acc_fmt)


def max_steps(g: EngineGeometry, a_depth: int, b_depth: int) -> int:
    """Most K steps one job may take so its operands fit the buffers."""
    if isinstance(g, BitmapGeometry) or g.output_stationary:
        per_a, per_b = 1, 1
    else:
        per_a, per_b = g.m_tile, g.k_per_step
    return max(1, min(a_depth // per_a, b_depth // per_b))


def _nm_slice(A: NMMatrix, rows: slice, g0: int, g1: int, m_tile: int) -> NMMatrix:
    n = A.n
    values = A.values[rows, g0 * n:g1 * n]
    indices = A.indices[rows, g0 * n:g1 * n]
    pad = m_tile - values.shape[0]
    if pad:
        filler = np.tile(np.arange(n, dtype=indices.dtype), (pad, g1 - g0))
        values = np.vstack([values, np.zeros((pad, values.shape[1]), dtype=values.dtype)])
        indices = np.vstack([indices, filler])
    return NMMatrix(n, A.m, min(A.k, g1 * A.m) - g0 * A.m, A.fmt, values, indices)


def plan(g: EngineGeometry, A, B, a_depth: int, b_depth: int):
    """Yield the :class:`TileJob` s of ``A @ B`` (A prepared by :func:`prepare_a`), tile by tile
    in row-major order, each tile's K chunks in order."""
    M, K = dims(A)
    N = B.shape[1]
    mt, nt = g.m_tile, g.n_tile
    chunk_k = max_steps(g, a_depth, b_depth) * g.k_per_step
    if isinstance(g, NMGeometry):
        chunk_k -= chunk_k % g.m
    chunks = [(k0, min(K, k0 + chunk_k)) for k0 in range(0, K, chunk_k)] or [(0, 0)]
    for i in range(-(-M // mt)):
        rows = slice(i * mt, min(M, (i + 1) * mt))
        for j in range(-(-N // nt)):
            cols = slice(j * nt, min(N, (j + 1) * nt))
            for c, (k0, k1) in enumerate(chunks):
                b_t = np.zeros((k1 - k0, nt), dtype=np.int64)
                b_t[:, :cols.stop - cols.start] = B[k0:k1, cols]
                macs = (rows.stop - rows.start) * (cols.stop - cols.start) * (k1 - k0)
                if isinstance(A, NMMatrix):
                    a_t = _nm_slice(A, rows, k0 // g.m, -(-k1 // g.m), mt)
                    operands = (a_t, b_t)
                    malformed = bool(a_t.invalid_groups().any())
                else:
                    malformed = False
                    a_t = np.zeros((mt, k1 - k0), dtype=np.int64)
                    a_t[:rows.stop - rows.start] = A[rows, k0:k1]
                    operands = (g.job(a_t, b_t),) if isinstance(g, BitmapGeometry) else (a_t, b_t)
                a_words, b_words, steps = g.job_words(*operands)
                yield TileJob((i, j), c, a_words, b_words, steps, macs,
                              g.job_cycles_for(*operands), malformed)
