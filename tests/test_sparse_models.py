"""Sparse encoders (round trips, NVIDIA's 2:4 metadata convention, malformed input) and the
sparse engines' job encodings and cycle models."""

import itertools
import struct

import numpy as np
import pytest

from accelsmith.models.bitweight import gemm
from accelsmith.models.intformat import IntFormat
from accelsmith.models.packing import unpack
from accelsmith.models.sparse import (AXES, BitmapGeometry, BitmapVectors, NMGeometry, NMMatrix,
                                      SparseFormatError, TwoLevelBitmap, prune_nm)

S8, U4, S16 = IntFormat(8, True), IntFormat(4, False), IntFormat(16, True)
NM = [(1, 2), (2, 4), (1, 4), (3, 4), (4, 4), (1, 8), (2, 8), (4, 8), (8, 8), (3, 16), (16, 16)]


def sparse_matrix(rng, fmt, shape, density):
    X = rng.integers(fmt.min, fmt.max + 1, size=shape)
    return X * (rng.random(shape) < density)


@pytest.mark.parametrize("n,m", NM)
@pytest.mark.parametrize("fmt", [S8, U4, S16], ids=str)
def test_nm_round_trip(n, m, fmt):
    rng = np.random.default_rng(n * 100 + m)
    for trial in range(20):
        rows, k = int(rng.integers(1, 9)), int(rng.integers(1, 3 * m + 2))
        W = sparse_matrix(rng, fmt, (rows, k), rng.choice([0.0, 0.3, 1.0]))
        P = prune_nm(W, n, m)
        groups = -(-k // m)
        padded = np.zeros((rows, groups * m), dtype=np.int64)
        padded[:, :k] = P
        assert ((padded.reshape(rows, groups, m) != 0).sum(axis=2) <= n).all()
        comp = NMMatrix.compress(P, n, m, fmt)
        assert comp.values.shape == (rows, groups * n)
        np.testing.assert_array_equal(comp.decompress(), P)
        back = NMMatrix.from_bytes(comp.to_bytes())
        np.testing.assert_array_equal(back.decompress(), P)
        np.testing.assert_array_equal(back.indices, comp.indices)


def test_prune_keeps_largest_magnitudes():
    W = np.array([[1, -7, 3, 7, 0, 0, 0, 5]])
    np.testing.assert_array_equal(prune_nm(W, 2, 4), [[0, -7, 0, 7, 0, 0, 0, 5]])
    # Ties keep the lower index.
    np.testing.assert_array_equal(prune_nm(np.array([[2, -2, 2, 2]]), 2, 4), [[2, -2, 0, 0]])


def test_2to4_nibbles_follow_nvidia_convention():
    """Every 2:4 group encodes as one nibble, first index in bits 1:0: exactly the six valid
    nibbles 0x4, 0x8, 0x9, 0xC, 0xD, 0xE appear, one per pair of positions."""
    seen = {}
    for i, j in itertools.combinations(range(4), 2):
        W = np.zeros((1, 4), dtype=np.int64)
        W[0, [i, j]] = [5, -3]
        seen[(i, j)] = NMMatrix.compress(W, 2, 4, S8).metadata()[0] & 0xF
    assert seen == {(0, 1): 0x4, (0, 2): 0x8, (0, 3): 0xC, (1, 2): 0x9, (1, 3): 0xD, (2, 3): 0xE}
    # Two groups share a byte, the first in the low nibble.
    W = np.array([[0, 0, 1, 1, 1, 1, 0, 0]])
    assert NMMatrix.compress(W, 2, 4, S8).metadata() == bytes([0x4E])


@pytest.mark.parametrize("nibble", [0x0, 0x5, 0xA, 0xF, 0x1, 0x6])
def test_invalid_nibbles_rejected(nibble):
    raw = bytearray(NMMatrix.compress(np.array([[1, 2, 0, 0]]), 2, 4, S8).to_bytes())
    raw[-1] = nibble
    with pytest.raises(SparseFormatError, match="row 0, group 0: indices .* invalid"):
        NMMatrix.from_bytes(bytes(raw))


def test_invalid_groups_contribute_zero_when_not_strict():
    comp = NMMatrix.compress(np.array([[1, 2, 0, 0, 0, 3, 0, 4]]), 2, 4, S8)
    comp.indices[0, :2] = [1, 1]            # group 0 duplicated index
    assert comp.invalid_groups().tolist() == [[True, False]]
    np.testing.assert_array_equal(comp.decompress(strict=False), [[0, 0, 0, 0, 0, 3, 0, 4]])
    with pytest.raises(SparseFormatError):
        comp.decompress()


def test_nm_compress_rejects_unpruned_and_bad_parameters():
    with pytest.raises(SparseFormatError, match=r"row 1, group 0 .* 3 non-zeros; 2:4 allows at most 2"):
        NMMatrix.compress(np.array([[1, 0, 0, 0], [1, 1, 1, 0]]), 2, 4, S8)
    for n, m in [(2, 3), (0, 4), (5, 4), (1, 32)]:
        with pytest.raises(SparseFormatError, match="M must be 2, 4, 8 or 16"):
            prune_nm(np.zeros((1, 4)), n, m)
    with pytest.raises(SparseFormatError, match="outside s8"):
        NMMatrix.compress(np.array([[200, 0]]), 1, 2, S8)


def test_nm_bytes_malformed():
    good = NMMatrix.compress(np.array([[1, 0, 0, 2]]), 2, 4, S8).to_bytes()
    with pytest.raises(SparseFormatError, match="truncated: metadata"):
        NMMatrix.from_bytes(good[:-1])
    with pytest.raises(SparseFormatError, match="1 bytes after the end"):
        NMMatrix.from_bytes(good + b"\0")
    with pytest.raises(SparseFormatError, match="not ASNM data"):
        NMMatrix.from_bytes(b"XXXX" + good[4:])
    with pytest.raises(SparseFormatError, match="layout version 9"):
        NMMatrix.from_bytes(good[:4] + b"\x09" + good[5:])
    bad_m = good[:6] + b"\x03" + good[7:]
    with pytest.raises(SparseFormatError, match="M must be"):
        NMMatrix.from_bytes(bad_m)
    # A 4-bit unsigned value stored as 0x1F does not fit u4.
    u4 = NMMatrix.compress(np.array([[3, 0]]), 1, 2, U4).to_bytes()
    with pytest.raises(SparseFormatError, match="outside u4"):
        NMMatrix.from_bytes(u4[:-2] + b"\x1f" + u4[-1:])


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("density", [0.0, 0.01, 0.25, 0.5, 0.9, 1.0])
def test_bitmap_round_trip(axis, density):
    rng = np.random.default_rng(int(density * 100))
    for fmt in (S8, U4, S16):
        shape = tuple(int(x) for x in rng.integers(1, 20, 2))
        X = sparse_matrix(rng, fmt, shape, density)
        enc = BitmapVectors.encode(X, axis, fmt)
        assert enc.bitmaps.shape[0] == (shape[1] if axis == "columns" else shape[0])
        np.testing.assert_array_equal(BitmapVectors.from_bytes(enc.to_bytes()).decode(), X)
        for tile in [(1, 1), (4, 4), (3, 5), (32, 32)]:
            two = TwoLevelBitmap.encode(X, tile, axis, fmt)
            assert two.element_bitmaps.shape[0] == int(two.tile_bitmap.sum())
            np.testing.assert_array_equal(TwoLevelBitmap.from_bytes(two.to_bytes()).decode(), X)


def test_bitmap_order_is_column_major_for_a():
    X = np.array([[1, 2], [0, 4]])
    assert BitmapVectors.encode(X, "columns", S8).values.tolist() == [1, 2, 4]
    assert BitmapVectors.encode(X, "columns", S8).bitmaps.tolist() == [[True, False], [True, True]]
    assert BitmapVectors.encode(X, "rows", S8).values.tolist() == [1, 2, 4]
    X = np.array([[1, 2], [3, 4]])
    assert BitmapVectors.encode(X, "columns", S8).values.tolist() == [1, 3, 2, 4]
    assert BitmapVectors.encode(X, "rows", S8).values.tolist() == [1, 2, 3, 4]


def test_two_level_is_smaller_for_very_sparse():
    X = np.zeros((256, 256), dtype=np.int64)
    X[5, 7] = X[200, 100] = 1
    flat = len(BitmapVectors.encode(X, "columns", S8).to_bytes())
    two = len(TwoLevelBitmap.encode(X, (16, 16), "columns", S8).to_bytes())
    assert two < flat / 10


def test_bitmap_malformed():
    X = np.array([[1, 0, 2], [0, 0, 3]])
    good = BitmapVectors.encode(X, "rows", S8).to_bytes()
    count_at = len(good) - 3 - 4
    more = good[:count_at] + struct.pack("<I", 4) + good[count_at + 4:]
    with pytest.raises(SparseFormatError, match="value count 4 but the bitmaps have 3 set bits"):
        BitmapVectors.from_bytes(more)
    with pytest.raises(SparseFormatError, match="truncated: values"):
        BitmapVectors.from_bytes(good[:-1])
    with pytest.raises(SparseFormatError, match="axis code 7"):
        BitmapVectors.from_bytes(good[:7] + b"\x07" + good[8:])
    zero_value = good[:-1] + b"\x00"
    with pytest.raises(SparseFormatError, match="is 0 but its bitmap bit is set"):
        BitmapVectors.from_bytes(zero_value)
    enc = BitmapVectors.encode(X, "rows", S8)
    with pytest.raises(SparseFormatError, match="2 values but the bitmaps have 3"):
        BitmapVectors("rows", (2, 3), S8, enc.bitmaps, enc.values[:2]).decode()
    with pytest.raises(SparseFormatError, match="axis 'diagonal'"):
        BitmapVectors.encode(X, "diagonal", S8)
    two = TwoLevelBitmap.encode(X, (1, 2), "rows", S8)
    with pytest.raises(SparseFormatError, match="element bitmaps for"):
        TwoLevelBitmap("rows", (2, 3), (1, 2), S8, two.tile_bitmap, two.element_bitmaps[:1],
                       two.values).decode()
    with pytest.raises(SparseFormatError, match="expected a 2-D matrix"):
        BitmapVectors.encode(np.arange(3), "rows", S8)


# --- engine geometries: beats, expected tiles, cycle models ------------------------------------

ACC = IntFormat(24, True)


def test_nm_geometry_words_and_expected():
    g = NMGeometry("output_stationary", 2, 3, 8, 1, S8, S8, ACC, n=2, m=4)
    rng = np.random.default_rng(3)
    A = prune_nm(rng.integers(-128, 128, (2, 11)), 2, 4)
    B = rng.integers(-128, 128, (11, 3))
    comp = g.compress(A)
    a_words, b_words, steps = g.job_words(comp, B)
    assert steps == 2 and len(a_words) == 2 and len(b_words) == 2
    # Step 0: row 0's four kept values, then row 1's; then the eight 2-bit indices.
    first = unpack(a_words[0], S8, 8)
    assert first == comp.values[:, :4].reshape(-1).tolist()
    idx = unpack(a_words[0] >> (8 * 8), IntFormat(2, False), 8)
    assert idx == comp.indices[:, :4].reshape(-1).tolist()
    # The last step is padded with valid zero groups (indices 0, 1).
    assert unpack(a_words[1] >> 64, IntFormat(2, False), 8)[2:4] == [0, 1]
    np.testing.assert_array_equal(g.expected(comp, B), gemm(A, B, S8, S8, ACC))
    assert g.job_cycles_for(comp, B) == 2 + 1 + 2


def test_bitmap_geometry_skips_empty_k_and_counts_passes():
    g = BitmapGeometry("output_stationary", 4, 4, 1, 0, S8, S8, ACC, schedule="outer_product",
                       rows=2, cols=2)
    A = np.zeros((4, 5), dtype=np.int64)
    B = np.zeros((5, 4), dtype=np.int64)
    A[:, 0] = [1, 2, 3, 0]          # k=0: 3 A non-zeros (2 passes) x 1 B non-zero -> 2 cycles
    B[0, 2] = 5
    A[1, 1] = 7                     # k=1: B row empty -> not sent
    B[3, :] = [1, 1, 1, 1]          # k=3: A column empty -> not sent
    A[:, 4] = [1, 1, 1, 1]          # k=4: 2 x 2 passes -> 4 cycles
    B[4, :] = [2, -2, 2, -2]
    job = g.job(A, B)
    assert job.ks.tolist() == [0, 4]
    assert g.step_cycles(job).tolist() == [2, 4]
    assert g.job_cycles_for(job) == 2 + 6 + 4
    np.testing.assert_array_equal(g.expected(job), gemm(A, B, S8, S8, ACC))
    empty = g.job(np.zeros((4, 3), dtype=np.int64), np.ones((3, 4), dtype=np.int64))
    assert empty.steps == 0 and g.job_cycles_for(empty) == 4 + 1
    # A miscounted step adds nothing and costs one cycle.
    job.a_counts[1] = 3
    assert g.step_cycles(job).tolist() == [2, 1]
    keep = gemm(A[:, :1], B[:1], S8, S8, ACC)
    np.testing.assert_array_equal(g.expected(job), keep)


def test_bitmap_geometry_beat_layout():
    g = BitmapGeometry("output_stationary", 3, 2, 1, 0, S8, S8, ACC, schedule="outer_product",
                       rows=1, cols=1)
    job = g.job(np.array([[0], [-3], [4]]), np.array([[5, 0]]))
    a_words, b_words, steps = g.job_words(job)
    assert steps == 1
    word = a_words[0]
    assert word & 0b111 == 0b110                       # bitmap, row 0 in the LSB
    assert (word >> 3) & 0b11 == 2                     # count (2 bits for 0..3)
    assert unpack(word >> 5, S8, 3) == [-3, 4, 0]      # non-zeros first
    assert b_words[0] & 0b11 == 0b01 and (b_words[0] >> 2) & 0b11 == 1
