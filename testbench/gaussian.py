"""cocotb testbench of the ``gaussian`` family's tile rasteriser against
:mod:`accelsmith.models.gaussian.fixed`, bit for bit.

Tiles, each checked on all 256 pixels: a single Gaussian, an empty tile, tiles of a projected
synthetic scene (the image-edge tiles included, whose out-of-image pixels the hardware evaluates
too), the heaviest tiles of the garden scene (when ``../shared/data/test_garden.npz`` is there),
records at the extremes of every field (saturating dx, the largest conics, opacity, colours and
weights, zero conics), a tile sent twice with its records shuffled, and random tiles. First
without stalls, where the ``cycles`` counter must equal
:meth:`~accelsmith.models.gaussian.hardware.RasteriserTiming.run_cycles` exactly, then with
random valid/ready stalls on all three streams. Rasterisers with the sorter network run it
first (the trained sorters and random networks against ``mlp_fixed``, stall-free with exact
cycle counts) and again after the tiles, with stalls. With a Gaussian buffer the records go as
entry beats of a host-side LRU over the whole run (reuse beats with random record bits), and the
fetch counter must match. ``ACCELSMITH_GARDEN_TILES`` (default 2) and
``ACCELSMITH_SCENE_TILES`` (``0`` leaves the scene's tiles out) trim the corner set.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from accelsmith.models.gaussian import fixed, records
from accelsmith.models.gaussian.hardware import RasteriserTiming

from .streams import CycleLoop, MismatchError, StreamSink, StreamSource
from .tiles import Progress

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_garden.npz"


@dataclass
class TileCase:
    name: str
    tile_word: int
    record_words: list[int]
    expected: np.ndarray        # (256, 3) pixels, Q.12
    kept: list                  # per entry: sub-tiles the skipping test keeps (the cycle model)

    @property
    def count(self) -> int:
        return len(self.record_words)


SUBTILE = 0    # the engine's sub-tile size (set from the manifest before cases are made)


def make_case(name, fv, rows, w_q, tx, ty, blend, bg=(0, 0, 0)) -> TileCase:
    sums = fixed.tile_sums_fixed(fv, rows, w_q, tx, ty)
    expected = fixed.blend_fixed(*sums, blend, np.asarray(bg))
    if SUBTILE and len(rows):
        kept = fixed.subtile_keep_fixed(fv, rows, tx, ty, SUBTILE).sum(axis=1).tolist()
    else:
        kept = [(16 // (SUBTILE or 16)) ** 2] * len(rows)
    return TileCase(name, records.tile_beat(tx, ty, len(rows), bg),
                    records.record_beats(fv, rows, w_q), expected, kept)


def random_view(n: int, rng, tx: int, ty: int, extreme: bool = False):
    """``n`` Gaussians around tile (tx, ty) as a FixedView, and their weights: covariances from
    random scales and angles, the model's dilation, quantised like :func:`fixed.quantise_view`.
    ``extreme``: every field drawn from its ends and from its whole range instead."""
    if extreme:
        def pick(bits, signed, size):
            lo, hi = records.field_range(bits, signed)
            ends = np.array([lo, hi, 0, lo + 1, hi - 1])
            return np.where(rng.random(size) < 0.5, rng.choice(ends, size),
                            rng.integers(lo, hi + 1, size))
        mean = np.stack([pick(24, True, n), pick(24, True, n)], axis=1)
        near = rng.random(n) < 0.5            # half of them near the tile, with extreme shapes
        mean[near] = (np.array([tx, ty]) * 16 + rng.integers(-8, 24, (near.sum(), 2))) << 8
        conic = np.stack([pick(26, False, n), pick(27, True, n), pick(26, False, n)], axis=1)
        conic[rng.random(n) < 0.1] = 0
        fv = fixed.FixedView(mean, conic, pick(16, False, n),
                             np.stack([pick(14, False, n) for _ in range(3)], axis=1),
                             np.zeros((n, 5), np.int64))
        return fv, rng.choice([0, 1, fixed.ONE16, fixed.ONE16 - 1, 12345, (1 << 17) - 1], n)
    centre = (np.array([tx, ty]) * 16 + 8)[None, :]
    mean = centre + rng.normal(0, 10, (n, 2))
    s = np.exp(rng.uniform(np.log(0.3), np.log(12), (n, 2)))
    ang = rng.uniform(0, np.pi, n)
    cos, sin = np.cos(ang), np.sin(ang)
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0] = (cos * s[:, 0]) ** 2 + (sin * s[:, 1]) ** 2 + 0.3
    cov[:, 1, 1] = (sin * s[:, 0]) ** 2 + (cos * s[:, 1]) ** 2 + 0.3
    cov[:, 0, 1] = cov[:, 1, 0] = cos * sin * (s[:, 0] ** 2 - s[:, 1] ** 2)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    conic = np.stack([cov[:, 1, 1], -cov[:, 0, 1], cov[:, 0, 0]], axis=1) / det[:, None]
    q = lambda x, f: np.round(x * (1 << f)).astype(np.int64)  # noqa: E731
    fv = fixed.FixedView(fixed.sat(q(mean, fixed.MEAN_FRAC), -(1 << 23), (1 << 23) - 1),
                         q(conic, fixed.CONIC_FRAC),
                         rng.integers(0, fixed.ONE16, n),
                         rng.integers(0, 4 << fixed.COLOUR_FRAC, (n, 3)), np.zeros((n, 5), np.int64))
    return fv, rng.integers(0, fixed.ONE16 + 1, n)


def _random_bg(rng):
    return tuple(int(x) for x in rng.integers(0, fixed.ONE16, 3))


def scene_cases(blend, rng) -> list[TileCase]:
    """Every tile of a projected synthetic scene at 88x60 pixels (edge tiles on both sides)."""
    from accelsmith.models.gaussian.camera import Camera
    from accelsmith.models.gaussian.render import bin_tiles, project
    from accelsmith.models.gaussian.scene import synthetic_scene

    scene = synthetic_scene(300, seed=5, sh_degree=1)
    cam = Camera.look_at([0.3, -4.0, 0.8], [0, 0, 0], [0, 0, 1], 75, 75, 44, 30, 88, 60)
    bins = bin_tiles(project(scene, cam))
    fv = fixed.quantise_view(bins.proj)
    w_q = rng.integers(0, fixed.ONE16 + 1, len(bins.proj))
    out = []
    for t in range(len(bins)):
        ty, tx = divmod(t, bins.proj.tiles_x)
        out.append(make_case(f"scene tile ({tx}, {ty})", fv, bins.tile(t), w_q, tx, ty, blend,
                             _random_bg(rng)))
    return out


def garden_cases(blend, heaviest: int) -> list[TileCase]:
    """The ``heaviest`` tiles (most entries) of the garden's camera 0, weights 1."""
    if heaviest <= 0 or not GARDEN.is_file():
        return []
    from accelsmith.models.gaussian.pipeline import load_scene
    from accelsmith.models.gaussian.render import bin_tiles, project

    scene, cams = load_scene(GARDEN)
    bins = bin_tiles(project(scene, cams[0]))
    fv = fixed.quantise_view(bins.proj)
    w_q = np.full(len(bins.proj), fixed.ONE16)
    order = np.argsort(np.diff(bins.offsets))[::-1][:heaviest]
    cases = []
    for t in order.tolist():
        ty, tx = divmod(t, bins.proj.tiles_x)
        cases.append(make_case(f"garden tile ({tx}, {ty}), {len(bins.tile(t))} entries", fv,
                               bins.tile(t), w_q, tx, ty, blend))
    return cases


def corner_cases(blend, rng, garden: int, scene: bool = True) -> list[TileCase]:
    cases = []
    fv, w = random_view(1, rng, 3, 2)
    fv.mean[0] = (np.array([3, 2]) * 16 + 8) << 8
    cases.append(make_case("single Gaussian", fv, [0], np.array([fixed.ONE16]), 3, 2, blend))
    cases.append(make_case("empty tile", fv, [], w, 5, 1, blend, (100, 2000, 65535)))
    for k in range(4):
        fv, w = random_view(24, rng, 7, 9, extreme=True)
        cases.append(make_case(f"extreme fields #{k}", fv, np.arange(24), w, 7, 9, blend,
                               _random_bg(rng)))
    fv, w = random_view(40, rng, 2047, 2047)
    cases.append(make_case("largest tile index", fv, np.arange(40), w, 2047, 2047, blend))
    fv, w = random_view(30, rng, 4, 4)
    rows = np.arange(30)
    cases.append(make_case("tile in order", fv, rows, w, 4, 4, blend))
    cases.append(make_case("same tile shuffled", fv, rng.permutation(rows), w, 4, 4, blend))
    if scene:
        cases += scene_cases(blend, rng)
    cases += garden_cases(blend, garden)
    return cases


def random_case(blend, index: int, rng) -> TileCase:
    tx, ty = (int(x) for x in rng.integers(0, 64, 2))
    n = int(rng.choice([0, 1, 2, 3, int(rng.integers(4, 48))]))
    fv, w = random_view(max(n, 1), rng, tx, ty, extreme=rng.random() < 0.15)
    return make_case(f"random #{index}", fv, np.arange(n), w, tx, ty, blend, _random_bg(rng))


SORTERS = Path(__file__).resolve().parents[1] / "docs" / "results"


class BufferHost:
    """The host's half of the Gaussian buffer: entry beats from record beats, least recently
    used replaced (as ``schedule.buffer_slots``), keyed by the record's bits; a reuse beat's
    record bits are random (the hardware must ignore them)."""

    def __init__(self, depth: int, rng):
        from collections import OrderedDict

        self.depth, self.rng = depth, rng
        self.cache = OrderedDict()
        self.fetches = 0

    def entry(self, record: int) -> int:
        if record in self.cache:
            self.cache.move_to_end(record)
            junk = int(self.rng.integers(0, 1 << 62)) << 16
            return junk | (self.cache[record] << 1)
        self.fetches += 1
        slot = len(self.cache) if len(self.cache) < self.depth else self.cache.popitem(last=False)[1]
        self.cache[record] = slot
        return (record << 16) | (slot << 1) | 1


def network_cases(rng, n: int) -> list[tuple[str, fixed.QuantMLP, np.ndarray]]:
    """Networks with ``n`` feature vectors each: the trained sorters (when the results folder
    is there) and random networks with scales at both ends of the hardware's range; features
    random, a fifth of them at the int16 extremes."""
    from accelsmith.models.gaussian.sorter import SorterMLP

    nets = []
    for path in sorted(SORTERS.glob("gaussian_sorter_*_mlp.npz")):
        nets.append((path.stem, fixed.quantise_mlp(SorterMLP.load(path))))
    sizes = records.NET_SIZES
    for k, fracs in enumerate(([0, 0, 0], [records.NET_FRAC_MAX] * 3,
                               rng.integers(2, 12, 3).tolist())):
        w = [rng.integers(-128, 128, (i, o)) for i, o in zip(sizes, sizes[1:])]
        b = [rng.integers(-(1 << 24), 1 << 24, o) for o in sizes[1:]]
        nets.append((f"random network #{k} (scales {fracs})",
                     fixed.QuantMLP(w, list(fracs), b, 0.125, records.NET_WEIGHT_BITS)))
    out = []
    for name, q in nets:
        x = rng.integers(-(1 << 15), 1 << 15, (n, sizes[0]))
        extreme = rng.random(x.shape) < 0.2
        x[extreme] = rng.choice([-(1 << 15), (1 << 15) - 1, 0, 1, -1], extreme.sum())
        if name.startswith("gaussian_sorter"):     # realistic inputs too: depth, direction, opacity
            x[: n // 2] = rng.integers(-512, 512, (n // 2, sizes[0]))
        out.append((name, q, x))
    return out


async def run_network(dut, cases, feats, weights, exact: bool, log):
    """Each network's features through the network mode; weights compared with mlp_fixed and,
    without stalls, the busy cycles with the cycle model."""
    for name, q, x in cases:
        dut.net_params.value = records.net_params(q)
        start = int(dut.cycles.value)
        for row in x:
            feats.push(records.pack_fields(records.FEATURE_FIELDS,
                                           {f"x{i}": v for i, v in enumerate(row)}))
        budget = 40 * len(x) + 1000
        while len(weights.received) < len(x):
            await RisingEdge(dut.clk)
            budget -= 1
            if budget < 0:
                raise MismatchError(f"{name}: timed out with {len(weights.received)} of {len(x)} "
                                    f"weights received")
        got = np.array([weights.received.popleft() for _ in range(len(x))])
        want = fixed.mlp_fixed(q, x)
        bad = np.nonzero(got != want)[0]
        if len(bad):
            i = int(bad[0])
            raise MismatchError(f"{name}: {len(bad)} of {len(x)} weights differ; first for "
                                f"features {x[i].tolist()}: got {got[i]}, mlp_fixed {want[i]}")
        for _ in range(4):
            await RisingEdge(dut.clk)
        used = int(dut.cycles.value) - start
        if exact and used != RasteriserTiming.network_cycles(len(x)):
            raise MismatchError(f"{name}: {len(x)} Gaussians without stalls took {used} busy "
                                f"cycles; the cycle model says "
                                f"{RasteriserTiming.network_cycles(len(x))}")
    log.info("network mode: %d networks x %d Gaussians bit-exact with mlp_fixed%s", len(cases),
             len(cases[0][2]), " (exact cycle counts)" if exact else " (random stalls)")


async def run_cases(dut, cases, tiles, recs, sink, timing, exact, log, progress, loop,
                    buffer: BufferHost | None = None):
    start = int(dut.cycles.value)
    for case in cases:
        tiles.push(case.tile_word)
        for word in case.record_words:
            recs.push(buffer.entry(word) if buffer else word)
    budget = sum(timing.work_cycles(c.count) + 300 for c in cases) * 40 + 10_000   # unskipped
    for number, case in enumerate(cases):
        while len(sink.received) < records.PIXELS_PER_TILE:
            await RisingEdge(dut.clk)
            budget -= 1
            if budget < 0:
                raise MismatchError(f"{case.name}: timed out with {len(sink.received)} of 256 "
                                    f"pixels received")
        got = np.array([records.unpack_pixel(sink.received.popleft())
                        for _ in range(records.PIXELS_PER_TILE)])
        bad = np.nonzero((got != case.expected).any(axis=1))[0]
        if len(bad):
            p = int(bad[0])
            raise MismatchError(f"{case.name}: {len(bad)} of 256 pixels differ; first at row "
                                f"{p // 16}, column {p % 16}: got {tuple(got[p])}, expected "
                                f"{tuple(case.expected[p])}")
        progress.job_done(loop.cycle)
    for _ in range(4):
        await RisingEdge(dut.clk)
    if tiles.queue or recs.queue or sink.received:
        raise MismatchError(f"beats left over: {len(tiles.queue)} tile, {len(recs.queue)} record "
                            f"beats unconsumed, {len(sink.received)} pixels unexpected")
    if buffer and int(dut.fetches.value) != buffer.fetches:
        raise MismatchError(f"the Gaussian buffer counted {int(dut.fetches.value)} fetches; the "
                            f"host sent {buffer.fetches}")
    used = int(dut.cycles.value) - start
    want = timing.run_cycles([c.kept for c in cases])
    if exact and used != want:
        raise MismatchError(f"{len(cases)} tiles without stalls took {used} busy cycles; the "
                            f"cycle model says {want}")
    if used < want:
        raise MismatchError(f"{len(cases)} tiles took {used} busy cycles, fewer than the "
                            f"stall-free model's {want}")
    kept = sum(sum(c.kept) for c in cases)
    full = sum(c.count for c in cases) * (16 // (SUBTILE or 16)) ** 2
    log.info("%d tiles: %d busy cycles (model %d without stalls); %d of %d sub-tile "
                  "evaluations kept", len(cases), used, want, kept, full)


@cocotb.test()
async def rasteriser(dut):
    with open(os.environ["ACCELSMITH_MANIFEST"]) as fh:
        manifest = json.load(fh)
    geometry = manifest["geometry"]
    blend = geometry["blend"]
    global SUBTILE
    SUBTILE = geometry["subtile"]
    timing = RasteriserTiming(geometry["lanes"], SUBTILE)
    vectors = int(os.environ.get("ACCELSMITH_VECTORS", "200"))
    seed = int(os.environ.get("ACCELSMITH_SEED", cocotb.RANDOM_SEED))
    # Fewer corner tiles for slow simulators: the garden's heaviest tiles, the scene's tiles.
    garden = int(os.environ.get("ACCELSMITH_GARDEN_TILES", "2"))
    scene = os.environ.get("ACCELSMITH_SCENE_TILES", "1") != "0"
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    tiles = StreamSource(dut, "tiles", prng)
    recs = StreamSource(dut, "records", prng)
    sink = StreamSink(dut, "pixels", prng)
    endpoints = [tiles, recs, sink]
    network = geometry.get("network", False)
    if network:
        dut.mode.value = 1
        dut.net_params.value = 0
        feats, weights = StreamSource(dut, "features", prng), StreamSink(dut, "weights", prng)
        endpoints += [feats, weights]
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    loop = CycleLoop(dut.clk, endpoints)
    loop.start()
    await RisingEdge(dut.clk)

    if network:
        # The network mode first (stall-free, exact cycles), then the tiles in rasteriser mode,
        # then the network again with random stalls: both switches of the mode.
        nets = network_cases(rng, max(16, vectors // 4))
        await run_network(dut, nets, feats, weights, True, dut._log)
        dut.mode.value = 0

    buffer = BufferHost(geometry["buffer"], rng) if geometry.get("buffer") else None
    corners = corner_cases(blend, rng, garden, scene)
    n_quiet = min(vectors, max(8, vectors // 4))
    quiet = corners + [random_case(blend, i, rng) for i in range(n_quiet)]
    progress = Progress(os.environ.get("ACCELSMITH_PROGRESS"), len(corners) + vectors)
    await run_cases(dut, quiet, tiles, recs, sink, timing, True, dut._log, progress, loop, buffer)
    dut._log.info("%d tiles without stalls passed with exact cycle counts", len(quiet))
    done = 0
    while done < vectors - n_quiet:
        batch = min(100, vectors - n_quiet - done)
        for endpoint in (tiles, recs, sink):
            endpoint.stall = prng.choice([0.1, 0.3, 0.6, 0.9])
        cases = [random_case(blend, n_quiet + done + i, rng) for i in range(batch)]
        await run_cases(dut, cases, tiles, recs, sink, timing, False, dut._log, progress, loop,
                        buffer)
        done += batch
    if network:
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.mode.value = 1
        for endpoint in (feats, weights):
            endpoint.stall = prng.choice([0.1, 0.3, 0.6, 0.9])
        await run_network(dut, network_cases(rng, max(16, vectors // 4)), feats, weights, False,
                          dut._log)
    dut._log.info("PASS: %d corner tiles, %d random tiles (%d with random stalls), seed %d%s%s",
                  len(corners), n_quiet + done, done, seed,
                  "; network mode before and after" if network else "",
                  f"; Gaussian buffer of {buffer.depth}: {buffer.fetches} fetches" if buffer else "")
