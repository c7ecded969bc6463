"""Generator of the ``gaussian`` family: 3D Gaussian Splatting tile rasterisers with
axis-oriented evaluation and order-independent ("neural sorting") blending.

The host projects and bins the Gaussians (:mod:`accelsmith.models.gaussian`); the rasteriser
takes, per 16x16 tile, a tile beat and the tile's Gaussian records in the integer formats of
:mod:`accelsmith.models.gaussian.fixed` (order irrelevant) and returns the tile's 256 pixels,
bit-exact with :func:`~accelsmith.models.gaussian.fixed.render_fixed`. See docs/gaussian.md.
"""

from __future__ import annotations

from dataclasses import replace

from accelsmith.config import Config, FamilySchema, Param
from accelsmith.hdl.gaussian import (PairEvaluator, PixelNormaliser, RasteriserEngine,
                                      SorterNetwork, TileRasteriser)
from accelsmith.models.gaussian import oit, records, schedule
from accelsmith.models.gaussian.hardware import RasteriserTiming
from . import SOC_PARAMS, Design, ports_of

BLENDS = {
    "coverage": "normalised colour times the coverage 1 - prod(1 - v), plus the background "
                "times prod(1 - v) (weighted-blended OIT)",
    "authors": "the seed paper's normalised blend sum(c v w) / sum(v w), no background",
}
assert set(BLENDS) == set(oit.BLENDS)

# The SoC's buffers hold a run of tiles: A their records, B their tile beats, C their pixels.
_SOC_DOCS = {
    "soc_a_beats": ("SoC: Gaussian records the A buffer holds (a run's tiles together; a tile "
                    "with more entries cannot run).", 4096),
    "soc_b_beats": ("SoC: tile beats the B buffer holds (tiles per run).", 64),
    "soc_c_rows": ("SoC: pixels the C buffer holds (256 per tile of a run).", 16384),
    "soc_jobs": ("SoC: rasteriser jobs per run (job buffer words; a job is TILES tiles).", 16),
}
_SOC_PARAMS = tuple(replace(p, doc=_SOC_DOCS[p.name][0], default=_SOC_DOCS[p.name][1])
                    if p.name in _SOC_DOCS else p for p in SOC_PARAMS)

SCHEMA = FamilySchema("gaussian", "3DGS tile rasterisers: order-independent blending of a 16x16 "
                      "tile's Gaussians, axis-oriented exponent evaluation.", (
    Param("lanes", int, "Pixel-Gaussian pairs evaluated per cycle: a square block of the 16x16 "
          "tile (16: 4x4, one entry in 16 cycles; 64: 8x8 in 4; 256: the whole tile in one).",
          default=16, choices=(16, 64, 256)),
    Param("blend", str, "Blend: " + "; ".join(f"`{k}` {v}" for k, v in BLENDS.items()) + ".",
          default="coverage", choices=tuple(BLENDS)),
    Param("subtile", int, "Pair skipping: per entry and subtile x subtile sub-tile, a "
          "conservative test in the set-up skips the sub-tile's pairs when none can contribute "
          "(the image bits do not change); 0 evaluates every pair. At least the lanes' block side.",
          default=None, choices=(0, 4, 8, 16),
          default_doc="the lanes' block side: 4 for 16 lanes, 8 for 64, 16 for 256"),
    Param("buffer", int, "On-chip Gaussian buffer: record slots between the record stream and "
          "the set-up (0: none). With one, a record beat is an entry beat (a header: fetch this "
          "record into a slot, or use the one resident there); the host keeps the slots' "
          "contents (least recently used replaced), so its fetches equal count_fetches for the "
          "tile order and this size.", default=0, minimum=0, maximum=records.MAX_BUFFER),
    Param("order", str, "Tile order the driver visits a frame in (it decides which Gaussians "
          "stay resident in the buffer): " + ", ".join(schedule.ORDERS) + ".",
          default=schedule.DEFAULT_ORDER, choices=schedule.ORDERS),
    Param("network", bool, "The sorter network's mode: the per-Gaussian MLP (5-8-4-1, int8 "
          "weights, bit-exact with mlp_fixed) runs on the first 16 lanes' multipliers, one "
          "Gaussian per cycle, selected by the `mode` input (MODE register of the SoC).",
          default=True),
    Param("name", str, "Verilog module name of the top level.", default=None,
          pattern=r"[A-Za-z_][A-Za-z0-9_]{0,62}", default_doc="derived from the parameters"),
    *_SOC_PARAMS,
), checks=(lambda v: _subtile_fits(v),))


def subtile_of(values: dict) -> int:
    """The config's sub-tile size (its default resolved)."""
    side = int(round(values["lanes"] ** 0.5))
    return values["subtile"] if values["subtile"] is not None else side


def _subtile_fits(values: dict) -> str | None:
    side = int(round(values["lanes"] ** 0.5))
    sub = values["subtile"]
    if sub and sub < side:
        return (f"key 'subtile' has value {sub}, below the {side}x{side} pixel block that "
                f"lanes = {values['lanes']} evaluates per cycle; give subtile {side} or more, "
                "or 0 (no skipping)")
    return None


def _stream(fields, direction, doc):
    return {"direction": direction, "payload_bits": records.width(fields), "doc": doc,
            "fields": [{"name": n, "bits": b, "signed": s} for n, b, s in fields]}


def build(config: Config) -> Design:
    """Elaborate the rasteriser a validated config describes."""
    c = config.values
    subtile = subtile_of(c)
    core = TileRasteriser(c["lanes"], c["blend"], subtile, c["network"], c["buffer"])
    timing = RasteriserTiming(c["lanes"], subtile)
    skip = f"_skip{subtile}" if subtile else ""
    # without the network the design differs, so does its name (and its synthesis folder)
    nonet = "" if c["network"] else "_nonet"
    top = c["name"] or f"gaussian_raster_{c['lanes']}lanes_{c['blend']}{skip}{nonet}"
    manifest = {
        "family": "gaussian",
        "top": top,
        "core": type(core).__name__,
        "core_doc": " ".join(type(core).__doc__.split()),
        "ports": ports_of(core),
        "streams": {
            "tiles": _stream(records.TILE_FIELDS, "in", "one beat per tile: its position, the "
                             "number of records that follow, the background (Q.12)"),
            "records": _stream(records.ENTRY_FIELDS if c["buffer"] else records.RECORD_FIELDS,
                               "in", "the tile's Gaussians in any order (formats of "
                               "accelsmith.models.gaussian.fixed)" + (
                                   "; entry beats: fetch into / use the buffer slot"
                                   if c["buffer"] else "")),
            "pixels": _stream(records.PIXEL_FIELDS, "out", "256 pixels per tile, raster order "
                              "within the tile, Q.12 per channel"),
            **({"features": _stream(records.FEATURE_FIELDS, "in", "network mode: a Gaussian's "
                                    "five inputs, Q.8 int16 (FixedView.features)"),
                "weights": _stream(records.WEIGHT_FIELDS, "out", "network mode: its weight, "
                                   "Q.16, in the order of the features")} if c["network"] else {}),
        },
        "geometry": {"lanes": c["lanes"], "block": int(round(c["lanes"] ** 0.5)),
                     "cycles_per_entry": timing.cycles_per_entry, "blend": c["blend"],
                     "subtile": subtile, "cycles_per_subtile": timing.cycles_per_subtile,
                     "tile": 16, "network": c["network"], "buffer": c["buffer"],
                     "order": c["order"]},
        "performance": {
            "pairs_per_cycle": c["lanes"],
            "pair_latency": PairEvaluator.LATENCY,
            "normaliser_latency": PixelNormaliser.LATENCY,
            "tile_cycles": (f"sum over entries of max(1, {timing.cycles_per_subtile} * kept "
                            "sub-tiles)" if subtile else f"{timing.cycles_per_entry} * entries")
                           + " + 1 (take); the 256-cycle read-out of a tile (after an "
                           f"{timing.flush}-cycle lane flush) overlaps the next tile's entries "
                           "(two banks of sums); exact: "
                           "accelsmith.models.gaussian.hardware.RasteriserTiming.run_cycles",
            "throughput": "one entry per cycles_per_entry cycles; one pixel per cycle out",
            **({"network": f"network mode (mode = 1, changed only while idle): one Gaussian per "
                           f"cycle, its weight {SorterNetwork.LATENCY} cycles after its features; "
                           f"net_params = records.net_params(quantised network)"}
               if c["network"] else {}),
        },
        "errors": "none: every field value is a valid input, with the model's meaning (offsets "
                  "beyond 4096 pixels saturate, weights above 1.0 count as 1.0); a tile holds at "
                  "most 65,535 records, so no per-pixel sum can overflow",
        "config": config.as_dict(),
    }
    manifest["soc_engine"] = {
        "core": RasteriserEngine.__name__, "doc": " ".join(RasteriserEngine.__doc__.split()),
        "streams": {"a": "records", "b": "tiles", "c": "pixels"},
        "job_register": RasteriserEngine.JOB_REGISTER}
    return Design(top, core, manifest,
                  soc_engine=lambda: RasteriserEngine(core))
