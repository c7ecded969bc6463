"""Simulation flow: generate, build with Verilator or Icarus through cocotb's runner, run the
family's testbench, summarise."""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from accelsmith.config import Config
from accelsmith.generators import Design, write_design
from accelsmith.hdl.dsp import sim_models_for
from accelsmith.registry import generator, testbench_module

from . import tools

# Icarus in its default -g2012 mode runs declaration initialisers before any process starts, so
# Yosys's "always @*" wake-up trick never fires; Verilog-2005 semantics make it fire at time 0.
ICARUS_ARGS = ["-g2005"]
CLOCK_NS = 10  # the testbenches' clock period
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  "-Wno-UNOPTFLAT", "-O2"]
WAVES_WARN_MB = 200   # estimated waveform size above which --waves warns before the run
# Waveform bytes per signal bit: (once, per random tile), rounded up from ws_4x4_int8: FST 0.58
# (Icarus) and 0.78 (Verilator) per tile at 200 tiles; VCD (Verilator without the lz4 headers)
# 1,880 at 200 tiles and 441 at 40, so about 81 once (the header and the first values) and 9.0
# per tile.
BYTES_PER_BIT = {"fst": (10.0, 1.0), "vcd": (100.0, 10.0)}


def _dump_module(build_dir: Path, top: str) -> Path:
    """A Verilog-2005 module that dumps ``top`` to ``<top>.fst`` (cocotb 2.1's own uses a
    SystemVerilog ``string``, which does not parse under the ``-g2005`` Icarus needs)."""
    path = build_dir / "accelsmith_dump.v"
    path.write_text("module accelsmith_dump;\ninitial begin\n"
                    f'    $dumpfile("{build_dir / (top + ".fst")}");\n'
                    f"    $dumpvars(0, {top});\nend\nendmodule\n")
    return path


def signal_bits(verilog: str) -> int:
    """Bits of every wire and reg the Verilog declares (what a full dump records)."""
    total = 0
    for msb, lsb in re.findall(r"^\s*(?:input|output|inout|wire|reg)\s+(?:signed\s+)?"
                               r"(?:\[(\d+):(\d+)\])?", verilog, re.M):
        total += abs(int(msb) - int(lsb)) + 1 if msb else 1
    return total


def waves_estimate_mb(verilog: str, vectors: int, fmt: str) -> float:
    """Rough size of a full dump (``fmt`` 'fst' or 'vcd') of ``vectors`` random tiles."""
    once, per_tile = BYTES_PER_BIT[fmt]
    return signal_bits(verilog) * (once + vectors * per_tile) / 1e6


@dataclass
class SimResult:
    passed: bool
    simulator: str
    seed: int
    vectors: int
    top: str
    seconds: float
    build_seconds: float
    log: Path
    waves: Path | None
    failures: list[str]
    cycles: int = 0            # simulated clock cycles of the test
    test_seconds: float = 0.0  # wall time of the cocotb test itself (no simulator start-up)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"{verdict}: {self.top} on {self.simulator}, {self.vectors} random tiles, seed "
                f"{self.seed} (build {self.build_seconds:.1f} s, run {self.seconds:.1f} s)")
        for failure in self.failures:
            text += f"\n  {failure}"
        if self.waves:
            text += f"\n  waveform: {self.waves}"
        text += f"\n  log: {self.log}"
        if not self.passed:
            text += f"\n  reproduce with --seed {self.seed}"
        return text


def _say(msg: str, quiet: bool):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def simulate(config: Config, simulator: str = "verilator", seed: int | None = None,
             vectors: int = 2000, waves: bool = False, workdir: str | Path = "build",
             quiet: bool = False, design: Design | None = None) -> SimResult:
    """Generate the design of ``config``, build it and run its cocotb testbench.

    ``design``: simulate this elaboration of ``config`` instead (same ports and manifest; the
    suite's mutation tests pass deliberately broken engines to check the testbench fails)."""
    from cocotb_tools.runner import get_runner

    if simulator not in ("verilator", "icarus"):
        raise tools.ToolError(f"unknown simulator '{simulator}'; use verilator or icarus")
    if simulator == "icarus" and tools.iverilog() is None:
        raise tools.ToolError("'iverilog' is not on PATH; install Icarus Verilog (Debian: "
                              "apt-get install iverilog) or use --sim verilator")
    seed = random.randrange(1 << 31) if seed is None else seed
    design = design or generator(config.family).build(config)
    root = Path(workdir).resolve() / design.top
    v_path, m_path = write_design(design, root)
    build_dir = root / f"sim_{simulator}{'_waves' if waves else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    build_args = list(VERILATOR_ARGS if simulator == "verilator" else ICARUS_ARGS)
    sources = [v_path, *sim_models_for(v_path.read_text())]
    if waves:
        fmt = "vcd" if simulator == "verilator" and not tools.verilator_fst() else "fst"
        if simulator == "icarus":
            sources.append(_dump_module(build_dir, design.top))
            build_args += ["-s", "accelsmith_dump"]
        elif fmt == "fst":
            build_args.append("--trace-fst")
        else:
            _say("[sim] note: writing VCD, not FST: Verilator's FST writer needs the lz4 headers "
                 "(Debian: apt-get install liblz4-dev)", quiet)
        size = waves_estimate_mb(v_path.read_text(), vectors, fmt)
        if size > WAVES_WARN_MB:
            print(f"warning: --waves with {vectors} tiles will write a {fmt.upper()} waveform of "
                  f"about {size:,.0f} MB; fewer --vectors (e.g. "
                  f"{max(8, int(vectors * WAVES_WARN_MB / size))}) keep it small",
                  file=sys.stderr, flush=True)
    if simulator == "verilator":
        os.environ.update(tools.verilator_env())
    runner = get_runner(simulator)
    _say(f"[sim] building {design.top} with {simulator} in {build_dir} ...", quiet)
    t0 = time.monotonic()
    build_log = build_dir / "build.log"
    try:
        with tools.heartbeat(f"{simulator} build", build_log):
            # Verilator traces when cocotb's runner is told waves (its --trace; FST with the
            # --trace-fst above); Icarus dumps through accelsmith_dump, not cocotb's module.
            runner.build(sources=sources, hdl_toplevel=design.top, build_dir=build_dir,
                         always=simulator == "icarus", build_args=build_args,
                         waves=waves and simulator == "verilator", log_file=build_log,
                         timescale=("1ns", "1ps"))
    except (SystemExit, RuntimeError) as exc:
        raise tools.ToolError(f"{simulator} build failed ({exc}); log: {build_log}\n"
                              + "\n".join(tools.error_lines(build_log.read_text(errors="replace"))))
    t1 = time.monotonic()
    _say(f"[sim] built in {t1 - t0:.1f} s; running {vectors} tiles (seed {seed}) ...", quiet)
    results = build_dir / "results.xml"
    test_log = build_dir / "test.log"
    progress = build_dir / "progress.json"
    for stale in (results, progress):
        stale.unlink(missing_ok=True)
    try:
        with tools.heartbeat(f"{simulator} simulation", test_log, every=10.0,
                             status=lambda: _progress_line(progress, t1)):
            runner.test(test_module=testbench_module(config.family), hdl_toplevel=design.top,
                        hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=build_dir,
                        seed=seed, waves=waves, results_xml=str(results), log_file=test_log,
                        extra_env={"ACCELSMITH_MANIFEST": str(m_path), "ACCELSMITH_PROGRESS":
                                   str(progress), "ACCELSMITH_VECTORS": str(vectors),
                                   "ACCELSMITH_SEED": str(seed)})
    except (SystemExit, RuntimeError):
        pass  # a failing simulator run is reported from the results file below
    t2 = time.monotonic()
    failures, cycles, test_seconds = _parse_results(results, test_log)
    wave_files = sorted(p for p in build_dir.rglob("*") if p.suffix in (".fst", ".vcd"))
    result = SimResult(not failures, simulator, seed, vectors, design.top, t2 - t1, t1 - t0,
                       test_log, wave_files[0] if waves and wave_files else None, failures,
                       cycles, test_seconds)
    return result


def _progress_line(path: Path, start: float) -> str | None:
    """'1,250/2,009 tile jobs, 412,000 cycles (18,300 cycles/s)' from the testbench's file."""
    try:
        p = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    rate = p["cycles"] / max(1e-3, time.monotonic() - start)
    return f"{p['jobs']:,}/{p['total']:,} tile jobs, {p['cycles']:,} cycles ({rate:,.0f} cycles/s)"


def _parse_results(results: Path, log: Path) -> tuple[list[str], int, float]:
    """Failures, simulated cycles and test wall time from cocotb's JUnit results file."""
    if not results.exists():
        return [f"the simulator produced no results (crash?); see {log}"], 0, 0.0
    cases = list(ET.parse(results).iter("testcase"))
    if not cases:
        return ["no test ran"], 0, 0.0
    failures, sim_ns, seconds = [], 0.0, 0.0
    for case in cases:
        for bad in list(case.iter("failure")) + list(case.iter("error")):
            msg = (bad.get("message") or bad.text or "").strip()
            failures.append(f"{case.get('name')}: {msg}")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        sim_ns += float(props.get("sim_time_duration", 0))
        seconds += float(case.get("time", 0))
    return failures, round(sim_ns / CLOCK_NS), seconds
