"""Golden model: integer semantics, accumulator sizing, job layout and payload packing."""

import numpy as np
import pytest

from accelsmith.models.bitweight import EngineGeometry, gemm
from accelsmith.models.intformat import IntFormat, accumulator_format, product_range
from accelsmith.models.packing import pack, unpack

S8, U8, U4, S16 = IntFormat(8, True), IntFormat(8, False), IntFormat(4, False), IntFormat(16, True)


def test_ranges():
    assert (S8.min, S8.max, U4.min, U4.max) == (-128, 127, 0, 15)
    assert product_range(S8, S8) == (-16256, 16384)
    assert product_range(U4, S8) == (-1920, 1905)


@pytest.mark.parametrize("a,b,k", [(S8, S8, 256), (U4, S8, 1000), (U8, U8, 1), (S16, S16, 65536),
                                   (U4, U4, 3)])
def test_accumulator_format_is_minimal_and_sufficient(a, b, k):
    acc = accumulator_format(a, b, k)
    lo, hi = product_range(a, b)
    assert acc.min <= min(0, lo * k) and max(0, hi * k) <= acc.max
    narrower = IntFormat(acc.bits - 1, acc.signed)
    assert narrower.min > min(0, lo * k) or max(0, hi * k) > narrower.max


def test_accumulator_default_int8():
    assert accumulator_format(S8, S8, 256) == IntFormat(24, True)  # +256 * 16384 = +2**22 needs 24


def test_gemm_exact_and_wrapping():
    rng = np.random.default_rng(0)
    A = rng.integers(-128, 128, (5, 40))
    B = rng.integers(-128, 128, (40, 3))
    exact = A @ B
    assert np.array_equal(gemm(A, B, S8, S8, IntFormat(32, True)), exact)
    acc12 = IntFormat(12, True)
    wrapped = gemm(A, B, S8, S8, acc12)
    assert np.array_equal(wrapped, ((exact + 2048) % 4096) - 2048)
    assert wrapped.min() >= -2048 and wrapped.max() <= 2047
    unsigned = gemm(np.abs(A) % 16, np.abs(B), U4, U8, IntFormat(10, False))
    assert np.array_equal(unsigned, ((np.abs(A) % 16) @ np.abs(B)) % 1024)


def test_gemm_rejects_out_of_range_operands():
    with pytest.raises(ValueError, match="A has values outside s8"):
        gemm([[128]], [[1]], S8, S8, IntFormat(32, True))
    with pytest.raises(ValueError, match="do not chain"):
        gemm([[1, 2]], [[1]], S8, S8, IntFormat(32, True))


def test_wide_accumulator_uses_exact_integers():
    acc = IntFormat(64, True)
    A = np.full((1, 4), -32768)
    assert gemm(A, A.T, S16, S16, acc)[0, 0] == 4 * 2**30


@pytest.mark.parametrize("values,fmt", [([-128, 127, 0, -1], S8), ([0, 15, 7], U4)])
def test_pack_roundtrip(values, fmt):
    assert unpack(pack(values, fmt.bits), fmt, len(values)) == values


def _replay(g: EngineGeometry, a_beats, b_beats, steps):
    """Recompute C from the beats alone, as the engine would."""
    C = np.zeros((g.m_tile, g.n_tile), dtype=np.int64)
    ks = g.k_per_step
    for s in range(steps):
        if g.output_stationary:
            a_blk = np.array(a_beats[s]).reshape(g.m_tile, ks)
            b_blk = np.array(b_beats[s]).reshape(ks, g.n_tile)
        else:
            b_blk = np.array(b_beats[s * ks:(s + 1) * ks])
            a_blk = np.array(a_beats[s * g.m_tile:(s + 1) * g.m_tile])
        C += a_blk @ b_blk
    return C


@pytest.mark.parametrize("dataflow,m,n,ks", [("output_stationary", 4, 3, 1),
                                             ("output_stationary", 3, 3, 3),
                                             ("weight_stationary", 5, 4, 4)])
@pytest.mark.parametrize("k", [0, 1, 7, 12])
def test_job_beats_replay_to_gemm(dataflow, m, n, ks, k):
    g = EngineGeometry(dataflow, m, n, ks, 2, S8, S8, IntFormat(32, True))
    rng = np.random.default_rng(k)
    A = rng.integers(-128, 128, (m, k))
    B = rng.integers(-128, 128, (k, n))
    a_beats, b_beats, steps = g.job_beats(A, B)
    assert steps == -(-k // ks)
    assert all(len(b) == g.a_beat_len for b in a_beats) and all(len(b) == g.b_beat_len for b in b_beats)
    assert np.array_equal(_replay(g, a_beats, b_beats, steps), A @ B)


def test_geometry_manifest_roundtrip():
    g = EngineGeometry("weight_stationary", 4, 4, 4, 8, U4, S8, IntFormat(20, True))
    assert EngineGeometry.from_manifest({"geometry": g.to_manifest()}) == g
    assert g.job_cycles(2) == 2 * (4 + 4 + 8) + 4


# --- radix-4 digits and the digit-serial cycle model ---------------------------------------

from accelsmith.models.bitweight import step_cycles  # noqa: E402
from accelsmith.models.digits import digits, from_digits, nonzero_digits  # noqa: E402


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8, 11, 16])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("encoding", ["booth", "ent"])
def test_digits_exact_for_every_value(bits, signed, encoding):
    fmt = IntFormat(bits, signed)
    values = np.arange(fmt.min, fmt.max + 1)
    d = digits(values, fmt, encoding)
    assert (from_digits(d) == values).all()
    assert np.isin(d, [-2, -1, 0, 1, 2]).all()


def test_digit_examples():
    assert digits(-128, S8, "booth").tolist() == [0, 0, 0, -2]
    assert digits(127, S8, "ent").tolist() == [-1, 0, 0, 2]          # 127 = 2*64 - 1
    assert digits(255, U8, "ent").tolist() == [-1, 0, 0, 0, 1]      # needs the fifth digit
    assert nonzero_digits(np.array([0, 1, 3, -128]), S8, "ent").tolist() == [0, 1, 2, 1]
    with pytest.raises(ValueError, match="outside s8"):
        digits(200, S8, "booth")


def test_step_cycles_hand_computed():
    # EN-T digits: 3 -> [-1, 1], 2 -> [2], 0 -> [], -64 -> [0, 0, 0, -1]
    a = np.array([[3, 2, 0, -64], [0, 0, 0, 0]])
    b = np.ones((4, 3), dtype=np.int64)
    # bw0 non-zeros: row0 {3, 2} = 2; bw1: {3} = 1; bw2: 0 -> 1; bw3: {-64} = 1  => 2+1+1+1
    assert step_cycles(a, b, "opt3", S8, S8, "ent") == 5
    assert step_cycles(a, b, "opt4c", S8, S8, "ent") == 5
    assert step_cycles(a, b, "opt4e", S8, S8, "ent") == 2
    # An all-zero step still costs a cycle per issue slot: 4 bit weights (opt3/opt4c), 1 (opt4e).
    zeros = np.zeros((2, 4), dtype=np.int64)
    assert step_cycles(zeros, b, "opt3", S8, S8, "ent") == 4
    assert step_cycles(zeros, b, "opt4c", S8, S8, "booth") == 4
    assert step_cycles(zeros, b, "opt4e", S8, S8, "ent") == 1
    assert step_cycles(zeros, b, "opt4e", S8, S8, "booth") == 1
    # bitslice: P = most A terms (3 -> 2 terms), Q = most B terms (1 -> 1 term); zeros -> 1 cycle
    assert step_cycles(np.array([[3], [2]]), np.array([[1, 0]]), "bitslice", S8, S8, "ent") == 2
    assert step_cycles(np.array([[3], [2]]), np.array([[0, 0]]), "bitslice", S8, S8, "ent") == 1


def test_digit_serial_job_cycles():
    g = EngineGeometry("output_stationary", 2, 3, 4, 0, S8, S8, IntFormat(24, True), "opt4e", "ent")
    A = np.array([[3, 2, 0, -64, 1], [0, 0, 0, 0, 0]])
    B = np.ones((5, 3), dtype=np.int64)
    # steps: [3, 2, 0, -64] -> 2 cycles, [1, 0, 0, 0] (padded) -> 1 cycle; + 2 + m_tile
    assert g.job_cycles_for(A, B) == 2 + 3 + 2
    assert g.job_cycles_for(A[:, :0], B[:0]) == 2 + 1


def test_buffered_job_cycles():
    from accelsmith.models.bitweight import buffered_job_cycles
    # One tile: steps, the token step, the token's trip through the core, the readout.
    for steps, latency, m_tile in [(1, 1, 4), (5, 7, 3), (64, 1, 4)]:
        assert buffered_job_cycles(steps, 1, latency, m_tile) == steps + 1 + latency + m_tile
    # Long enough tiles follow each other without a gap; short ones wait for the readout.
    assert buffered_job_cycles(8, 100, 1, 4) == 100 * 8 + 1 + 1 + 4
    assert buffered_job_cycles(1, 100, 1, 4) > 100 * (1 + 4)
    # TILES = 0 counts as 1; K = 0 gives zero tiles through tokens alone.
    assert buffered_job_cycles(3, 0, 1, 4) == buffered_job_cycles(3, 1, 1, 4)
    assert buffered_job_cycles(0, 1, 1, 4) == 1 + 1 + 4


def test_buffered_job_cycles_refuses_impossible_geometry_instead_of_looping():
    from accelsmith.models.bitweight import buffered_job_cycles

    for args in [(3, 2, 1, 0), (3, 2, 0, 4), (-1, 1, 1, 4)]:
        with pytest.raises(ValueError, match="need steps, tiles >= 0"):
            buffered_job_cycles(*args)
