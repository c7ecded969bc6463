"""Generator of the ``sparse`` family: tensor engines that turn zeros into saved cycles.

``format: nm``: N:M structured-sparse A (weights, compressed along K as in NVIDIA's sparse
tensor cores) times dense B on a 2D-Matrix of PEs; each kept value's index selects its B row,
so a step covers ``m / n`` times the K of a dense engine with the same multipliers.

``format: bitmap``: the Dual-side Sparse Tensor Core's outer-product scheme: both operands as
bitmaps plus non-zeros, a ``rows x cols`` multiplier grid, an ``m_tile x n_tile`` accumulation
buffer, cycles spent only on non-zero pairs.

See REFERENCE.md section 2 and :mod:`accelsmith.models.sparse` for the operand layouts.
"""

from __future__ import annotations

from accelsmith.config import Config, FamilySchema, Param
from accelsmith.hdl.multiplier import shape_of
from accelsmith.hdl.sparse_cores import NMSparseMatrix, OuterProductArray
from accelsmith.hdl.tensor_engine import BufferedOutputStationaryEngine, VariableStepEngine
from accelsmith.models.sparse import BitmapGeometry, NMGeometry
from . import (NUMBER_CHECKS, NUMBER_PARAMS, SOC_PARAMS, Design, integration, number_formats, ports_of,
                semantics)

FORMATS = {
    "nm": "N:M structured-sparse A (compressed values + log2(m)-bit indices) times dense B",
    "bitmap": "dual-side sparse: A and B as bitmaps + non-zeros, outer products on a multiplier "
              "grid placed by the bitmaps",
}
_NM = ("format", ("nm",))
_BITMAP = ("format", ("bitmap",))


def _n_not_above_m(values: dict) -> str | None:
    if values.get("format") == "nm" and values["n"] > values["m"]:
        return (f"key 'n' has value {values['n']}, above m = {values['m']}; N:M keeps at most n "
                f"of every m values, so n must be from 1 to m (n = m is the dense mode).")
    return None


def _tile_covers_grid(values: dict) -> str | None:
    for tile, grid in (("m_tile", "rows"), ("n_tile", "cols")):
        if values.get("format") == "bitmap" and values[tile] < values[grid]:
            return (f"key '{tile}' has value {values[tile]}, below {grid} = {values[grid]}; the "
                    f"output tile must be at least as large as the multiplier grid.")
    return None


SCHEMA = FamilySchema("sparse", "Sparse tensor engines computing C = A @ B tile by tile.", (
    Param("format", str, "Sparse operand format: " + "; ".join(f"`{k}` {v}" for k, v in FORMATS.items())
          + ".", choices=tuple(FORMATS)),
    Param("n", int, "Kept values per group of m along K (n = m: dense mode).", default=2, minimum=1,
          maximum=16, only_for=_NM),
    Param("m", int, "Group size along K (a power of two).", default=4, choices=(2, 4, 8, 16),
          only_for=_NM),
    Param("groups", int, "Groups of m along K per step (each PE multiplies groups x n kept values "
          "per cycle).", default=1, minimum=1, maximum=16, only_for=_NM),
    Param("rows", int, "nm: PE rows (output rows per tile); bitmap: multiplier grid rows "
          "(A non-zeros per pass).", default=4, minimum=1, maximum=64),
    Param("cols", int, "nm: PE columns (output columns per tile); bitmap: multiplier grid columns "
          "(B non-zeros per pass).", default=4, minimum=1, maximum=64),
    Param("m_tile", int, "Output rows per tile (accumulation buffer rows, A column length).",
          default=8, minimum=1, maximum=64, only_for=_BITMAP),
    Param("n_tile", int, "Output columns per tile (accumulation buffer columns, B row length).",
          default=8, minimum=1, maximum=64, only_for=_BITMAP),
    Param("mac", str, "Multiply-accumulate implementation: `baseline` (behavioural) or `opt1` "
          "(Booth digits and a carry-save accumulator, as in the bitweight family).",
          default="baseline", choices=("baseline", "opt1"), only_for=_NM),
    *NUMBER_PARAMS,
    *SOC_PARAMS,
), checks=(_n_not_above_m, _tile_covers_grid, *NUMBER_CHECKS), json_rules=tuple(
    {"if": {"properties": {"m": {"const": m}}, "required": ["m"]},
     "then": {"properties": {"n": {"maximum": m}}}} for m in (2, 4, 8)) + (
    {"if": {"not": {"required": ["m"]}}, "then": {"properties": {"n": {"maximum": 4}}}},
    # m_tile >= rows and n_tile >= cols (checked exactly by _tile_covers_grid); JSON Schema
    # cannot compare two keys, so it checks the common case of explicit grid sizes.
    *({"if": {"properties": {grid: {"const": g}}, "required": [grid]},
       "then": {"properties": {tile: {"minimum": g}}}}
      for tile, grid in (("m_tile", "rows"), ("n_tile", "cols")) for g in range(2, 65))))


def build(config: Config) -> Design:
    """Elaborate the engine a validated config describes."""
    c = config.values
    a_fmt, b_fmt, acc_fmt = number_formats(c)
    shapes = (shape_of(a_fmt), shape_of(b_fmt), shape_of(acc_fmt))
    if c["format"] == "nm":
        return _build_nm(config, a_fmt, b_fmt, acc_fmt, shapes)
    return _build_bitmap(config, a_fmt, b_fmt, acc_fmt, shapes)


def _manifest(config, top, engine, geometry, performance, errors) -> dict:
    core = engine.core
    a_fmt, b_fmt, acc_fmt = geometry.a_fmt, geometry.b_fmt, geometry.acc_fmt
    streams, facts = integration(engine, geometry)
    return {
        "family": "sparse",
        "top": top,
        "format": config["format"],
        "description": FORMATS[config["format"]],
        "core": type(core).__name__,
        "core_doc": " ".join(type(core).__doc__.split()),
        "ports": ports_of(engine),
        "streams": streams,
        "integration": facts,
        "registers": engine.regs.describe(),
        "geometry": geometry.to_manifest(),
        "performance": performance,
        "errors": errors,
        "semantics": semantics(a_fmt, b_fmt, acc_fmt),
        "config": config.as_dict(),
    }


def _build_nm(config, a_fmt, b_fmt, acc_fmt, shapes) -> Design:
    c = config.values
    n, m, groups = c["n"], c["m"], c["groups"]
    core = NMSparseMatrix(c["rows"], c["cols"], groups, n, m, *shapes, mac=c["mac"])
    engine = BufferedOutputStationaryEngine(core)
    geometry = NMGeometry("output_stationary", core.m_tile, core.n_tile, core.k_per_step,
                          core.latency, a_fmt, b_fmt, acc_fmt, buffered=True, n=n, m=m)
    size = f"{c['rows']}x{c['cols']}" + (f"_g{groups}" if groups > 1 else "")
    mac = "" if c["mac"] == "baseline" else f"_{c['mac']}"
    top = c["name"] or f"sparse_nm{n}of{m}{mac}_{size}_{a_fmt}x{b_fmt}_acc{acc_fmt.bits}"
    performance = {
        "multipliers": core.m_tile * core.n_tile * core.kept,
        "macs_per_cycle": geometry.macs_per_cycle(),
        "macs_per_cycle_counts": "dense-equivalent MACs (K values covered per cycle x tile)",
        "speedup_over_dense_same_multipliers": m / n,
        "pipeline_latency": core.latency,
        "job_cycles": "TILES * max(K_STEPS, pipeline_latency + m_tile + 1) + about pipeline_latency "
                      "+ m_tile + 1 (exact: accelsmith.models.bitweight.buffered_job_cycles)",
        "job_cycles_one_step": geometry.job_cycles(1),
        "throughput": "one step (a and b beat) per cycle; a tile's readout overlaps the next "
                      "tile's steps",
    }
    return Design(top, engine, _manifest(
        config, top, engine, geometry, performance,
        "a group whose indices are not strictly ascending contributes zero and sets "
        "STATUS.ERROR for the job; the job's timing and every other group are unaffected"))


def _build_bitmap(config, a_fmt, b_fmt, acc_fmt, shapes) -> Design:
    c = config.values
    core = OuterProductArray(c["rows"], c["cols"], c["m_tile"], c["n_tile"], *shapes)
    engine = VariableStepEngine(core)
    geometry = BitmapGeometry("output_stationary", core.m_tile, core.n_tile, 1, 0, a_fmt, b_fmt,
                              acc_fmt, schedule="outer_product", rows=c["rows"], cols=c["cols"])
    top = c["name"] or (f"sparse_bitmap_{c['rows']}x{c['cols']}_tile{c['m_tile']}x{c['n_tile']}_"
                        f"{a_fmt}x{b_fmt}_acc{acc_fmt.bits}")
    performance = {
        "multipliers": c["rows"] * c["cols"],
        "macs_per_cycle": c["rows"] * c["cols"],
        "peak_speedup_over_dense_same_multipliers": geometry.peak_speedup(),
        "pipeline_latency": 0,
        "job_cycles": "2 + sum over steps of max(1, ceil(nnz_a / rows) * ceil(nnz_b / cols)) + "
                      "m_tile (m_tile + 1 without steps; accelsmith.models.sparse.BitmapGeometry)",
        "job_cycles_one_step": geometry.job_cycles(1),
        "throughput": "one pass (rows x cols products) per cycle; one step per pass count",
    }
    return Design(top, engine, _manifest(
        config, top, engine, geometry, performance,
        "a vector whose count differs from its bitmap's popcount is taken as empty: its step adds "
        "nothing, takes one cycle and sets STATUS.ERROR for the job; other steps are unaffected"))
