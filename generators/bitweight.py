"""Generator of the ``bitweight`` family: dense integer tensor engines (GEMM tiles).

``mac: baseline`` builds each architecture from behavioural multipliers and adders: the
reference every bit-weight optimisation is measured against. The other ``mac`` modes are the
bit-weight-dimension optimisations (REFERENCE.md section 1); :data:`MACS_BY_ARCHITECTURE`
says which apply where.
"""

from __future__ import annotations

from accelsmith.config import Config, FamilySchema, Param
from accelsmith.hdl.tensor_cores import (COMPRESSORS, BroadcastMatrix, Cube, MultiplierAdderTree,
                                         SystolicOSArray, SystolicWSArray)
from accelsmith.hdl.digit_serial import DigitSerialMatrix
from accelsmith.hdl.multiplier import shape_of
from accelsmith.hdl.tensor_engine import (BufferedOutputStationaryEngine, OutputStationaryEngine,
                                          VariableStepEngine, WeightStationaryEngine)
from accelsmith.models.bitweight import DIGIT_SERIAL, EngineGeometry
from . import (NUMBER_CHECKS, NUMBER_PARAMS, SOC_PARAMS, Design, integration, number_formats, ports_of,
                semantics)

ARCHITECTURES = {
    "systolic_os": "output-stationary systolic array (rows x cols PEs, skewed operands)",
    "systolic_ws": "weight-stationary systolic array (rows x cols PEs holding B, partial sums flow down)",
    "matrix2d": "2D-Matrix: rows x cols MACs, A broadcast along rows and B along columns",
    "tree": "multiplier-adder tree: `units` dot-product units of `tree_k` multipliers each",
    "cube": "3D-Cube: cube_n^3 multipliers, cube_n^2 dot products of length cube_n per cycle",
}
MACS = {
    "baseline": "behavioural multipliers and adders",
    "opt1": "carry-save accumulative PE: Booth digits select partial products that enter one "
            "carry-save tree with the accumulator's sum and carry words; the carry-propagate "
            "adder moves to readout (OS/2D-Matrix/Cube) or the array edge (WS)",
    "opt2": "same-bit-weight compressor array: shared encoders, per-bit-weight carry-save "
            "reduction across k, one shift-and-add per output",
    "opt3": "sparsity-encoding PE: per bit weight, only the non-zero digits of 4 A values are "
            "issued, one per cycle; encoder and issue logic in every PE (data-dependent cycles)",
    "opt4c": "opt3 with encoders and issue logic shared by each row of PEs",
    "opt4e": "opt4c with one lane per bit weight in every PE, reduced in one carry-save tree "
             "with the shared accumulator",
    "bitslice": "Laconic-style term-serial reference: both operands digit-encoded, one pair of "
                "non-zero digits per PE and cycle",
}
MACS_BY_ARCHITECTURE = {
    "systolic_os": ("baseline", "opt1"),
    "systolic_ws": ("baseline", "opt1"),
    "matrix2d": ("baseline", "opt1", "opt3", "opt4c", "opt4e", "bitslice"),
    "tree": ("baseline", "opt2"),
    "cube": ("baseline", "opt1"),
}
_GRID = ("systolic_os", "systolic_ws", "matrix2d")
_OUTPUT_STATIONARY = ("systolic_os", "matrix2d", "cube")
_STREAMED_A = ("systolic_ws", "tree")

PIPELINE_BY_ARCHITECTURE = {a: (0, 1, 2, 3) if a in _OUTPUT_STATIONARY else (0, 1, 2) if a == "tree"
                            else (0, 1) for a in ARCHITECTURES}


def _pipeline_needs_fixed_schedule(values: dict) -> str | None:
    if values.get("pipeline") and values["mac"] in DIGIT_SERIAL:
        return (f"key 'pipeline' has value {values['pipeline']}, but mac {values['mac']!r} is "
                f"digit-serial (its steps take data-dependent cycles) and has no pipelined form; "
                f"use pipeline 0 or a fixed-latency mac (baseline, opt1, opt2).")
    return None


def _dsp_needs_pipelined_baseline(values: dict) -> str | None:
    if values.get("dsp") == "ecp5" and (values["mac"] != "baseline" or values["pipeline"] < 2):
        return (f"key 'dsp' has value 'ecp5' with mac {values['mac']!r} and pipeline "
                f"{values['pipeline']}; the ECP5 DSP blocks take the first two register stages of "
                f"the behavioural multiplier: use mac 'baseline' and pipeline 2 or 3 (tree: 2), or dsp 'generic'.")
    return None


def _buffer_needs_fixed_schedule(values: dict) -> str | None:
    if values.get("result_buffer") and values["mac"] in DIGIT_SERIAL:
        fixed = [m for m in MACS_BY_ARCHITECTURE[values["architecture"]] if m not in DIGIT_SERIAL]
        return (f"key 'result_buffer' is true, but mac {values['mac']!r} is digit-serial and has no "
                f"result buffer; use it with mac {' or '.join(repr(m) for m in fixed)}.")
    return None


SCHEMA = FamilySchema("bitweight", "Dense integer tensor engines computing C = A @ B tile by tile.", (
    Param("architecture", str, "Tensor-engine architecture: " + "; ".join(
        f"`{k}` {v}" for k, v in ARCHITECTURES.items()) + ".", choices=tuple(ARCHITECTURES)),
    Param("mac", str, "Multiply-accumulate implementation: " + "; ".join(
        f"`{k}` {v}" for k, v in MACS.items()) + ". Available per architecture: " + "; ".join(
        f"{a}: {', '.join(ms)}" for a, ms in MACS_BY_ARCHITECTURE.items()) + ".",
        default="baseline", choices=tuple(MACS), choices_by=("architecture", MACS_BY_ARCHITECTURE)),
    Param("encoding", str, "Radix-4 digit encoding of A for the bit-weight modes: `booth` "
          "(modified Booth) or `ent` (EN-T, sign-magnitude; fewer non-zero digits).",
          default=None, choices=("booth", "ent"),
          default_doc="`ent` for opt3/opt4c/opt4e, `booth` otherwise"),
    Param("compressor", str, "Carry-save tree of the bit-weight modes: `dadda` (3:2 and 2:2 "
          "cells, Dadda's schedule: fewest adders), `wallace` (3:2 cells, greedy) or `4:2` (4:2 "
          "compressor stages, then Dadda).", default="dadda", choices=tuple(COMPRESSORS),
          only_for=("mac", tuple(m for m in MACS if m != "baseline"))),
    Param("rows", int, "PE rows (OS/2D-Matrix: output rows per tile; WS: K values per step).",
          default=4, minimum=1, maximum=64, only_for=("architecture", _GRID)),
    Param("cols", int, "PE columns (output columns per tile).", default=4, minimum=1, maximum=64,
          only_for=("architecture", _GRID)),
    Param("units", int, "Dot-product units (output columns per tile).", default=4, minimum=1,
          maximum=64, only_for=("architecture", ("tree",))),
    Param("tree_k", int, "Multipliers per dot-product unit (K values per step).", default=4,
          minimum=1, maximum=64, only_for=("architecture", ("tree",))),
    Param("cube_n", int, "Edge of the cube (output tile cube_n x cube_n, K values per step cube_n).",
          default=4, minimum=1, maximum=16, only_for=("architecture", ("cube",))),
    Param("m_tile", int, "Output rows per tile: A rows streamed past the stationary weights per step.",
          default=4, minimum=1, maximum=256, only_for=("architecture", _STREAMED_A)),
    Param("result_buffer", bool, "Output-stationary engines: a result register per PE, so a job "
          "computes TILES tiles back to back and each tile is read out while the next one "
          "accumulates (not with the digit-serial macs).", default=False,
          only_for=("architecture", _OUTPUT_STATIONARY)),
    Param("pipeline", int, "Register stages in each multiply-accumulate for FPGA clocks, one tick "
          "of latency each, no loss of throughput: 0 one-cycle MACs; 1 registered products (the "
          "DSP output register; carry-save modes register the products' carry-save pair); 2 "
          "(output-stationary, tree) also the multipliers' operands (the DSP input registers; carry-save "
          "modes: the selected partial products); 3 (output-stationary) the products once more (the "
          "route from a DSP column to its accumulator; carry-save modes: each PE's Booth digits). Pipelined output-stationary cores run free "
          "through stalls and shift their result rows out. Fixed-latency macs only.",
          default=0, choices=(0, 1, 2, 3), choices_by=("architecture", PIPELINE_BY_ARCHITECTURE)),
    Param("dsp", str, "How multipliers are built: `generic` (behavioural `*`, registers in the "
          "fabric; any target) or `ecp5` (Lattice ECP5 MULT18X18D blocks instantiated with their "
          "input and output registers as the first two pipeline stages, so they sit beside the "
          "DSP; mac baseline, pipeline 2 or 3 (tree: 2); for ECP5 boards and the ecp5-85f target only).",
          default="generic", choices=("generic", "ecp5"),
          only_for=("architecture", _OUTPUT_STATIONARY + ("tree",))),
    *NUMBER_PARAMS,
    *SOC_PARAMS,
), checks=(_buffer_needs_fixed_schedule, _pipeline_needs_fixed_schedule,
                 _dsp_needs_pipelined_baseline, *NUMBER_CHECKS), json_rules=(
    {"if": {"properties": {"mac": {"enum": list(DIGIT_SERIAL)}}, "required": ["mac"]},
     "then": {"properties": {"result_buffer": {"const": False}}}},
    {"if": {"properties": {"mac": {"enum": list(DIGIT_SERIAL)}}, "required": ["mac"]},
     "then": {"properties": {"pipeline": {"const": 0}}}},
    {"if": {"properties": {"dsp": {"const": "ecp5"}}, "required": ["dsp"]},
     "then": {"properties": {"mac": {"const": "baseline"}, "pipeline": {"enum": [2, 3]}},
              "required": ["pipeline"]}},))


def build(config: Config) -> Design:
    """Elaborate the engine a validated config describes."""
    c = config.values
    arch = c["architecture"]
    a_fmt, b_fmt, acc_fmt = number_formats(c)
    shapes = (shape_of(a_fmt), shape_of(b_fmt), shape_of(acc_fmt))
    encoding = c["encoding"] or ("ent" if c["mac"] in ("opt3", "opt4c", "opt4e") else "booth")
    mode = {"mac": c["mac"], "encoding": encoding}
    if c["mac"] != "baseline":
        mode["compressor"] = c["compressor"]
    if c["mac"] not in DIGIT_SERIAL:
        mode["pipeline"] = c["pipeline"]
    if c.get("dsp") == "ecp5":
        mode["dsp"] = "ecp5"

    buffered = bool(c.get("result_buffer"))
    os_engine = BufferedOutputStationaryEngine if buffered else OutputStationaryEngine
    if arch in _OUTPUT_STATIONARY and c["mac"] not in DIGIT_SERIAL:
        mode["result_buffer"] = buffered
    if arch == "systolic_os":
        size = f"{c['rows']}x{c['cols']}"
        engine = os_engine(SystolicOSArray(c["rows"], c["cols"], *shapes, **mode))
    elif arch == "matrix2d" and c["mac"] in DIGIT_SERIAL:
        size = f"{c['rows']}x{c['cols']}"
        engine = VariableStepEngine(DigitSerialMatrix(c["rows"], c["cols"], *shapes, **mode))
    elif arch == "matrix2d":
        size = f"{c['rows']}x{c['cols']}"
        engine = os_engine(BroadcastMatrix(c["rows"], c["cols"], *shapes, **mode))
    elif arch == "cube":
        size = f"{c['cube_n']}x{c['cube_n']}x{c['cube_n']}"
        engine = os_engine(Cube(c["cube_n"], *shapes, **mode))
    elif arch == "systolic_ws":
        size = f"{c['rows']}x{c['cols']}_m{c['m_tile']}"
        engine = WeightStationaryEngine(SystolicWSArray(c["rows"], c["cols"], *shapes, **mode), c["m_tile"])
    else:
        size = f"{c['units']}x{c['tree_k']}_m{c['m_tile']}"
        engine = WeightStationaryEngine(MultiplierAdderTree(c["tree_k"], c["units"], *shapes, **mode),
                                        c["m_tile"])
    core = engine.core
    geometry = EngineGeometry(
        "weight_stationary" if isinstance(engine, WeightStationaryEngine) else "output_stationary",
        engine.m_tile, core.n_tile, core.k_per_step, core.latency, a_fmt, b_fmt, acc_fmt,
        c["mac"] if c["mac"] in DIGIT_SERIAL else "fixed", encoding, buffered, engine.readout_latency)
    mac = c["mac"] if c["encoding"] is None else f"{c['mac']}_{encoding}"
    if mode.get("compressor", "dadda") != "dadda":
        mac += "_" + {"wallace": "wallace", "4:2": "c42"}[mode["compressor"]]
    streams, facts = integration(engine, geometry)
    top = c["name"] or (f"bitweight_{arch}_{mac}_{size}_{a_fmt}x{b_fmt}_acc{acc_fmt.bits}"
                        + ("_rbuf" if buffered else "") + (f"_p{c['pipeline']}" if c["pipeline"] else "")
                        + ("_ecp5dsp" if c.get("dsp") == "ecp5" else ""))
    manifest = {
        "family": "bitweight",
        "top": top,
        "architecture": arch,
        "mac": c["mac"],
        "encoding": encoding,
        "compressor": mode.get("compressor"),
        "pipeline": c["pipeline"],
        "dsp": c.get("dsp", "generic"),
        "description": ARCHITECTURES[arch],
        "core": type(core).__name__,
        "core_doc": " ".join(type(core).__doc__.split()),
        "ports": ports_of(engine),
        "streams": streams,
        "integration": facts,
        "registers": engine.regs.describe(),
        "geometry": geometry.to_manifest(),
        "performance": {
            "macs_per_cycle": geometry.macs_per_cycle(),
            "pipeline_latency": core.latency,
            "readout_latency": engine.readout_latency,
            "job_cycles": ("2 + sum(step_cycles) + m_tile (data-dependent: "
                           "accelsmith.models.bitweight.step_cycles)" if geometry.schedule != "fixed"
                           else "TILES * max(K_STEPS, pipeline_latency + m_tile + 1) + about "
                           "pipeline_latency + m_tile + 1 + readout_latency (exact: accelsmith.models.bitweight."
                           "buffered_job_cycles)" if buffered
                           else "K_STEPS + pipeline_latency + m_tile + readout_latency" if geometry.output_stationary
                           else "K_STEPS * (k_per_step + m_tile + pipeline_latency) + m_tile"),
            "job_cycles_one_step": geometry.job_cycles(1),
            "throughput": ("one step per step_cycles (data-dependent)" if geometry.schedule != "fixed"
                           else "one step (a and b beat) per cycle" if geometry.output_stationary else
                           "one A row per cycle while streaming; weight loads stall the stream"),
        },
        "semantics": semantics(a_fmt, b_fmt, acc_fmt),
        "config": config.as_dict(),
    }
    return Design(top, engine, manifest)

