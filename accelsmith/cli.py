"""The ``accelsmith`` command: generate, sim, synth, list, schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, load


def _cmd_generate(args) -> int:
    from accelsmith.generators import write_design
    from accelsmith.registry import generator

    config = load(args.config)
    design = generator(config.family).build(config)
    v_path, m_path = write_design(design, args.output)
    print(f"{design.top}: wrote {v_path} and {m_path}")
    if args.lint:
        from accelsmith.flows.tools import verilator_lint

        ok, output = verilator_lint(v_path, design.top)
        print("  verilator --lint-only: " + ("clean" if ok else "FAILED\n" + output))
        if not ok:
            return 1
    perf = design.manifest.get("performance", {})
    if perf:
        print(f"  {perf['macs_per_cycle']} MACs/cycle, pipeline latency {perf['pipeline_latency']} "
              f"cycles, job cycles = {perf['job_cycles']}")
    return 0


def _cmd_sim(args) -> int:
    from accelsmith.flows.sim import simulate

    config = load(args.config)
    result = simulate(config, args.sim, args.seed, args.vectors, args.waves, args.workdir)
    print(result.summary())
    return 0 if result.passed else 1


def _cmd_synth(args) -> int:
    from accelsmith.flows.synth import synthesize

    config = load(args.config)
    report = synthesize(config, args.target, args.workdir, args.liberty, args.clock_ns,
                        args.no_dsp, args.seed)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"  JSON report: {args.json}")
    return 0


def _cmd_list(args) -> int:
    from accelsmith.registry import FAMILIES, generator, reference_configs

    for family in FAMILIES:
        gen = generator(family)
        print(f"family {family}: {gen.SCHEMA.doc}")
        for name, doc in getattr(gen, "ARCHITECTURES", {}).items():
            print(f"  architecture {name:<12} {doc}")
        for name, doc in getattr(gen, "FORMATS", {}).items():
            print(f"  format {name:<18} {doc}")
        macs = getattr(gen, "MACS", ())
        if macs:
            print(f"  mac: {', '.join(macs)}")
    print("reference configs:")
    for path in reference_configs():
        try:
            cfg = load(path)
            summary = ", ".join(f"{k}={v}" for k, v in cfg.raw.items() if k != "family")
            print(f"  {path.name:<34} {cfg.family}: {summary}")
        except ConfigError as exc:
            print(f"  {path.name:<34} INVALID: {exc}")
    return 0


def _cmd_schema(args) -> int:
    from .config import json_schema, reference_markdown

    text = reference_markdown() if args.markdown else json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accelsmith", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="Verilog + JSON manifest for a config")
    p.add_argument("config")
    p.add_argument("-o", "--output", default="build/generated", help="output folder")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only on the output")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("sim", help="run the family's cocotb testbench against the golden model")
    p.add_argument("config")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    p.add_argument("--seed", type=int, default=None, help="random seed (printed to reproduce)")
    p.add_argument("--vectors", type=int, default=2000,
                   help="random tiles to check (corner cases run in addition)")
    p.add_argument("--waves", action="store_true", help="write a waveform (FST/VCD)")
    p.add_argument("--workdir", default="build", help="build folder")
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("synth", help="synthesise for an ASIC estimate or an FPGA")
    p.add_argument("config")
    p.add_argument("--target", required=True, choices=["asic", "ecp5-85f", "ice40-up5k"])
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--liberty", help="Liberty file for asic (default: sky130 HD from $PDK_ROOT)")
    p.add_argument("--clock-ns", type=float, default=None,
                   help="target clock period (asic: ABC -D and STA clock, default 5 ns; "
                        "FPGA: nextpnr constraint)")
    p.add_argument("--no-dsp", action="store_true", help="FPGA: map multipliers to LUTs")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--workdir", default="build", help="build folder")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("list", help="families, architectures and reference configs")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("schema", help="print the config JSON Schema (or the markdown reference)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("-o", "--output")
    p.set_defaults(func=_cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    from accelsmith.flows.tools import ToolError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
