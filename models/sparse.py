"""Encoders, byte layouts and golden models of the ``sparse`` family.

Two compressed formats, each with a versioned byte layout (little-endian throughout), used by the
testbench now and by the host driver later:

**N:M structured** (:class:`NMMatrix`): a ``rows x K`` operand with at most ``n`` non-zeros in
every group of ``m`` consecutive elements along K (the last group zero-padded when ``m`` does not
divide K) is stored as ``n`` values plus ``n`` indices per group. Indices are ``log2(m)`` bits and
strictly ascending within a group; a group with fewer than ``n`` non-zeros is padded with zero
values at the lowest unused indices. Metadata is packed LSB-first, row by row, so for 2:4 each
group is one nibble with its first index in bits 1:0 and its second in bits 3:2: the six
ascending nibbles 0x4, 0x8, 0x9, 0xC, 0xD, 0xE are NVIDIA's valid set and same-index nibbles
(0x0, 0x5, 0xA, 0xF) are invalid.

``ASNM`` layout v1: ``b"ASNM"``, u8 version, u8 n, u8 m, u8 value bits, u8 signed, 3 zero
bytes, u32 rows, u32 K; then ``rows * groups * n`` values, each in ``ceil(bits / 8)`` bytes
(two's complement), row-major; then the metadata, each row padded to a whole byte.

**Bitmap** (:class:`BitmapVectors`): the operand as vectors (the columns of A, column-major,
or the rows of B), each a bitmap (bit ``i`` set = element ``i`` non-zero, LSB-first) plus its
non-zero values in order. ``ASBM`` layout v1: ``b"ASBM"``, u8 version, u8 value bits, u8 signed,
u8 axis (0 columns, 1 rows), u32 rows, u32 cols, the bitmaps (one per vector, each padded to a
whole byte), u32 value count, the values.

**Two-level bitmap** (:class:`TwoLevelBitmap`) for large matrices: a tile bitmap (one bit per
``tile_rows x tile_cols`` tile, row-major over tiles) and, for non-empty tiles only, an element
bitmap and the tile's values in the vector order of ``axis``. ``AS2B`` layout v1: ``b"AS2B"``,
u8 version, u8 value bits, u8 signed, u8 axis, u32 rows, u32 cols, u16 tile rows, u16 tile
cols, the tile bitmap, the element bitmaps of the non-empty tiles, u32 value count, the values.

Every decoder checks lengths, ranges and counts and raises :class:`SparseFormatError` naming what
is wrong; nothing is silently truncated or padded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .bitweight import EngineGeometry, gemm, variable_step_job_cycles
from .intformat import IntFormat
from .packing import pack

FORMAT_VERSION = 1
NM_MAGIC, BITMAP_MAGIC, TWO_LEVEL_MAGIC = b"ASNM", b"ASBM", b"AS2B"
AXES = ("columns", "rows")


class SparseFormatError(ValueError):
    """Encoded sparse data that does not describe a valid matrix; the message says why."""


# ---------------------------------------------------------------------------------------------
# Bit and value packing shared by the layouts


def _pack_bits(bits: np.ndarray) -> bytes:
    """Rows of booleans -> bytes, LSB-first, each row padded to a whole byte."""
    bits = np.atleast_2d(np.asarray(bits, dtype=np.uint8))
    return np.packbits(bits, axis=1, bitorder="little").tobytes()


def _unpack_bits(raw: bytes, rows: int, length: int) -> np.ndarray:
    per_row = -(-length // 8)
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(rows, per_row)
    return np.unpackbits(arr, axis=1, bitorder="little", count=length).astype(bool)


def _value_bytes(fmt: IntFormat) -> int:
    return -(-fmt.bits // 8)


def _pack_values(values: np.ndarray, fmt: IntFormat) -> bytes:
    nb = _value_bytes(fmt)
    v = np.asarray(values, dtype=np.int64).reshape(-1) & ((1 << (8 * nb)) - 1)
    return v.astype(f"<u{nb}").tobytes()


def _unpack_values(raw: bytes, fmt: IntFormat, count: int, what: str) -> np.ndarray:
    nb = _value_bytes(fmt)
    v = np.frombuffer(raw, dtype=f"<{'i' if fmt.signed else 'u'}{nb}", count=count).astype(np.int64)
    bad = (v < fmt.min) | (v > fmt.max)
    if bad.any():
        raise SparseFormatError(f"{what}: value {int(np.flatnonzero(bad)[0])} is "
                                f"{int(v[bad][0])}, outside {fmt} [{fmt.min}, {fmt.max}]")
    return v


class _Reader:
    def __init__(self, raw: bytes, what: str):
        self.raw, self.pos, self.what = bytes(raw), 0, what

    def take(self, n: int, part: str) -> bytes:
        if self.pos + n > len(self.raw):
            raise SparseFormatError(f"{self.what}: truncated: {part} needs {n} bytes at offset "
                                    f"{self.pos}, only {len(self.raw) - self.pos} left")
        out = self.raw[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, part: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), part))

    def bitmaps(self, count: int, length: int, part: str) -> np.ndarray:
        if not count:
            return np.zeros((0, length), dtype=bool)
        return _unpack_bits(self.take(count * (-(-length // 8)), part), count, length)

    def values_for(self, bitmaps: np.ndarray, fmt: IntFormat, part: str) -> np.ndarray:
        """The value count, checked against ``bitmaps``, the values, and the end of the data."""
        (count,) = self.unpack("<I", "value count")
        if count != int(bitmaps.sum()):
            raise SparseFormatError(f"{self.what}: value count {count} but the {part} have "
                                    f"{int(bitmaps.sum())} set bits")
        values = _unpack_values(self.take(count * _value_bytes(fmt), "values"), fmt, count, self.what)
        self.finish()
        return values

    def finish(self):
        if self.pos != len(self.raw):
            raise SparseFormatError(f"{self.what}: {len(self.raw) - self.pos} bytes after the end "
                                    f"of the data (wrong length)")


def _header(r: _Reader, magic: bytes):
    got = r.take(4, "magic")
    if got != magic:
        raise SparseFormatError(f"{r.what}: not {magic.decode()} data (starts with {got!r})")
    (version,) = r.unpack("<B", "version")
    if version != FORMAT_VERSION:
        raise SparseFormatError(f"{r.what}: layout version {version}; this reader knows "
                                f"version {FORMAT_VERSION}")


def _format(bits: int, signed: int, what: str) -> IntFormat:
    if not 2 <= bits <= 16 or signed not in (0, 1):
        raise SparseFormatError(f"{what}: value format bits={bits} signed={signed}; allowed "
                                f"2..16 bits, signed 0 or 1")
    return IntFormat(bits, bool(signed))


def _check_values(X, fmt: IntFormat, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise SparseFormatError(f"{what}: expected a 2-D matrix, got shape {X.shape}")
    if X.size and not np.issubdtype(X.dtype, np.integer):
        raise SparseFormatError(f"{what}: expected integers, got {X.dtype}")
    X = X.astype(np.int64)
    if not fmt.contains(X):
        raise SparseFormatError(f"{what}: values outside {fmt} [{fmt.min}, {fmt.max}]")
    return X


# ---------------------------------------------------------------------------------------------
# N:M structured sparsity


def check_nm(n: int, m: int):
    if m not in (2, 4, 8, 16) or not 1 <= n <= m:
        raise SparseFormatError(f"N:M = {n}:{m}: M must be 2, 4, 8 or 16 and 1 <= N <= M")


def prune_nm(W, n: int, m: int) -> np.ndarray:
    """Keep the ``n`` largest-magnitude values of every group of ``m`` along axis 1 (ties keep
    the lower index); the rest become 0."""
    check_nm(n, m)
    W = np.asarray(W, dtype=np.int64)
    rows, k = W.shape
    groups = -(-k // m)
    G = np.zeros((rows, groups * m), dtype=np.int64)
    G[:, :k] = W
    G = G.reshape(rows, groups, m)
    # Stable sort on -|w|: equal magnitudes keep index order, so the lower index wins.
    order = np.argsort(-np.abs(G), axis=2, kind="stable")
    keep = np.zeros_like(G, dtype=bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    return np.where(keep, G, 0).reshape(rows, groups * m)[:, :k]


@dataclass(frozen=True, eq=False)
class NMMatrix:
    """A ``rows x k`` matrix in N:M compressed form: ``values`` and ``indices`` are
    ``rows x (groups * n)``; see the module docstring for the rules and the byte layout."""

    n: int
    m: int
    k: int
    fmt: IntFormat
    values: np.ndarray
    indices: np.ndarray

    @property
    def rows(self) -> int:
        return self.values.shape[0]

    @property
    def groups(self) -> int:
        return -(-self.k // self.m)

    @property
    def index_bits(self) -> int:
        return self.m.bit_length() - 1

    @classmethod
    def compress(cls, W, n: int, m: int, fmt: IntFormat) -> "NMMatrix":
        """Compress a matrix that already satisfies N:M along axis 1 (see :func:`prune_nm`)."""
        check_nm(n, m)
        W = _check_values(W, fmt, "N:M compress")
        rows, k = W.shape
        groups = -(-k // m)
        G = np.zeros((rows, groups * m), dtype=np.int64)
        G[:, :k] = W
        G = G.reshape(rows, groups, m)
        nnz = (G != 0).sum(axis=2)
        if (nnz > n).any():
            r, g = np.argwhere(nnz > n)[0]
            raise SparseFormatError(f"N:M compress: row {r}, group {g} (columns {g * m}..{g * m + m - 1}) "
                                    f"has {nnz[r, g]} non-zeros; {n}:{m} allows at most {n} "
                                    f"(prune first with prune_nm)")
        # Non-zeros first, then zero positions, each in index order; keep n, sort ascending.
        key = np.where(G != 0, 0, 1) * m + np.arange(m)
        chosen = np.sort(np.argsort(key, axis=2, kind="stable")[:, :, :n], axis=2)
        values = np.take_along_axis(G, chosen, axis=2).reshape(rows, groups * n)
        return cls(n, m, k, fmt, values, chosen.reshape(rows, groups * n).astype(np.uint8))

    def invalid_groups(self) -> np.ndarray:
        """``rows x groups`` booleans: indices out of range or not strictly ascending."""
        idx = self.indices.astype(np.int64).reshape(self.rows, self.groups, self.n)
        bad = (idx >= self.m).any(axis=2)
        if self.n > 1:
            bad |= (np.diff(idx, axis=2) <= 0).any(axis=2)
        return bad

    def validate(self, what: str = "N:M matrix"):
        shape = (self.rows, self.groups * self.n)
        if self.values.shape != shape or self.indices.shape != shape:
            raise SparseFormatError(f"{what}: values {self.values.shape} and indices "
                                    f"{self.indices.shape} must both be {shape}")
        if not self.fmt.contains(self.values):
            raise SparseFormatError(f"{what}: values outside {self.fmt}")
        bad = self.invalid_groups()
        if bad.any():
            r, g = np.argwhere(bad)[0]
            got = self.indices[r, g * self.n:(g + 1) * self.n].tolist()
            raise SparseFormatError(f"{what}: row {r}, group {g}: indices {got} are invalid; each "
                                    f"group needs {self.n} strictly ascending indices below {self.m}")

    def decompress(self, strict: bool = True) -> np.ndarray:
        """The dense matrix. ``strict=False`` is the hardware's rule instead of an error: a group
        with invalid metadata contributes zeros."""
        if strict:
            self.validate()
        rows, groups, n, m = self.rows, self.groups, self.n, self.m
        out = np.zeros((rows, groups, m), dtype=np.int64)
        vals = self.values.reshape(rows, groups, n).copy()
        vals[self.invalid_groups()] = 0
        idx = np.minimum(self.indices.astype(np.int64), m - 1).reshape(rows, groups, n)
        r, g = np.indices((rows, groups))
        for t in range(n):
            out[r, g, idx[:, :, t]] += vals[:, :, t]
        return out.reshape(rows, groups * m)[:, :self.k]

    def metadata(self) -> bytes:
        """The packed indices, row by row (LSB-first, each row padded to a whole byte)."""
        bits = (self.indices[:, :, None].astype(np.int64) >> np.arange(self.index_bits)) & 1
        return _pack_bits(bits.reshape(self.rows, -1))

    def to_bytes(self) -> bytes:
        self.validate()
        head = NM_MAGIC + struct.pack("<BBBBB3xII", FORMAT_VERSION, self.n, self.m, self.fmt.bits,
                                      int(self.fmt.signed), self.rows, self.k)
        return head + _pack_values(self.values, self.fmt) + self.metadata()

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "N:M data") -> "NMMatrix":
        r = _Reader(raw, what)
        _header(r, NM_MAGIC)
        n, m, bits, signed, rows, k = r.unpack("<BBBB3xII", "header")
        try:
            check_nm(n, m)
        except SparseFormatError as exc:
            raise SparseFormatError(f"{what}: {exc}") from None
        fmt = _format(bits, signed, what)
        groups = -(-k // m)
        count = rows * groups * n
        values = _unpack_values(r.take(count * _value_bytes(fmt), "values"), fmt, count, what)
        ib = m.bit_length() - 1
        per_row = groups * n * ib
        meta = _unpack_bits(r.take(rows * (-(-per_row // 8)), "metadata"), rows, per_row)
        r.finish()
        idx = (meta.reshape(rows, groups * n, ib).astype(np.int64) << np.arange(ib)).sum(axis=2)
        out = cls(n, m, k, fmt, values.reshape(rows, groups * n), idx.astype(np.uint8))
        out.validate(what)
        return out


# ---------------------------------------------------------------------------------------------
# Bitmaps


def _vectors(X: np.ndarray, axis: str) -> np.ndarray:
    if axis not in AXES:
        raise SparseFormatError(f"bitmap axis {axis!r}; allowed: {', '.join(AXES)}")
    return X.T if axis == "columns" else X


@dataclass(frozen=True, eq=False)
class BitmapVectors:
    """A ``shape`` matrix as one bitmap plus packed non-zeros per vector (columns or rows)."""

    axis: str
    shape: tuple[int, int]
    fmt: IntFormat
    bitmaps: np.ndarray     # vectors x length, bool
    values: np.ndarray      # all non-zeros, vector after vector

    @classmethod
    def encode(cls, X, axis: str, fmt: IntFormat) -> "BitmapVectors":
        X = _check_values(X, fmt, "bitmap encode")
        V = _vectors(X, axis)
        return cls(axis, X.shape, fmt, V != 0, V[V != 0])

    def counts(self) -> np.ndarray:
        return self.bitmaps.sum(axis=1)

    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts())])

    def validate(self, what: str = "bitmap matrix"):
        vecs, length = self.shape[::-1] if self.axis == "columns" else self.shape
        if self.bitmaps.shape != (vecs, length):
            raise SparseFormatError(f"{what}: bitmaps {self.bitmaps.shape}, expected {(vecs, length)} "
                                    f"for a {self.shape} matrix by {self.axis}")
        if self.values.ndim != 1 or len(self.values) != int(self.bitmaps.sum()):
            raise SparseFormatError(f"{what}: {np.size(self.values)} values but the bitmaps have "
                                    f"{int(self.bitmaps.sum())} set bits")
        if not self.fmt.contains(self.values):
            raise SparseFormatError(f"{what}: values outside {self.fmt}")
        if (self.values == 0).any():
            raise SparseFormatError(f"{what}: value {int(np.flatnonzero(self.values == 0)[0])} is 0 "
                                    f"but its bitmap bit is set")

    def decode(self) -> np.ndarray:
        self.validate()
        V = np.zeros(self.bitmaps.shape, dtype=np.int64)
        V[self.bitmaps] = self.values
        return V.T.copy() if self.axis == "columns" else V

    def to_bytes(self) -> bytes:
        self.validate()
        head = BITMAP_MAGIC + struct.pack("<BBBBII", FORMAT_VERSION, self.fmt.bits, int(self.fmt.signed),
                                          AXES.index(self.axis), *self.shape)
        return (head + _pack_bits(self.bitmaps) + struct.pack("<I", len(self.values))
                + _pack_values(self.values, self.fmt))

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "bitmap data") -> "BitmapVectors":
        r = _Reader(raw, what)
        _header(r, BITMAP_MAGIC)
        bits, signed, axis, rows, cols = r.unpack("<BBBII", "header")
        fmt = _format(bits, signed, what)
        if axis > 1:
            raise SparseFormatError(f"{what}: axis code {axis}; allowed 0 (columns) or 1 (rows)")
        vecs, length = (cols, rows) if axis == 0 else (rows, cols)
        bitmaps = r.bitmaps(vecs, length, "bitmaps")
        values = r.values_for(bitmaps, fmt, "bitmaps")
        out = cls(AXES[axis], (rows, cols), fmt, bitmaps, values)
        out.validate(what)
        return out


@dataclass(frozen=True, eq=False)
class TwoLevelBitmap:
    """Tile bitmap + element bitmaps of the non-empty tiles + their values (module docstring)."""

    axis: str
    shape: tuple[int, int]
    tile: tuple[int, int]
    fmt: IntFormat
    tile_bitmap: np.ndarray         # tiles_r x tiles_c, bool
    element_bitmaps: np.ndarray     # non-empty tiles x (tile_rows * tile_cols), in axis order
    values: np.ndarray

    @classmethod
    def encode(cls, X, tile: tuple[int, int], axis: str, fmt: IntFormat) -> "TwoLevelBitmap":
        X = _check_values(X, fmt, "two-level bitmap encode")
        tr, tc = tile
        if tr < 1 or tc < 1:
            raise SparseFormatError(f"two-level bitmap: tile {tile} must be at least 1 x 1")
        _vectors(X, axis)
        rows, cols = X.shape
        nr, nc = -(-rows // tr), -(-cols // tc)
        P = np.zeros((nr * tr, nc * tc), dtype=np.int64)
        P[:rows, :cols] = X
        tiles = P.reshape(nr, tr, nc, tc).transpose(0, 2, 1, 3)          # nr x nc x tr x tc
        if axis == "columns":
            tiles = tiles.transpose(0, 1, 3, 2)
        flat = tiles.reshape(nr, nc, tr * tc)
        tile_bitmap = (flat != 0).any(axis=2)
        kept = flat[tile_bitmap]
        return cls(axis, X.shape, (tr, tc), fmt, tile_bitmap, kept != 0, kept[kept != 0])

    def validate(self, what: str = "two-level bitmap"):
        tr, tc = self.tile
        nr, nc = -(-self.shape[0] // tr), -(-self.shape[1] // tc)
        if self.tile_bitmap.shape != (nr, nc):
            raise SparseFormatError(f"{what}: tile bitmap {self.tile_bitmap.shape}, expected {(nr, nc)}")
        tiles = int(self.tile_bitmap.sum())
        if self.element_bitmaps.shape != (tiles, tr * tc):
            raise SparseFormatError(f"{what}: {self.element_bitmaps.shape[0]} element bitmaps for "
                                    f"{tiles} non-empty tiles")
        empty = ~self.element_bitmaps.any(axis=1)
        if empty.any():
            raise SparseFormatError(f"{what}: non-empty tile {int(np.flatnonzero(empty)[0])} has an "
                                    f"all-zero element bitmap")
        if len(self.values) != int(self.element_bitmaps.sum()):
            raise SparseFormatError(f"{what}: {len(self.values)} values but the element bitmaps have "
                                    f"{int(self.element_bitmaps.sum())} set bits")
        if not self.fmt.contains(self.values) or (self.values == 0).any():
            raise SparseFormatError(f"{what}: values must be non-zero and inside {self.fmt}")

    def decode(self) -> np.ndarray:
        self.validate()
        tr, tc = self.tile
        nr, nc = self.tile_bitmap.shape
        flat = np.zeros((nr, nc, tr * tc), dtype=np.int64)
        kept = np.zeros(self.element_bitmaps.shape, dtype=np.int64)
        kept[self.element_bitmaps] = self.values
        flat[self.tile_bitmap] = kept
        tiles = flat.reshape(nr, nc, *((tc, tr) if self.axis == "columns" else (tr, tc)))
        if self.axis == "columns":
            tiles = tiles.transpose(0, 1, 3, 2)
        P = tiles.transpose(0, 2, 1, 3).reshape(nr * tr, nc * tc)
        return P[:self.shape[0], :self.shape[1]].copy()

    def to_bytes(self) -> bytes:
        self.validate()
        head = TWO_LEVEL_MAGIC + struct.pack("<BBBBIIHH", FORMAT_VERSION, self.fmt.bits,
                                             int(self.fmt.signed), AXES.index(self.axis),
                                             *self.shape, *self.tile)
        return (head + _pack_bits(self.tile_bitmap.reshape(1, -1)) + _pack_bits(self.element_bitmaps)
                + struct.pack("<I", len(self.values)) + _pack_values(self.values, self.fmt))

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "two-level bitmap data") -> "TwoLevelBitmap":
        r = _Reader(raw, what)
        _header(r, TWO_LEVEL_MAGIC)
        bits, signed, axis, rows, cols, tr, tc = r.unpack("<BBBIIHH", "header")
        fmt = _format(bits, signed, what)
        if axis > 1 or tr < 1 or tc < 1:
            raise SparseFormatError(f"{what}: axis code {axis} (allowed 0, 1), tile {tr} x {tc} "
                                    f"(at least 1 x 1)")
        nr, nc = -(-rows // tr), -(-cols // tc)
        tile_bitmap = r.bitmaps(1, nr * nc, "tile bitmap").reshape(nr, nc)
        elems = r.bitmaps(int(tile_bitmap.sum()), tr * tc, "element bitmaps")
        values = r.values_for(elems, fmt, "element bitmaps")
        out = cls(AXES[axis], (rows, cols), (tr, tc), fmt, tile_bitmap, elems, values)
        out.validate(what)
        return out


# ---------------------------------------------------------------------------------------------
# Engine geometry and golden model of the N:M engine


@dataclass(frozen=True)
class NMGeometry(EngineGeometry):
    """An N:M engine as recorded in its manifest: the output-stationary job of
    :class:`~accelsmith.models.bitweight.EngineGeometry` with A compressed. ``k_per_step`` counts
    dense K values (``groups * m``); the ``a`` beat of a step holds ``m_tile * kept_per_step``
    values (row-major, element ``i`` in bits ``[i*bits, (i+1)*bits)``) followed by as many
    ``log2(m)``-bit indices in the same order."""

    n: int = 1
    m: int = 1

    def to_manifest(self) -> dict:
        return {**super().to_manifest(), "kept_per_step": self.kept_per_step,
                "index_bits": self.index_bits}

    @property
    def kept_per_step(self) -> int:
        return self.k_per_step // self.m * self.n

    @property
    def index_bits(self) -> int:
        return self.m.bit_length() - 1

    @property
    def a_beat_len(self) -> int:
        return self.m_tile * self.kept_per_step

    def stream_layouts(self) -> dict:
        kept, a, ib = self.kept_per_step, self.a_fmt.bits, self.index_bits
        values = self.a_beat_len * a
        layouts = super().stream_layouts()
        layouts["a"] = {"payload_bits": values + self.a_beat_len * ib, "layout": (
            f"one beat per step: element i = r*{kept} + j holds the j-th kept value of row r "
            f"(r < {self.m_tile}, j < {kept}; {self.n} per group of {self.m}, groups in K order) "
            f"in bits [i*{a}, (i+1)*{a}); its index within the group (0 .. {self.m - 1}, "
            f"strictly ascending within a group) in bits [{values} + i*{ib}, {values} + (i+1)*{ib})")}
        return layouts

    def compress(self, A) -> NMMatrix:
        return NMMatrix.compress(A, self.n, self.m, self.a_fmt)

    def job_words(self, comp: NMMatrix, B) -> tuple[list[int], list[int], int]:
        """The ``a`` and ``b`` payload words of one job; ``comp`` may hold malformed metadata
        (the hardware's reaction is part of what is tested)."""
        B = np.asarray(B, dtype=np.int64)
        if comp.rows != self.m_tile or B.shape != (comp.k, self.n_tile) or (comp.n, comp.m) != (self.n, self.m):
            raise ValueError(f"job: {comp.n}:{comp.m} A {comp.rows}x{comp.k} and B {B.shape} do not fit "
                             f"a {self.n}:{self.m} {self.m_tile}x{self.n_tile} engine")
        steps = self.steps(comp.k)
        kept = self.kept_per_step
        pad_groups = steps * (self.k_per_step // self.m) - comp.groups
        values = np.pad(comp.values, ((0, 0), (0, pad_groups * self.n)))
        filler = np.tile(np.arange(self.n), (self.m_tile, pad_groups))
        indices = np.concatenate([comp.indices.astype(np.int64), filler], axis=1)
        B = np.pad(B, ((0, steps * self.k_per_step - comp.k), (0, 0)))
        a_words, b_words = [], []
        shift = self.a_beat_len * self.a_fmt.bits
        for s in range(steps):
            cols = slice(s * kept, (s + 1) * kept)
            a_words.append(pack(values[:, cols].reshape(-1), self.a_fmt.bits)
                           | pack(indices[:, cols].reshape(-1), self.index_bits) << shift)
            b_words.append(pack(B[s * self.k_per_step:(s + 1) * self.k_per_step].reshape(-1),
                                self.b_fmt.bits))
        return a_words, b_words, steps

    def job_cycles_for(self, comp: NMMatrix, B) -> int:
        return self.job_cycles(self.steps(comp.k))

    def expected(self, comp: NMMatrix, B) -> np.ndarray:
        """The tile the hardware produces: malformed groups contribute zero."""
        return gemm(comp.decompress(strict=False), B, self.a_fmt, self.b_fmt, self.acc_fmt)


# ---------------------------------------------------------------------------------------------
# Engine geometry and golden model of the dual-side (outer-product) engine


@dataclass(eq=False)
class OuterProductJob:
    """The steps of one dual-side job as the host sends them: for each k kept (``ks``), A's
    column and B's row as bitmap, count and front-packed non-zeros. ``counts`` may disagree
    with the bitmaps (malformed input, part of what is tested)."""

    ks: np.ndarray
    a_bitmaps: np.ndarray      # steps x m_tile, bool
    a_counts: np.ndarray       # steps
    a_values: np.ndarray       # steps x m_tile, non-zeros first
    b_bitmaps: np.ndarray      # steps x n_tile
    b_counts: np.ndarray
    b_values: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.ks)

    def well_formed(self) -> np.ndarray:
        """Per step: both counts match their bitmaps (else the hardware adds nothing)."""
        return ((self.a_bitmaps.sum(axis=1) == self.a_counts)
                & (self.b_bitmaps.sum(axis=1) == self.b_counts))


def _condensed(vectors: BitmapVectors, keep: np.ndarray, length: int):
    offsets = vectors.offsets()
    values = np.zeros((len(keep), length), dtype=np.int64)
    for s, v in enumerate(keep):
        nz = vectors.values[offsets[v]:offsets[v + 1]]
        values[s, :len(nz)] = nz
    bitmaps = vectors.bitmaps[keep]
    return bitmaps, bitmaps.sum(axis=1), values


@dataclass(frozen=True)
class BitmapGeometry(EngineGeometry):
    """A dual-side engine as recorded in its manifest: an ``rows x cols`` multiplier grid and an
    ``m_tile x n_tile`` output tile, one k (outer product) per step, data-dependent step cycles
    (``schedule = "outer_product"``). Beat layout: bitmap (``m_tile`` bits, LSB = row 0), count,
    values (front-packed), as :func:`~accelsmith.hdl.sparse_cores.bitmap_operand_layout`."""

    rows: int = 1
    cols: int = 1

    def job(self, A, B) -> OuterProductJob:
        """Host-side encoding of one tile job: both operands as bitmaps (A by columns, B by
        rows); a k whose A column or B row is empty is not sent at all (popcount skipping)."""
        A = _check_values(A, self.a_fmt, "dual-side job A")
        B = _check_values(B, self.b_fmt, "dual-side job B")
        if A.shape[0] != self.m_tile or B.shape[1] != self.n_tile or A.shape[1] != B.shape[0]:
            raise ValueError(f"job: A {A.shape} and B {B.shape} do not fit a "
                             f"{self.m_tile}x{self.n_tile} output tile")
        a_vec = BitmapVectors.encode(A, "columns", self.a_fmt)
        b_vec = BitmapVectors.encode(B, "rows", self.b_fmt)
        ks = np.flatnonzero(a_vec.bitmaps.any(axis=1) & b_vec.bitmaps.any(axis=1))
        return OuterProductJob(ks, *_condensed(a_vec, ks, self.m_tile),
                               *_condensed(b_vec, ks, self.n_tile))

    def stream_layouts(self) -> dict:
        def vector(length, fmt, what):
            c = length.bit_length()
            return {"payload_bits": length + c + length * fmt.bits, "layout": (
                f"one beat per step (one k with a non-zero {what}): bits [0, {length}) the "
                f"bitmap (bit i = element i is non-zero), bits [{length}, {length + c}) the count "
                f"of non-zeros, then the non-zero values front-packed in index order, value j in "
                f"bits [{length + c} + j*{fmt.bits}, {length + c} + (j+1)*{fmt.bits})")}

        return {"a": vector(self.m_tile, self.a_fmt, "A column"),
                "b": vector(self.n_tile, self.b_fmt, "B row"), "c": self.result_layout()}

    def _words(self, bitmaps, counts, values, length, fmt):
        count_bits = length.bit_length()
        return [pack(bm, 1) | int(c) << length | pack(v, fmt.bits) << (length + count_bits)
                for bm, c, v in zip(bitmaps, counts, values)]

    def job_words(self, job: OuterProductJob) -> tuple[list[int], list[int], int]:
        return (self._words(job.a_bitmaps, job.a_counts, job.a_values, self.m_tile, self.a_fmt),
                self._words(job.b_bitmaps, job.b_counts, job.b_values, self.n_tile, self.b_fmt),
                job.steps)

    def step_cycles(self, job: OuterProductJob) -> np.ndarray:
        """``max(1, ceil(nnz_a / rows) * ceil(nnz_b / cols))`` per step; 1 for malformed steps."""
        ok = job.well_formed()
        pa = -(-job.a_bitmaps.sum(axis=1) // self.rows)
        pb = -(-job.b_bitmaps.sum(axis=1) // self.cols)
        return np.where(ok, np.maximum(1, pa * pb), 1)

    def job_cycles_for(self, job: OuterProductJob) -> int:
        return variable_step_job_cycles(self.step_cycles(job).tolist(), self.m_tile)

    def job_cycle_bound(self, steps: int, tiles: int = 1) -> int:
        """The most cycles a job of ``steps`` steps can take: every step with full bitmaps."""
        passes = -(-self.m_tile // self.rows) * -(-self.n_tile // self.cols)
        return variable_step_job_cycles([passes] * steps, self.m_tile)

    def expected(self, job: OuterProductJob) -> np.ndarray:
        """The tile the hardware produces: malformed steps contribute nothing."""
        A = np.zeros((self.m_tile, job.steps), dtype=np.int64)
        B = np.zeros((job.steps, self.n_tile), dtype=np.int64)
        for s in np.flatnonzero(job.well_formed()):
            A[job.a_bitmaps[s], s] = job.a_values[s, :job.a_counts[s]]
            B[s, job.b_bitmaps[s]] = job.b_values[s, :job.b_counts[s]]
        return gemm(A, B, self.a_fmt, self.b_fmt, self.acc_fmt)

    def peak_speedup(self) -> float:
        """Most a job can gain over a dense ``rows x cols`` engine: one k per cycle for the tile."""
        return self.m_tile * self.n_tile / (self.rows * self.cols)
