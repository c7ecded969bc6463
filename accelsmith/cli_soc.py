"""The SoC commands of ``accelsmith``: ``run`` (a GEMM through the driver), ``sim-server`` and
``build`` (a bitstream for a board), ``program``."""

from __future__ import annotations

import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from .config import ConfigError, load

__all__ = ["InputError", "load_matrix", "add_parsers"]


class InputError(ConfigError):
    """A workload file that cannot be used (missing, not an array, pickled, wrong shape)."""


def load_matrix(path: str, what: str) -> np.ndarray:
    """A 2-D integer array from ``.npy`` or ``.npz`` (its only array, or the one named like
    ``what``), read without unpickling."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what}: file {path} does not exist")
    try:
        data = np.load(p, allow_pickle=False, mmap_mode=None)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{what}: {path} holds Python objects (pickled); only plain numeric "
                             f"arrays are read, never unpickled") from None
        raise InputError(f"{what}: {path} is not a valid .npy/.npz array file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{what}: cannot read {path} as .npy/.npz ({exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            key = next((n for n in names if n.lower() == what.lower()), None)
            if key is None and len(names) == 1:
                key = names[0]
            if key is None:
                raise InputError(f"{what}: {path} holds arrays {names}; name one '{what}' or "
                                 f"store only one")
            try:
                data = data[key]
            except ValueError as exc:
                raise InputError(f"{what}: {path}[{key}] cannot be read without unpickling "
                                 f"({exc})") from None
    if data.ndim != 2:
        raise InputError(f"{what}: {path} holds an array of shape {data.shape}; a 2-D matrix "
                         f"is needed")
    if data.dtype.kind not in "iub":
        if data.dtype.kind == "f" and np.all(np.isfinite(data)) and np.all(data == np.round(data)):
            return data.astype(np.int64)
        raise InputError(f"{what}: {path} holds {data.dtype} values; integers are needed "
                         f"(quantise first)")
    return data.astype(np.int64)


class _Progress:
    """A one-line progress report on stderr for runs that take longer than a second."""

    def __init__(self, unit: str = "jobs"):
        self.start = time.monotonic()
        self.last = 0.0
        self.unit = unit

    def __call__(self, done: int, total: int):
        now = time.monotonic() - self.start
        if now - self.last < 1.0 and done < total:
            return
        self.last = now
        if now > 1.0:
            left = now / done * (total - done) if done else 0
            print(f"  {self.unit} {done}/{total} ({100 * done / total:.0f} %), {now:.0f} s, about "
                  f"{left:.0f} s left", file=sys.stderr, flush=True)


def _accelerator(args, config):
    from accelsmith.sw_driver.accelerator import Accelerator

    if args.port:
        return Accelerator.open(config, args.port, args.baud, link_timeout=args.timeout)
    return Accelerator.simulated(config)


def _region(text: str) -> tuple[int, int, int, int]:
    import argparse

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 0 or values[2] == 0 or values[3] == 0:
        raise argparse.ArgumentTypeError(f"'{text}': expected X,Y,WIDTH,HEIGHT in pixels "
                                         "(non-negative, width and height at least 1)")
    return values


def _run_frame(args, config) -> int:
    """``run`` of a gaussian config: a view of a scene rendered tile by tile on the SoC."""
    from accelsmith.flows.workload import prepare_view, render_view
    from accelsmith.models.gaussian import fixed
    from accelsmith.models.gaussian.pipeline import save_png

    if args.a or args.b or args.prune:
        raise InputError(f"{args.config} is a gaussian config: run renders a scene (--scene "
                         f"SCENE --camera N -o frame.png); --a, --b and --prune are for GEMM "
                         f"engines")
    if not args.scene or not args.output:
        raise InputError(f"{args.config} is a gaussian config: run needs --scene SCENE and "
                         f"-o frame.png")
    say = lambda msg: print(msg, file=sys.stderr)      # noqa: E731
    view = prepare_view(config, args.scene, args.camera, args.crop, args.sorter, args.depth_weight,
                        args.background, say)
    with _accelerator(args, config) as acc:
        print(f"{acc.manifest['top']} on {args.port or 'simulation (native Verilator model)'}: "
              f"camera {args.camera}, {view['gaussians']:,} Gaussians in view", flush=True)
        record = render_view(acc, view, _Progress("tiles"), _Progress("Gaussians"))
    if record["network"] is not None:
        print("  sorter network: " + record["network"].summary())
        if not record["network_exact"]:
            print(f"  check: FAILED, {record['mismatch']}")
            return 1
        print("  check: the network's weights equal mlp_fixed (bit-exact)")
    print("  " + record["result"].summary())
    path = save_png(fixed.to_float(record["result"].image_q), args.output)
    print(f"  frame written to {path}")
    print(f"  PSNR against the sorted float render: {record['psnr_db']:.2f} dB")
    if record["bit_exact"]:
        print("  check: the frame equals render_fixed (bit-exact)")
        return 0
    print(f"  check: FAILED, {record['mismatch']}")
    return 1


def _cmd_run(args) -> int:
    config = load(args.config)
    if config.family == "gaussian":
        return _run_frame(args, config)
    if args.scene or args.crop:
        raise InputError(f"{args.config} is a {config.family} config: run computes C = A @ B "
                         f"(--a A.npy --b B.npy); --scene and --crop are for gaussian configs")
    if not args.a or not args.b:
        raise InputError(f"{args.config}: run needs --a A.npy and --b B.npy")
    A = load_matrix(args.a, "A")
    B = load_matrix(args.b, "B")
    if A.shape[1] != B.shape[0]:
        raise InputError(f"A ({args.a}) is {A.shape[0]}x{A.shape[1]} and B ({args.b}) is "
                         f"{B.shape[0]}x{B.shape[1]}: A's columns must equal B's rows")
    with _accelerator(args, config) as acc:
        if args.check:
            from accelsmith.flows.workload import run_gemm

            record = run_gemm(acc, A, B, args.prune, _Progress())
            result = record["result"]
        else:
            result = acc.gemm(A, B, prune=args.prune, progress=_Progress())
    where = args.port or "simulation (native Verilator model)"
    print(f"{acc.manifest['top']} on {where}")
    print("  " + result.summary())
    if args.output:
        np.save(args.output, result.C)
        print(f"  C written to {args.output}")
    if args.check:
        if not record["bit_exact"]:
            print(f"  check: FAILED, {record['mismatch']}")
            return 1
        print("  check: C equals the golden model (bit-exact)")
    return 0


def _address(text: str) -> tuple[str, int]:
    import argparse

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT (e.g. 127.0.0.1:1234)")
    return host or "127.0.0.1", int(port)


def _cmd_sim_server(args) -> int:
    from accelsmith.flows.native import NativeSoC, build_native, serve
    from accelsmith.generators.soc import build_soc, csr_csv
    from accelsmith.registry import generator
    import json

    config = load(args.config)
    soc = build_soc(generator(config.family).build(config))
    out = Path(args.output or f"build/sim-server/{soc.top}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "csr.csv").write_text(csr_csv(soc.manifest))
    (out / f"{soc.top}.manifest.json").write_text(json.dumps(soc.manifest, indent=2) + "\n")
    model = NativeSoC(build_native(soc.verilog(), soc.top))
    host, port = args.tcp

    def ready(bound):
        print(f"sim-server: {soc.top} listening on {host}:{bound} (UARTBone over TCP); "
              f"csr.csv: {out / 'csr.csv'}", flush=True)
        print(f"  e.g. litex_server --uart --uart-port socket://{host}:{bound}", flush=True)

    try:
        serve(model, host, port, ready=ready, once=args.once,
              log=lambda msg: print(msg, flush=True))
    finally:
        model.close()
    return 0


def _cmd_build(args) -> int:
    from accelsmith.flows.board import BOARDS, build_board

    if args.list_boards:
        for name, board in BOARDS.items():
            print(f"{name:<12} {board.note}")
        return 0
    if not args.config or not args.board:
        raise InputError("build needs a CONFIG and --board BOARD (accelsmith build --list-boards)")
    config = load(args.config)
    out = Path(args.output or f"build/boards/{args.board}")
    report = build_board(config, args.board, out, baud=args.baud, seed=args.seed)
    print(report.table())
    return 0 if report.ok else 1


def _cmd_program(args) -> int:
    from accelsmith.flows.board import program_board

    print(program_board(args.board, Path(args.bitstream)) or "programmed")
    return 0


def add_parsers(sub, config_help: str):
    from .cli import _background, _pair

    p = sub.add_parser("program", help="load a bitstream into a board's FPGA (openFPGALoader)")
    p.add_argument("board", help="board name (see build --list-boards)")
    p.add_argument("bitstream", help="the .bit (ECP5) or .bin (iCE40) that build wrote")
    p.set_defaults(func=_cmd_program)

    p = sub.add_parser("build", help="a bitstream of the SoC for an FPGA board")
    p.add_argument("config", nargs="?", help=config_help)
    p.add_argument("--board", help="board name (see --list-boards)")
    p.add_argument("--list-boards", action="store_true", help="the boards and their devices")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("-o", "--output", help="output folder (default build/boards/BOARD)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("run", help="a workload on the hardware (the simulated SoC unless "
                       "--port): C = A @ B, or a gaussian config's frame of a scene")
    p.add_argument("config", help=config_help)
    p.add_argument("--a", metavar="A.npy", help="GEMM: A matrix (.npy or .npz)")
    p.add_argument("--b", metavar="B.npy", help="GEMM: B matrix (.npy or .npz)")
    p.add_argument("-o", "--output", metavar="C.npy|frame.png",
                   help="GEMM: write C here; gaussian: the frame's PNG (required)")
    p.add_argument("--scene", help="gaussian: .npz point cloud with cameras or 3DGS .ply")
    p.add_argument("--camera", type=int, default=0, help="gaussian: camera index of the scene")
    p.add_argument("--sorter", help="gaussian: sorter weights (sorter.npz of train-sorter)")
    p.add_argument("--depth-weight", type=_pair, metavar="A,B",
                   help="gaussian: weights exp(-A depth^B) instead of a sorter")
    p.add_argument("--background", type=_background, default=(0.0, 0.0, 0.0), metavar="R,G,B")
    p.add_argument("--crop", type=_region, metavar="X,Y,W,H",
                   help="gaussian: render only this region (pixels; its tiles run)")
    p.add_argument("--port", metavar="URL", help="a serial port or pyserial URL "
                   "(/dev/ttyUSB0, socket://127.0.0.1:1234 of sim-server), or "
                   "etherbone://HOST:PORT of a litex_server")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for a reply on --port")
    p.add_argument("--prune", action="store_true",
                   help="N:M engines: prune a dense A to N:M instead of refusing it")
    p.add_argument("--check", action="store_true",
                   help="compare C with the golden model (exit status 1 if it differs)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sim-server", help="the simulated SoC behind a TCP socket, for "
                       "litex_server / RemoteClient / run --port")
    p.add_argument("config", help=config_help)
    p.add_argument("--tcp", type=_address, default=("127.0.0.1", 1234), metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:1234; port 0 picks a free one)")
    p.add_argument("-o", "--output", help="folder for csr.csv and the manifest "
                   "(default build/sim-server/<top>)")
    p.add_argument("--once", action="store_true", help="exit when the first client leaves")
    p.set_defaults(func=_cmd_sim_server)
