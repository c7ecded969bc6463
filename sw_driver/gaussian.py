"""Frames on a rasteriser SoC: the host projects and bins the Gaussians (the models' code), the
SoC rasterises every tile.

:func:`rasterise` packs each tile's beat and its Gaussians' records
(:mod:`accelsmith.models.gaussian.records`), groups tiles into runs that fit the SoC's buffers
(records in A, tile beats in B, pixels in C), and runs each through
:meth:`~accelsmith.sw_driver.accelerator.Accelerator.run_buffers`, the checked path every
workload takes (CRC-32 both ways, retries after link faults). The pixels come back as the
rasteriser computed them: Q.12 integers, bit-exact with
:func:`~accelsmith.models.gaussian.fixed.render_fixed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from accelsmith.models.gaussian.hardware import PIXELS, RasteriserTiming
from accelsmith.models.gaussian.records import (MAX_COUNT, NET_PARAM_BITS, PIXEL_FIELDS,
                                                TILE_FIELDS, WEIGHT_FIELDS, entry_words,
                                                feature_words, net_params, pack_words,
                                                record_words, unpack_words)
from accelsmith.models.gaussian.schedule import DEFAULT_ORDER, buffer_slots, tile_order
from accelsmith.models.gaussian.render import TILE

__all__ = ["FrameResult", "NetworkResult", "tiles_in", "rasterise", "network_weights"]


@dataclass
class FrameResult:
    """A frame (or the tiles of a region) and how the hardware got there."""

    image_q: np.ndarray         # (h, w, 3) Q.12 pixels of ``region``
    region: tuple[int, int, int, int]   # x, y, width, height in pixels
    tiles: int
    entries: int                # tile entries (Gaussian records sent)
    cycles: int                 # SoC sequencer cycles of all runs
    engine_cycles: int          # the rasteriser's CYCLES summed over the runs
    model_cycles: int           # RasteriserTiming.job_cycles summed over the runs (exact)
    bound_cycles: int           # the same with nothing skipped
    fetches: int                # records that crossed into the rasteriser (FETCHES, or entries)
    order: str                  # the tile order visited
    runs: int
    wall_seconds: float
    bytes_sent: int
    bytes_received: int
    retries: int = 0

    @property
    def pairs(self) -> int:
        """Pixel-Gaussian pairs of a full evaluation (256 per entry)."""
        return self.entries * PIXELS

    def summary(self) -> str:
        x, y, w, h = self.region
        return (f"{w}x{h} pixels at ({x}, {y}): {self.tiles} tiles in {self.order} order, "
                f"{self.entries:,} entries ({self.fetches:,} records fetched) in "
                f"{self.runs} runs; {self.engine_cycles:,} rasteriser cycles (cycle model "
                f"{self.model_cycles:,}; {self.cycles:,} with job overhead; "
                f"{self.bound_cycles:,} without pair skipping), "
                f"{self.wall_seconds:.1f} s wall, {self.bytes_sent + self.bytes_received:,} bytes "
                f"on the link" + (f", {self.retries} retries" if self.retries else ""))


@dataclass
class NetworkResult:
    """The sorter network's weights from the hardware's network mode."""

    w_q: np.ndarray             # (M,) Q.16
    engine_cycles: int
    model_cycles: int           # RasteriserTiming.network_cycles per run, plus START (exact)
    runs: int
    wall_seconds: float
    bytes_on_link: int

    def summary(self) -> str:
        return (f"{len(self.w_q):,} Gaussians through the network mode in {self.runs} runs: "
                f"{self.engine_cycles:,} cycles (cycle model {self.model_cycles:,}), "
                f"{self.wall_seconds:.1f} s wall, {self.bytes_on_link:,} bytes on the link")


def _mode(acc, network: bool) -> dict[str, int]:
    """The engine registers that select a job's mode (none on a core without the network)."""
    return {"engine_mode": int(network)} if "engine_mode" in acc.registers else {}


def network_weights(acc, q, features: np.ndarray,
                    progress: Callable[[int, int], None] | None = None) -> NetworkResult:
    """The weights of the quantised sorter network ``q`` (:class:`~accelsmith.models.gaussian.
    fixed.QuantMLP`) for the Gaussians' network inputs ``features`` (M, 5), Q.8, computed by
    the rasteriser's network mode: runs of as many Gaussians as the A and C buffers hold."""
    from .accelerator import DriverError

    start = time.monotonic()
    if "engine_mode" not in acc.registers:
        raise DriverError(f"{acc.manifest['top']} has no network mode (config key network: "
                          f"false); compute the weights on the host with mlp_fixed")
    params = net_params(q)
    words = -(-NET_PARAM_BITS // 32)
    setup = {"engine_mode": 1, **{f"engine_net_params_{i}": (params >> (32 * i)) & 0xFFFFFFFF
                                  for i in range(words)}}
    bufs = acc.buffers
    per_run = min(bufs["a"]["depth"], bufs["c"]["depth"])
    beats = feature_words(features, bufs["a"]["words_per_beat"])
    out = np.zeros(len(beats), np.int64)
    link0 = acc.bus.bytes_sent + acc.bus.bytes_received
    totals = {"engine": 0, "model": 0, "runs": 0}
    for lo in range(0, len(beats), per_run):
        n = min(per_run, len(beats) - lo)
        c_words, regs = acc.retrying(
            lambda: acc.run_buffers({"a": beats[lo:lo + n], "jobs": np.array([n], np.uint32)}, n,
                                    RasteriserTiming.network_cycles(n) + 16, setup),
            f"network run of Gaussians {lo}..{lo + n - 1}")
        out[lo:lo + n] = unpack_words(WEIGHT_FIELDS, c_words)["w"]
        totals["engine"] += regs["seq_engine_cycles"]
        totals["model"] += RasteriserTiming.network_cycles(n) + 1
        totals["runs"] += 1
        if progress:
            progress(lo + n, len(beats))
    return NetworkResult(out, totals["engine"], totals["model"], totals["runs"],
                         time.monotonic() - start,
                         acc.bus.bytes_sent + acc.bus.bytes_received - link0)


def tiles_in(bins, region: tuple[int, int, int, int] | None = None) -> list[int]:
    """Row-major indices of the tiles covering ``region`` (x, y, width, height in pixels; the
    whole image when None)."""
    cam = bins.proj.camera
    x, y, w, h = region or (0, 0, cam.width, cam.height)
    tx = range(x // TILE, -(-(x + w) // TILE))
    ty = range(y // TILE, -(-(y + h) // TILE))
    return [r * bins.proj.tiles_x + c for r in ty for c in tx]


def _tile_words(bins, tiles: list[int], counts: list[int], background_q, words_per_beat: int):
    nx = bins.proj.tiles_x
    columns = {"tx": [t % nx for t in tiles], "ty": [t // nx for t in tiles], "count": counts,
               "bg_r": [background_q[0]] * len(tiles), "bg_g": [background_q[1]] * len(tiles),
               "bg_b": [background_q[2]] * len(tiles)}
    return pack_words(TILE_FIELDS, columns, words_per_beat, "tile")


def _runs(counts: list[int], a_cap: int, b_cap: int, c_cap: int):
    """Consecutive tile positions grouped so each group's records, tile beats and pixels fit."""
    run, records = [], 0
    for n, count in enumerate(counts):
        if run and (records + count > a_cap or len(run) + 1 > b_cap
                    or (len(run) + 1) * PIXELS > c_cap):
            yield run
            run, records = [], 0
        run.append(n)
        records += count
    if run:
        yield run


def rasterise(acc, bins, fv, w_q: np.ndarray, background_q=(0, 0, 0),
              region: tuple[int, int, int, int] | None = None,
              progress: Callable[[int, int], None] | None = None) -> FrameResult:
    """Render the tiles of ``region`` (default: the frame) of a binned view on the rasteriser SoC
    behind ``acc``, visited in the config's tile order. ``fv``: the view's
    :class:`~accelsmith.models.gaussian.fixed.FixedView`; ``w_q`` (M,) Q.16 weights (the
    sorter's output); ``background_q`` Q.12 per channel. With a Gaussian buffer the driver keeps
    the slots (:func:`~accelsmith.models.gaussian.schedule.buffer_slots` over the whole visit)
    and sends a resident Gaussian's entry as its first word only. ``progress(tiles done,
    tiles)`` after every run."""
    from .accelerator import DriverError

    start = time.monotonic()
    cam = bins.proj.camera
    region = region or (0, 0, cam.width, cam.height)
    x, y, w, h = region
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > cam.width or y + h > cam.height:
        raise DriverError(f"region x={x}, y={y}, {w}x{h} is not inside the {cam.width}x"
                          f"{cam.height} image")
    geometry = acc.engine["geometry"]
    timing = RasteriserTiming(geometry["lanes"], geometry["subtile"])
    depth, order = geometry.get("buffer", 0), geometry.get("order", DEFAULT_ORDER)
    bufs = acc.buffers
    a_cap, b_cap, c_cap = bufs["a"]["depth"], bufs["b"]["depth"], bufs["c"]["depth"]
    wpb = bufs["a"]["words_per_beat"]
    nx = bins.proj.tiles_x
    inside = set(tiles_in(bins, region))
    tiles = [int(t) for t in tile_order(order, nx, bins.proj.tiles_y) if int(t) in inside]
    rows = [np.asarray(bins.tile(t), np.int64) for t in tiles]
    counts = [len(r) for r in rows]
    for t, count in zip(tiles, counts):
        if count > min(a_cap, MAX_COUNT):
            raise DriverError(f"tile ({t % nx}, {t // nx}) has {count} entries; the SoC's A buffer "
                              f"holds {a_cap} records (config key soc_a_beats; a tile holds at "
                              f"most {MAX_COUNT})")
    records = record_words(fv, np.asarray(w_q, np.int64), wpb, entries=bool(depth))
    slots = buffer_slots(bins, tiles, depth) if depth else None
    tile_words = _tile_words(bins, tiles, counts, background_q, bufs["b"]["words_per_beat"])
    pixels = np.zeros((len(tiles), PIXELS, 3), np.int64)
    sent0, received0, retries0 = acc.bus.bytes_sent, acc.bus.bytes_received, acc.link_retries
    entries = [timing.tile_entries(fv, r, t % nx, t // nx) for t, r in zip(tiles, rows)]
    totals = {"cycles": 0, "engine_cycles": 0, "model": 0, "bound": 0, "runs": 0, "fetches": 0}
    done = 0
    for run in _runs(counts, a_cap, b_cap, c_cap):
        picked = np.concatenate([rows[n] for n in run]) if sum(counts[n] for n in run) else \
            np.zeros(0, np.int64)
        a_words = records[picked]
        whole = None
        if slots is not None and len(picked):
            fetch = np.concatenate([slots[n][0] for n in run])
            a_words = entry_words(a_words, fetch, np.concatenate([slots[n][1] for n in run]))
            whole = {"a": fetch}
        words = {"a": a_words, "b": tile_words[run], "jobs": np.array([len(run)], np.uint32)}
        bound = timing.job_cycles([counts[n] for n in run])

        def attempt():
            out = acc.run_buffers(words, len(run) * PIXELS, bound + 16, _mode(acc, False), whole)
            return out, (acc.read("engine_fetches") if depth else len(picked))

        (c_words, regs), fetched = acc.retrying(
            attempt, f"run of tiles {tiles[run[0]]}..{tiles[run[-1]]}")
        channels = unpack_words(PIXEL_FIELDS, c_words)
        pixels[run] = np.stack([channels[c] for c in "rgb"], axis=-1).reshape(len(run), PIXELS, 3)
        totals["cycles"] += regs["seq_cycles"]
        totals["engine_cycles"] += regs["seq_engine_cycles"]
        totals["bound"] += bound
        totals["model"] += timing.job_cycles([entries[n] for n in run])
        totals["fetches"] += fetched
        totals["runs"] += 1
        done += len(run)
        if progress:
            progress(done, len(tiles))

    # Tiles back into the image (row-major), then the region cut out (edge tiles hold pixels
    # beyond it).
    tx0, ty0 = x // TILE, y // TILE
    span_x = -(-(x + w) // TILE) - tx0
    span_y = -(-(y + h) // TILE) - ty0
    position = {t: n for n, t in enumerate(tiles)}
    grid = np.stack([pixels[position[(ty0 + r) * nx + tx0 + c]] for r in range(span_y)
                     for c in range(span_x)])
    canvas = grid.reshape(span_y, span_x, TILE, TILE, 3).transpose(0, 2, 1, 3, 4)
    canvas = canvas.reshape(span_y * TILE, span_x * TILE, 3)
    image = canvas[y - ty0 * TILE:y - ty0 * TILE + h, x - tx0 * TILE:x - tx0 * TILE + w]
    return FrameResult(image, region, len(tiles), int(sum(counts)), totals["cycles"],
                       totals["engine_cycles"], totals["model"], totals["bound"],
                       totals["fetches"], order, totals["runs"], time.monotonic() - start,
                       acc.bus.bytes_sent - sent0, acc.bus.bytes_received - received0,
                       acc.link_retries - retries0)
