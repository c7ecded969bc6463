"""The accelsmith command: generate, sim, synth, sweep, run, sim-server, list, schema, render,
train-sorter."""

from __future__ import annotations

import argparse
import difflib
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
    outputs = [(v_path, design.top)]
    if args.soc:
        from accelsmith.generators.soc import build_soc, write_soc

        soc = build_soc(design)
        sv_path, sm_path, csv_path = write_soc(soc, args.output)
        print(f"{soc.top}: wrote {sv_path}, {sm_path} and {csv_path}")
        outputs.append((sv_path, soc.top))
    if args.lint:
        from accelsmith.flows.tools import verilator_lint

        for path, top in outputs:
            ok, output = verilator_lint(path, top)
            print(f"  verilator --lint-only {path.name}: " + ("clean" if ok else "FAILED\n" + output))
            if not ok:
                return 1
    perf = design.manifest.get("performance", {})
    if "macs_per_cycle" in perf:
        print(f"  {perf['macs_per_cycle']} MACs/cycle, pipeline latency {perf['pipeline_latency']} "
              f"cycles, job cycles = {perf['job_cycles']}")
    elif "pairs_per_cycle" in perf:
        print(f"  {perf['pairs_per_cycle']} pixel-Gaussian pairs/cycle, tile cycles = "
              f"{perf['tile_cycles']}")
    return 0


def _cmd_sim(args) -> int:
    from accelsmith.flows.sim import simulate

    config = load(args.config)
    result = simulate(config, args.sim, args.seed, args.vectors, args.waves, args.workdir)
    print(result.summary())
    return 0 if result.passed else 1


def _cmd_synth(args) -> int:
    from accelsmith.flows.synth import DONT_USE, synthesize

    config = load(args.config)
    if args.by_module:
        from dataclasses import asdict

        from accelsmith.flows.synth import breakdown_table, module_breakdown

        rows = module_breakdown(config, args.target, args.workdir)
        print(f"{args.config} -> {args.target}, by module (Yosys's cells, not placed):")
        print("\n".join(breakdown_table(rows)))
        if args.json:
            Path(args.json).write_text(json.dumps({"target": args.target, "by_module": [
                asdict(r) for r in rows]}, indent=2) + "\n")
            print(f"  JSON report: {args.json}")
        return 0
    dont_use = DONT_USE if args.dont_use is None else tuple(filter(None, args.dont_use.split(",")))
    report = synthesize(config, args.target, args.workdir, args.liberty, args.clock_ns,
                        args.no_dsp, args.seed, dont_use=dont_use,
                        keep_hierarchy=args.keep_hierarchy, route_minutes=args.route_minutes)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"  JSON report: {args.json}")
    return 0


def _cmd_sweep(args) -> int:
    from accelsmith.flows.sweep import load_sweep, run_sweep, sweep_schema

    if args.schema:
        print(json.dumps(sweep_schema(), indent=2))
        return 0
    if not args.sweep:
        raise ConfigError("sweep: give a sweep file (see sweeps/ for examples), or --schema")
    sweep = load_sweep(args.sweep)
    out = args.output or str(Path("build") / "sweeps" / Path(args.sweep).stem)
    run = run_sweep(sweep, out, args.workers, args.scheduler)
    print(f"{len(sweep.points)} points in {run.seconds:.0f} s: {run.computed} computed, "
          f"{run.cached} from the cache, {run.failed} failed, {run.filtered} left out; "
          f"table: {Path(out) / 'sweep.md'} (and sweep.csv)")
    return 1 if run.failed else 0


def _cmd_prove(args) -> int:
    from accelsmith.flows.prove import DEFAULT_TIMEOUT, groups_for, prove

    config = load(args.config)
    known = groups_for(config)
    if unknown := [g for g in args.group or () if g not in known]:
        raise ConfigError(f"prove --group {', '.join(unknown)}: not a property group of "
                          f"{args.config}; its groups: {', '.join(known)}")
    out = args.output or str(Path("build") / "prove")
    print(f"{args.config}: {len(args.group or known)} property groups, depth {args.depth} "
          f"(k-induction where it closes), in {out}")
    results = prove(config, out, args.depth, args.group, timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout or None)
    failed = [r for r in results if r.status in ("failed", "vacuous", "error")]
    late = [r for r in results if r.status == "timeout"]
    print(f"{len(results) - len(failed) - len(late)} of {len(results)} groups hold"
          + (f"; failed: {', '.join(r.group for r in failed)}" if failed else "")
          + (f"; timed out: {', '.join(r.group for r in late)}" if late else ""))
    return 1 if failed or late else 0


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of {least} or more")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


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
    configs = reference_configs()
    print(f"reference configs (use by name, e.g. 'accelsmith generate {configs[0].stem}'), in "
          f"{configs[0].parent}:")
    for path in configs:
        try:
            cfg = load(path)
            summary = ", ".join(f"{k}={v}" for k, v in cfg.raw.items() if k != "family")
            print(f"  {path.stem:<32} {cfg.family}: {summary}")
        except ConfigError as exc:
            print(f"  {path.stem:<32} INVALID: {exc}")
        print(f"  {'':<32} {path}")
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


def _target(text: str) -> str:
    from accelsmith.flows.synth import TARGET_ALIASES, TARGETS

    if text in TARGETS:
        return text
    hint = TARGET_ALIASES.get(text.lower()) or next(iter(difflib.get_close_matches(
        text.lower(), TARGETS, n=1)), None)
    raise argparse.ArgumentTypeError(f"unknown target {text!r}; allowed: {', '.join(TARGETS)}."
                                     + (f" Did you mean {hint!r}?" if hint else ""))


def _positive_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}': {what}, a number above 0")
    return value


def _period_ns(text: str) -> float:
    return _positive_number(text, "a clock period in ns")


def _minutes(text: str) -> float:
    return _positive_number(text, "minutes")


def _background(text: str):
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3 or not all(0 <= v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"background '{text}': expected three numbers in "
                                         "[0, 1] separated by commas, e.g. 0,0,0")
    return tuple(vals)


def _pair(text: str):
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected two numbers a,b") from None
    return a, b


def _cmd_render(args) -> int:
    from accelsmith.models.gaussian.metrics import psnr, ssim
    from accelsmith.models.gaussian.pipeline import load_scene, render_view, save_png
    from accelsmith.models.gaussian.render import bin_tiles, project, render_sorted
    from accelsmith.models.gaussian.scene import SceneError
    from accelsmith.sw_driver.accelerator import DriverError
    from accelsmith.sw_driver.gemm import GemmError
    from accelsmith.sw_driver.transport import TransportError

    scene, cams = load_scene(args.scene, init=args.init, seed=args.seed)
    if not 0 <= args.camera < len(cams):
        raise SceneError(f"{args.scene}: --camera {args.camera} does not exist; allowed "
                         f"0..{len(cams) - 1}")
    cam = cams[args.camera]
    img, bins = render_view(scene, cam, args.mode, args.blend, args.sorter, args.depth_weight,
                            args.background, say=lambda msg: print(msg, file=sys.stderr))
    path = save_png(img, args.output)
    print(f"{args.mode} render of camera {args.camera}: {len(bins.proj):,} Gaussians in view, "
          f"{len(bins.entries):,} tile entries -> {path}")
    if args.psnr:
        ref = render_sorted(bin_tiles(project(scene, cam)), args.background)
        print(f"  against the sorted render of the scene: PSNR {psnr(img, ref):.2f} dB, "
              f"SSIM {ssim(img, ref):.4f}")
    return 0


def _cmd_train_sorter(args) -> int:
    import time

    import numpy as np

    from accelsmith.models.gaussian import fixed, oit, sorter
    from accelsmith.models.gaussian.pipeline import (evaluate, load_scene, plot_losses,
                                                     training_cameras)
    from accelsmith.models.gaussian.scene import write_ply

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    log = lambda msg: print(f"[{time.time() - start:6.0f} s] {msg}", flush=True)  # noqa: E731
    scene, held = load_scene(args.scene, init=args.init, seed=args.seed)
    train = training_cameras(held, args.views)
    log(f"{len(scene):,} Gaussians; {len(train)} training views, {len(held)} held-out views")
    fits = sorter.fit_weightings(scene, train, args.blend, args.steps, args.lr,
                                 args.pixel_fraction, args.finetune, args.background, args.seed,
                                 progress=log)
    a, b, _ = fits["analytic"]
    res = fits["mlp"]
    res.mlp.save(out / "sorter.npz")
    (out / "sorter_quantised.json").write_text(
        json.dumps(fixed.quantise_mlp(res.mlp).to_json(), indent=1) + "\n")
    plot_losses({k: v.losses for k, v in fits.items() if k != "analytic"}, out / "loss.png")
    weightings = {"w=1": lambda bl: lambda p: np.ones(len(p)),
                  "analytic": lambda bl: lambda p: oit.depth_weight(p.depth, a, b),
                  "mlp": lambda bl: res.mlp.weights}
    scenes = None
    if args.finetune:
        tuned_res = fits["mlp+finetune"]
        tuned = sorter.finetuned_scene(scene, tuned_res)
        write_ply(tuned, out / "scene_finetuned.ply")
        sorter.save_result(out / "sorter_finetuned.npz", tuned_res, scene)
        weightings["mlp+finetune"] = lambda bl: tuned_res.mlp.weights
        scenes = {("mlp+finetune", args.blend): tuned}
    rows = evaluate(scene, held, weightings, (args.blend,), args.background, scenes=scenes,
                    progress=lambda r: log(f"held-out camera {r.camera} {r.weighting:<13} "
                                           f"PSNR {r.psnr:6.2f} dB  SSIM {r.ssim:.4f}"))
    report = {"scene": str(args.scene), "blend": args.blend, "steps": args.steps,
              "views": args.views, "analytic": {"a": a, "b": b},
              "held_out": [r.__dict__ for r in rows]}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"wrote sorter.npz, sorter_quantised.json, loss.png, report.json to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from accelsmith import __version__

    parser = argparse.ArgumentParser(prog="accelsmith", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"accelsmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    config_help = "a config file, or a reference config by name (see: accelsmith list)"
    p = sub.add_parser("generate", help="Verilog + JSON manifest for a config")
    p.add_argument("config", help=config_help)
    p.add_argument("-o", "--output", default="build/generated", help="output folder")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only on the output")
    p.add_argument("--soc", action="store_true", help="also the SoC around the engine (host "
                   "bridge, buffers, sequencer) and its csr.csv")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("sim", help="run the family's cocotb testbench against the golden model")
    p.add_argument("config", help=config_help)
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    p.add_argument("--seed", type=int, default=None, help="random seed (printed to reproduce)")
    p.add_argument("--vectors", type=int, default=2000,
                   help="random tiles to check (corner cases run in addition)")
    p.add_argument("--waves", action="store_true", help="write a waveform (FST/VCD)")
    p.add_argument("--workdir", default="build", help="build folder")
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("synth", help="synthesise for an ASIC estimate or an FPGA")
    p.add_argument("config", help=config_help)
    p.add_argument("--target", required=True, type=_target, metavar="{asic,ecp5-85f,ice40-up5k}",
                   help="asic (sky130 estimate), ecp5-85f (LFE5U-85F) or ice40-up5k")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--liberty", help="Liberty file for asic (default: sky130 HD from $PDK_ROOT)")
    p.add_argument("--clock-ns", type=_period_ns, default=None,
                   help="target clock period (asic: ABC -D and STA clock, default 5 ns; "
                        "FPGA: nextpnr constraint)")
    p.add_argument("--dont-use", metavar="PATTERNS",
                   help="asic: comma-separated cell name patterns kept out of the mapping, "
                        "replacing the default sky130 HD list (probe and lpflow cells); '' for none")
    p.add_argument("--no-dsp", action="store_true", help="FPGA: map multipliers to LUTs")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--by-module", action="store_true",
                   help="FPGA: instead of placing the design, map it without flattening and "
                        "report the cells of each submodule (where the area goes)")
    p.add_argument("--route-minutes", type=_minutes, metavar="MIN",
                   help="FPGA: stop place and route after MIN minutes; a design that fits is then "
                        "reported with its packed figures and no clock")
    p.add_argument("--keep-hierarchy", action="store_true",
                   help="asic: map each submodule on its own instead of the flattened design "
                        "(for designs whose flat mapping takes too long; no optimisation across "
                        "modules)")
    p.add_argument("--workdir", default="build", help="build folder")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("render", help="render a 3DGS scene view (sorted reference, OIT, fixed-point)")
    p.add_argument("scene", help=".npz point cloud with cameras (e.g. test_garden.npz) or 3DGS .ply")
    p.add_argument("--camera", type=int, default=0, help="camera index of the scene")
    p.add_argument("--mode", choices=["sorted", "oit", "fixed"], default="sorted",
                   help="sorted reference, order-independent (oit) or bit-accurate fixed point "
                        "(default: sorted)")
    p.add_argument("--blend", choices=["authors", "coverage"], default="coverage",
                   help="order-independent blend of oit/fixed (default: coverage)")
    p.add_argument("--sorter", help="trained sorter weights (sorter.npz of train-sorter)")
    p.add_argument("--depth-weight", type=_pair, metavar="A,B",
                   help="without --sorter: weight exp(-A depth^B) (default: weight 1)")
    p.add_argument("--background", type=_background, default=(0.0, 0.0, 0.0), metavar="R,G,B")
    p.add_argument("--init", choices=["knn", "random"], default="knn",
                   help=".npz point clouds: Gaussian initialisation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psnr", action="store_true",
                   help="also print PSNR/SSIM against the sorted render of the scene (as the "
                        "results pages measure quality)")
    p.add_argument("-o", "--output", required=True, help="PNG file")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("train-sorter", help="fit the neural-sorting MLP to a scene's sorted renders")
    p.add_argument("scene", help=".npz point cloud with cameras or 3DGS .ply")
    p.add_argument("--views", type=int, default=10, help="training views (held-out views are "
                   "the scene's own cameras, never trained on)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--blend", choices=["authors", "coverage"], default="coverage")
    p.add_argument("--finetune", action="store_true", help="also fine-tune opacities and colours")
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--pixel-fraction", type=float, default=0.1,
                   help="share of each training view's pixels in the loss")
    p.add_argument("--background", type=_background, default=(0.0, 0.0, 0.0), metavar="R,G,B")
    p.add_argument("--init", choices=["knn", "random"], default="knn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="build/sorter", help="output folder")
    p.set_defaults(func=_cmd_train_sorter)

    from .cli_soc import add_parsers

    add_parsers(sub, config_help)

    p = sub.add_parser("sweep", help="run a design-space sweep file on Dask (cached, resumable)")
    p.add_argument("sweep", nargs="?", help="a sweep file (YAML; see sweeps/)")
    p.add_argument("-o", "--output", help="results folder (default build/sweeps/NAME)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local Dask workers (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://head:8786 (workers are its own)")
    p.add_argument("--schema", action="store_true", help="print the sweep file JSON Schema")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("prove", help="SymbiYosys proofs of a config's stream, register and job "
                                     "properties")
    p.add_argument("config", help=config_help)
    p.add_argument("--depth", type=_positive_int, default=24,
                   help="cycles from reset for bounded checks and k-induction (default 24)")
    p.add_argument("--group", action="append", metavar="GROUP",
                   help="prove only this property group (repeatable; default: all of the family's)")
    p.add_argument("--timeout", type=_non_negative_int, default=None,
                   help="seconds each group's proof and cover check may take; past it a base "
                        "case that held is reported as bounded, else as timed out (default "
                        "900; 0: no limit)")
    p.add_argument("-o", "--output", help="work folder (default build/prove): harness, logs, traces")
    p.set_defaults(func=_cmd_prove)

    p = sub.add_parser("list", help="families, architectures and reference configs")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("schema", help="print the config JSON Schema (or the markdown reference)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("-o", "--output")
    p.set_defaults(func=_cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    from accelsmith.flows.tools import ToolError
    from accelsmith.models.gaussian.records import NetworkError, RecordRangeError
    from accelsmith.models.gaussian.scene import SceneError
    from accelsmith.sw_driver.accelerator import DriverError
    from accelsmith.sw_driver.gemm import GemmError
    from accelsmith.sw_driver.transport import TransportError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, SceneError, NetworkError, RecordRangeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ToolError, DriverError, TransportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except GemmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
