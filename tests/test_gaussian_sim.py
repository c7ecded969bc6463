"""The gaussian family's rasteriser against the fixed-point model, on both simulators."""

import json
from pathlib import Path

import numpy as np
import pytest

from accelsmith.config import load, validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate
from accelsmith.generators import write_design
from accelsmith.hdl.gaussian import TileRasteriser
from accelsmith.models.gaussian import fixed, records
from accelsmith.models.gaussian.hardware import RasteriserTiming, setup_latency
from accelsmith.registry import generator

from .conftest import CONFIGS

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_garden.npz"

REFERENCE = ("gaussian_16lanes_coverage", "gaussian_64lanes_authors")

# (config, simulator): vectors, heaviest garden tiles, scene tiles; the rest runs in `slow`.
# The rasteriser runs at about 500-1,700 cycles/s on Verilator under cocotb and 150-200 on
# Icarus, so the default runs are short: 8x8 skipping on Verilator on synthetic tiles (the
# 4x4 reference config, with four times the skip tests, builds and runs slower: `slow`), the
# unskipped form on Icarus without the scene's and the garden's tiles.
DEFAULT = {("skip8-16lanes-authors", "verilator"): (4, 0, False)}
FULL = (200, 2, True)


# Besides the reference configs (pair skipping on sub-tiles of the lanes' block size): without
# skipping (the set-up then spreads an entry's indices over its cycles), and 8x8 sub-tiles; both with
# a small Gaussian buffer (24 and 16 slots), so evictions happen within the corner tiles.
VARIANTS = {"noskip-16lanes": {"lanes": 16, "subtile": 0, "buffer": 24},
            "skip8-16lanes-authors": {"lanes": 16, "subtile": 8, "blend": "authors", "buffer": 16},
            "noskip-256lanes": {"lanes": 256, "subtile": 0}}
DEFAULT[("noskip-16lanes", "icarus")] = (2, 0, False)


def _config(name):
    if name in VARIANTS:
        return validate({"family": "gaussian", **VARIANTS[name]}, f"<{name}>")
    return load(CONFIGS / f"{name}.yaml")


@pytest.mark.parametrize("name,simulator", [
    pytest.param(n, sim, marks=() if (n, sim) in DEFAULT else pytest.mark.slow, id=f"{n}-{sim}")
    for n in (*REFERENCE, *VARIANTS) for sim in ("verilator", "icarus")])
def test_sim(name, simulator, tmp_path, monkeypatch):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    vectors, garden, scene = DEFAULT.get((name, simulator), FULL)
    if simulator == "icarus" and (name, simulator) not in DEFAULT:
        vectors, garden = 20, 1
    monkeypatch.setenv("ACCELSMITH_GARDEN_TILES", str(garden))
    monkeypatch.setenv("ACCELSMITH_SCENE_TILES", "1" if scene else "0")
    result = simulate(_config(name), simulator, seed=97, vectors=vectors, workdir=tmp_path,
                      quiet=True)
    assert result.passed, result.summary()


def _garden_entries():
    """Garden camera 0, binned and quantised: (bins, fv, [(tile, rows, tx, ty)] of non-empty tiles)."""
    from accelsmith.models.gaussian.pipeline import load_scene
    from accelsmith.models.gaussian.render import bin_tiles, project

    scene, cams = load_scene(GARDEN)
    bins = bin_tiles(project(scene, cams[0]))
    tiles = [(t, bins.tile(t), *divmod(t, bins.proj.tiles_x)[::-1]) for t in range(len(bins))]
    return bins, fixed.quantise_view(bins.proj), [x for x in tiles if len(x[1])]


@pytest.mark.skipif(not GARDEN.is_file(), reason=f"garden scene not found at {GARDEN}")
def test_skipping_never_drops_a_contributing_pair():
    """Every tile of the garden's camera 0: no (Gaussian, sub-tile) the test skips holds a pixel
    with v > 0, for 4x4 and 8x8 sub-tiles; with 4x4 (16 lanes' default) at most 40 % of the
    pairs are evaluated."""
    bins, fv, tiles = _garden_entries()
    kept = {4: 0, 8: 0}
    for t, rows, tx, ty in tiles:
        a, b, c, dy = fixed.axis_terms_fixed(fv, rows, tx, ty)
        power = fixed.sat(a[:, None, :] + c[:, :, None]
                          + fixed.rshift_round(b[:, None, :] * dy[:, :, None], 8), fixed.POWER_MIN, 0)
        v = fixed.visibility_fixed(fv.opacity[rows, None], power.reshape(len(rows), 256))
        for size in kept:
            n = 16 // size
            keep = fixed.subtile_keep_fixed(fv, rows, tx, ty, size)
            live = (v.reshape(len(rows), n, size, n, size) > 0).any(axis=(2, 4))
            assert not (live.reshape(len(rows), n * n) & ~keep).any(), (t, size)
            kept[size] += int(keep.sum()) * size * size
    assert kept[4] <= 0.40 * len(bins.entries) * 256, kept[4] / (len(bins.entries) * 256)
    assert kept[4] < kept[8] < len(bins.entries) * 256


def _check_differences(fv, rows, tx, ty):
    from accelsmith.models.gaussian.hardware import (axis_terms_by_differences, cross_terms,
                                                     subtile_bounds_by_selection)

    a, b, c, dy = fixed.axis_terms_fixed(fv, rows, tx, ty)
    terms = axis_terms_by_differences(fv, rows, tx, ty)
    for name, want in (("a", a), ("b", b), ("c", c)):
        assert (terms[name] == want).all(), (name, tx, ty)
    assert ((terms["m"] >= 0) & (terms["m"] < 16)).all()
    want = fixed.rshift_round(b[:, None, :] * dy[:, :, None], 8)
    assert (cross_terms(terms) == want).all(), (tx, ty)
    for size in (4, 8, 16):
        assert (subtile_bounds_by_selection(terms, size)
                == fixed.subtile_bounds_fixed(fv, rows, tx, ty, size)).all(), (size, tx, ty)


@pytest.mark.skipif(not GARDEN.is_file(), reason=f"garden scene not found at {GARDEN}")
def test_axis_terms_by_differences_are_exact_on_the_garden():
    """The set-up's product-free form of A_i, B_i, C_j and round(B_i dy_j / 2^8) equals the
    model's products on every entry of the garden's camera 0."""
    bins, fv, tiles = _garden_entries()
    checked = 0
    for t, rows, tx, ty in tiles:
        _check_differences(fv, rows, tx, ty)
        checked += len(rows)
    assert checked == len(bins.entries)


def test_axis_terms_by_differences_are_exact_at_the_field_ends():
    """... and on records drawn from the ends of every field: means that saturate some, all or
    none of the columns and rows, the largest conics of either sign, zero conics."""
    rng = np.random.default_rng(5)
    limit = fixed.DX_LIMIT
    for tx, ty in ((0, 0), (3, 7), (40, 26)):
        base = np.array([tx, ty]) * (16 << 8)
        near = np.concatenate([limit + np.arange(-300, 4400, 37), -limit + np.arange(-300, 4400, 37)])
        n = 2 * len(near) + 400
        mean = rng.integers(-(1 << 23), 1 << 23, (n, 2))
        mean[:len(near), 0], mean[len(near):2 * len(near), 1] = near, near
        mean[:2 * len(near)] += base
        mean[-50:] = base + rng.integers(-4096, 8192, (50, 2))
        ends = lambda lo, hi: np.where(rng.random(n) < 0.5, rng.choice([lo, hi, 0, lo + 1, hi - 1], n),  # noqa: E731
                                       rng.integers(lo, hi + 1, n))
        conic = np.stack([ends(0, (1 << 26) - 1), ends(-(1 << 26), (1 << 26) - 1),
                          ends(0, (1 << 26) - 1)], axis=1)
        fv = fixed.FixedView(fixed.sat(mean, -(1 << 23), (1 << 23) - 1), conic,
                             np.zeros(n, np.int64), np.zeros((n, 3), np.int64), np.zeros((n, 5), np.int64))
        _check_differences(fv, np.arange(n), tx, ty)


def test_visible_power_thresholds_are_the_visibility_test():
    """The sub-tile test's threshold ROM: for every opacity, v > 0 exactly from its threshold up
    (v is monotone in the power, so the two ends suffice), or never."""
    from accelsmith.models.gaussian.hardware import NEVER_VISIBLE, visible_power_thresholds

    thr = visible_power_thresholds()
    opacity = np.arange(fixed.ONE16)
    never = thr == NEVER_VISIBLE
    assert never.sum() == 258 and not (fixed.visibility_fixed(opacity[never], 0) > 0).any()
    o, t = opacity[~never], thr[~never]
    assert (fixed.visibility_fixed(o, t) > 0).all()
    assert not (fixed.visibility_fixed(o, np.maximum(t - 1, fixed.POWER_MIN)) > 0).any()
    for p in (fixed.POWER_MIN, -40000, -1234, 0):       # and at fixed powers, every opacity
        assert ((fixed.visibility_fixed(opacity, p) > 0) == (p >= thr)).all(), p


class _WrongBlend(TileRasteriser):
    """Blends by coverage while its manifest says ``authors``."""

    def __init__(self, lanes, blend):
        super().__init__(lanes, "coverage", network=True)


@pytest.mark.slow     # a Verilator build of its own (about a minute)
def test_testbench_catches_a_wrong_blend(tmp_path, monkeypatch):
    config = validate({"family": "gaussian", "lanes": 16, "blend": "authors", "subtile": 0},
                      "<authors>")
    design = generator("gaussian").build(config)
    design.component = _WrongBlend(16, "authors")
    monkeypatch.setenv("ACCELSMITH_GARDEN_TILES", "0")
    monkeypatch.setenv("ACCELSMITH_SCENE_TILES", "0")
    result = simulate(config, "verilator", seed=3, vectors=2, workdir=tmp_path, quiet=True,
                      design=design)
    assert not result.passed
    assert any("pixels differ" in f for f in result.failures), result.summary()


def test_manifest_states_streams_and_timing(tmp_path):
    design = generator("gaussian").build(_config("noskip-16lanes"))
    manifest = json.loads(write_design(design, tmp_path)[1].read_text())
    ports = {p["name"]: p["width"] for p in manifest["ports"]}
    # noskip-16lanes has a Gaussian buffer and the network: entry beats, feature and weight beats.
    for name, fields in (("tiles", records.TILE_FIELDS), ("records", records.ENTRY_FIELDS),
                         ("pixels", records.PIXEL_FIELDS), ("features", records.FEATURE_FIELDS),
                         ("weights", records.WEIGHT_FIELDS)):
        assert ports[f"{name}__payload"] == records.width(fields)
        assert manifest["streams"][name]["payload_bits"] == records.width(fields)
    assert (manifest["geometry"]["buffer"], manifest["geometry"]["order"]) == (24, "hilbert")
    assert ports["net_params"] == records.NET_PARAM_BITS
    assert manifest["geometry"]["cycles_per_entry"] == 16
    assert manifest["geometry"]["blend"] == "coverage"
    assert (manifest["geometry"]["subtile"], manifest["geometry"]["cycles_per_subtile"]) == (0, 16)
    skip = generator("gaussian").build(load(CONFIGS / "gaussian_16lanes_coverage.yaml")).manifest
    assert (skip["geometry"]["subtile"], skip["geometry"]["cycles_per_subtile"]) == (4, 1)
    timing = RasteriserTiming(64)
    assert timing.work_cycles(10) == 4 * 10
    # The tile beat and the record (or empty token) are taken, cross the set-up's stages, are
    # offered and taken by the lanes.
    stages = setup_latency(0)
    assert timing.run_cycles([0]) == 2 + stages + timing.flush + 256 + 16
    # Two banks: a tile's read-out overlaps the next tile's entries, so two tiles cost less
    # than twice one, and long tiles are bound by their entries, not their read-outs; the set-up
    # runs ahead, so the second long tile's beat and first record cost only its take cycle.
    one = timing.run_cycles([10])
    assert one == 2 + stages + 1 + 1 + 40 + timing.flush + 256 + 15
    assert timing.run_cycles([10, 10]) == one + 256 + 1     # the second read-out waits
    assert timing.run_cycles([100, 100]) == one - 40 + 400 + (1 + 400)


def test_record_packing_refuses_values_outside_their_fields():
    fv = fixed.FixedView(np.array([[1 << 23, 0]]), np.array([[1, 0, 1]]), np.array([100]),
                         np.zeros((1, 3), np.int64), np.zeros((1, 5), np.int64))
    with pytest.raises(records.RecordRangeError, match="'mean_x' has value 8388608"):
        records.record_beats(fv, [0], np.array([fixed.ONE16]))
    with pytest.raises(records.RecordRangeError, match="at most 65535"):
        records.tile_beat(0, 0, 70_000)
    word = records.pack_fields(records.RECORD_FIELDS, {f: -1 if s else (1 << b) - 1
                                                       for f, b, s in records.RECORD_FIELDS})
    assert word == (1 << records.width(records.RECORD_FIELDS)) - 1
    back = records.unpack_fields(records.RECORD_FIELDS, word)
    assert back["mean_x"] == -1 and back["weight"] == (1 << 17) - 1


def test_tile_sums_give_render_fixed():
    """The per-tile model the hardware is checked against is the frame model's own."""
    from accelsmith.models.gaussian.camera import Camera
    from accelsmith.models.gaussian.render import bin_tiles, project
    from accelsmith.models.gaussian.scene import synthetic_scene

    scene = synthetic_scene(200, seed=2)
    cam = Camera.look_at([0.3, -4.0, 0.8], [0, 0, 0], [0, 0, 1], 70, 70, 40, 28, 72, 40)
    bins = bin_tiles(project(scene, cam))
    fv = fixed.quantise_view(bins.proj)
    w_q = np.full(len(bins.proj), fixed.ONE16)
    img = fixed.render_fixed(bins, fv, w_q, "coverage", (10, 20, 30))
    for t in range(len(bins)):
        ty, tx = divmod(t, bins.proj.tiles_x)
        tile = fixed.blend_fixed(*fixed.tile_sums_fixed(fv, bins.tile(t), w_q, tx, ty), "coverage",
                                 np.array([10, 20, 30])).reshape(16, 16, 3)
        part = img[ty * 16:(ty + 1) * 16, tx * 16:(tx + 1) * 16]
        np.testing.assert_array_equal(tile[:part.shape[0], :part.shape[1]], part)
    assert img.shape == (40, 72, 3) and img.any()


def _subtile_unit_keeps(size, terms, opacity):
    """``SubtileTest(size)`` in Amaranth's simulator, one entry per cycle: its keep bits."""
    from amaranth.sim import Simulator

    from accelsmith.hdl.gaussian import SubtileTest

    dut = SubtileTest(size)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    n = len(opacity)
    got = []

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for e in range(n + dut.LATENCY):
            if e < n:
                for name in ("a", "b", "c", "r", "hi", "lo"):
                    for k in range(16):
                        ctx.set(getattr(dut, name)[k], int(terms[name][e, k]))
                ctx.set(dut.nx, int(terms["nx"][e, 0]))
                ctx.set(dut.ny, int(terms["ny"][e, 0]))
                ctx.set(dut.opacity, int(opacity[e]))
            await ctx.tick()
            if e >= dut.LATENCY - 1 and len(got) < n:
                got.append(ctx.get(dut.keep))

    sim.add_testbench(bench)
    sim.run()
    return np.array([[(k >> s) & 1 for s in range(dut.count)] for k in got], bool)


@pytest.mark.skipif(not GARDEN.is_file(), reason=f"garden scene not found at {GARDEN}")
@pytest.mark.parametrize("size", [4, 8])
def test_subtile_test_unit_is_the_model(size):
    """The hardware's sub-tile test (selections instead of maxima, two corners per sub-tile) keeps
    exactly the sub-tiles of ``subtile_keep_fixed``, on the heaviest garden tile's entries and on
    random opacities (most entries near the threshold)."""
    from accelsmith.models.gaussian.hardware import axis_terms_by_differences

    bins, fv, tiles = _garden_entries()
    t, rows, tx, ty = max(tiles, key=lambda x: len(x[1]))
    rows = rows[:300]
    rng = np.random.default_rng(size)
    fv.opacity[rows[::2]] = rng.integers(0, fixed.ONE16, len(rows[::2]))
    terms = axis_terms_by_differences(fv, rows, tx, ty)
    want = fixed.subtile_keep_fixed(fv, rows, tx, ty, size)
    assert 0 < want.sum() < want.size
    assert (_subtile_unit_keeps(size, terms, fv.opacity[rows]) == want).all()


@pytest.mark.parametrize("blend", ["coverage", "authors"])
def test_pixel_normaliser_unit_is_the_model(blend):
    """``PixelNormaliser`` (the divider with its remainder cut to the bits a 14-bit quotient
    needs, the blend) equals ``blend_fixed`` on sums at the ends of their ranges and at random,
    with backpressure."""
    from amaranth.sim import Simulator

    from accelsmith.hdl.gaussian import PixelNormaliser

    rng = np.random.default_rng(11)
    n = 400
    s_w = np.concatenate([[0, 1, 1, 2, (1 << 32) - 1, (1 << 32) - 1, (1 << 31) + 7],
                          rng.integers(1, 1 << 32, n // 2), rng.integers(1, 1 << 12, n // 2)])
    n = len(s_w)
    top = s_w * (fixed.ONE16 // 4 - 1)                        # mean colour at most 2^14 - 1
    s_cw = np.stack([np.where(rng.random(n) < 0.2, rng.choice([0, 1], n) * top,
                              (rng.random(n) * (top + 1)).astype(np.int64)) for _ in range(3)], 1)
    s_cw = np.minimum(s_cw, top[:, None])
    s_log = np.where(rng.random(n) < 0.2, rng.choice([0, (1 << 32) - 1, 1 << 16], n),
                     rng.integers(0, 1 << 18, n))
    bg = rng.integers(0, fixed.ONE16, 3)
    want = fixed.blend_fixed(s_w, s_cw, s_log, blend, bg)
    dut = PixelNormaliser(blend)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got = []

    async def bench(ctx):
        sent = 0
        for _ in range(4 * n + 100):
            offer = sent < n
            ctx.set(dut.sums.valid, int(offer))
            if offer:
                p = dut.sums.payload
                ctx.set(p.sums.s_w, int(s_w[sent]))
                ctx.set(p.sums.s_log, int(s_log[sent]))
                for c in range(3):
                    ctx.set(p.sums.s_cw[c], int(s_cw[sent, c]))
                    ctx.set(p.bg[c], int(bg[c]))
            ctx.set(dut.pixels.ready, int(rng.random() < 0.7))
            taken = offer and ctx.get(dut.sums.ready)
            if ctx.get(dut.pixels.valid) and ctx.get(dut.pixels.ready):
                px = dut.pixels.payload
                got.append([ctx.get(px.r), ctx.get(px.g), ctx.get(px.b)])
            await ctx.tick()
            sent += int(bool(taken))
            if len(got) == n:
                break

    sim.add_testbench(bench)
    sim.run()
    assert (np.array(got) == want).all()


def test_constant_compares_are_the_compares():
    """``_below`` / ``_above`` (bit tests for the clamps' power-of-two bounds) equal ``<`` / ``>``
    for every value of small signed and unsigned operands and every kind of bound."""
    from amaranth import Elaboratable, Module, Shape, Signal
    from amaranth.sim import Simulator

    from accelsmith.hdl.gaussian import _above, _below

    shapes = [Shape(6, True), Shape(6, False), Shape(9, True), Shape(1, True), Shape(2, False)]
    cases = [(_below, s, c) for s in shapes for c in (0, -1, -2, -4, -16, -32, -64, -3, 5)]
    cases += [(_above, s, c) for s in shapes for c in (0, 1, 3, 7, 15, 31, 63, 2, -1, 255)]

    class Compares(Elaboratable):
        def __init__(self):
            self.x = {s: Signal(s) for s in shapes}
            self.out = [(Signal(), Signal()) for _ in cases]

        def elaborate(self, platform):
            m = Module()
            for (f, s, c), (got, want) in zip(cases, self.out):
                x = self.x[s]
                m.d.comb += [got.eq(f(x, c)), want.eq(x < c if f is _below else x > c)]
            return m

    dut = Compares()
    bad = []

    async def bench(ctx):
        for v in range(-256, 512):
            for s, x in dut.x.items():
                lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else (0, (1 << s.width) - 1)
                ctx.set(x, min(max(v, lo), hi))
            bad.extend((case, v) for case, (got, want) in zip(cases, dut.out)
                       if ctx.get(got) != ctx.get(want))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
