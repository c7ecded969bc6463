"""Synthesis flows: ASIC area/timing on real standard cells, FPGA utilisation and Fmax.

* ``asic``: Yosys maps the core to a Liberty library (sky130 HD) with timing-driven ABC, the way
  OpenROAD-flow-scripts and OpenLane do: the PDK's don't-use cells (:data:`DONT_USE`) are kept
  out of the mapping and constants are tied through one tie cell per polarity. Area and cell
  counts come from the Liberty, the critical path and the setup slack against the requested
  clock from OpenSTA (a violated clock is flagged). Without a Liberty the flow maps to generic
  gates in its own folder (``synth_asic_generic``) and reports counts only: no area, no timing.
* ``ecp5-85f`` / ``ice40-up5k``: the core goes behind :class:`~accelsmith.hdl.harness.ScanHarness`
  (five pins), then Yosys + nextpnr place and route it; utilisation and Fmax come from
  nextpnr's report.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from accelsmith.config import Config
from accelsmith.registry import generator

from . import tools

TARGETS = ("asic", "ecp5-85f", "ice40-up5k")
# Yosys's default ABC script for -constr, less its SAT sweeping (&fraig -x, scorr, dc2, dret):
# on multiplier-heavy cores (a 16x16 adder-tree engine) sweeping alone ran for over 40 minutes,
# while the mapping quality of choices + &nf + buffering/sizing stays (8x8 OS array: -2 % area,
# +7 % critical path against the default script).
ABC_SCRIPT = "+strash;&get,-n;&dch,-f;&nf,{D};&put;buffer;upsize,{D};dnsize,{D};stime,-p"
OUTPUT_LOAD_PF = 0.01  # load on every output port (about two sky130 HD gate inputs)
SKY130_HD_TT = "sky130_fd_sc_hd__tt_025C_1v80.lib"
# Cells that sky130 HD flows keep out of synthesis (OpenROAD-flow-scripts' DONT_USE_CELLS for
# sky130hd, OpenLane's drc-exclude list): probe cells carry metal on every layer, lpflow cells are
# multi-power-domain cells (isolation, keep-alive clock buffers, level shifters) that ABC otherwise
# takes as cheap AND gates and buffers. Glob patterns, as Yosys's -dont_use reads them.
DONT_USE = ("sky130_fd_sc_hd__probe_p_*", "sky130_fd_sc_hd__probec_p_*", "sky130_fd_sc_hd__lpflow_*")
# "logic": nextpnr's name for the device's logic cells, the unit its capacity is counted in.
FPGA = {
    "ecp5-85f": {"family": "ecp5", "synth": "synth_ecp5", "synth_nodsp": "synth_ecp5 -nodsp", "args": ["--85k", "--package", "CABGA381",
                 "--speed", "6", "--lpf-allow-unconstrained"], "device": "LFE5U-85F-6CABGA381",
                 "logic": "TRELLIS_COMB"},
    "ice40-up5k": {"family": "ice40", "synth": "synth_ice40 -dsp", "synth_nodsp": "synth_ice40", "args": ["--up5k", "--package", "sg48",
                   "--pcf-allow-unconstrained"], "device": "iCE40UP5K-SG48", "logic": "ICESTORM_LC"},
}
# Other spellings of the targets, answered with the name to use.
TARGET_ALIASES = {"ecp5": "ecp5-85f", "ecp5-85": "ecp5-85f", "lfe5u-85f": "ecp5-85f",
                  "ice40": "ice40-up5k", "up5k": "ice40-up5k", "ice40up5k": "ice40-up5k",
                  "sky130": "asic"}


@dataclass
class SynthReport:
    target: str
    top: str
    figures: dict
    notes: list[str] = field(default_factory=list)
    logs: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        width = max(len(k) for k in self.figures) + 2
        lines = [f"{self.top} -> {self.target}"]
        for key, value in self.figures.items():
            if isinstance(value, dict):
                continue
            if isinstance(value, bool):
                value = "yes" if value else "NO"
            elif value is None:
                value = "-"
            elif isinstance(value, float):
                value = f"{value:,.2f}"
            elif isinstance(value, int):
                value = f"{value:,}"
            lines.append(f"  {key:<{width}}{value}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _say(msg, quiet):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def find_liberty(explicit: str | None = None) -> Path | None:
    """``explicit`` if given, else the sky130 HD typical-corner Liberty of an installed open PDK."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise tools.ToolError(f"--liberty {explicit}: no such file")
        return path
    roots = [os.environ.get("PDK_ROOT"), Path.home() / ".volare", Path.home() / ".ciel",
             "/usr/local/share/pdk", "/opt/pdk"]
    for root in filter(None, roots):
        candidate = Path(root) / "sky130A" / "libs.ref" / "sky130_fd_sc_hd" / "lib" / SKY130_HD_TT
        if candidate.is_file():
            return candidate
    return None


def _local_liberty(liberty: Path, workdir: Path) -> Path:
    """A plain-text copy in the work directory (Yosys and ABC do not read .gz; YoWASP tools see
    the work directory)."""
    target = workdir / (liberty.name[:-3] if liberty.suffix == ".gz" else liberty.name)
    if not target.exists() or target.stat().st_mtime < liberty.stat().st_mtime:
        opener = gzip.open if liberty.suffix == ".gz" else open
        with opener(liberty, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def _library_cells(lib: Path) -> tuple[str, str | None]:
    """An x2 inverter (input driver for ABC and STA) and a tie-high/low cell, by name."""
    names = re.findall(r'^\s*cell\s*\(\s*"?([\w$]+)"?\s*\)', lib.read_text(errors="replace"), re.M)
    inverter = next((n for n in names if re.search(r"(^|__)inv_2$|^INVx2|^INV_X2", n)), None)
    if inverter is None:
        raise tools.ToolError(f"{lib}: no x2 inverter cell found; the asic flow needs one as the "
                              f"input driving cell (sky130: sky130_fd_sc_hd__inv_2)")
    tie = next((n for n in names if n.endswith("conb_1")), None)
    return inverter, tie


def _utilisation(log: str) -> dict[str, tuple[int, int]]:
    """nextpnr's device utilisation table: resource -> (used, available); the last table wins."""
    return {name: (int(used), int(avail)) for name, used, avail in
            re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log, re.M)}


def _overfull(log: str) -> str | None:
    """From nextpnr's device utilisation table: the resources a design needs more of than the
    device has, e.g. ``TRELLIS_COMB 123730 of 83640``; None if everything fits."""
    over = [f"{name} {used} of {avail}" for name, (used, avail) in _utilisation(log).items()
            if used > avail]
    return ("needs " + ", ".join(over)) if over else None


def _capacity_error(log: str) -> str | None:
    """nextpnr's reason when a design needs more cells of some kind than the device has."""
    for line in log.splitlines():
        if "ERROR" in line and re.search(r"no [Bb][Ee][Ll]s remaining|[Uu]nable to place|"
                                         r"utili[sz]ation|exceed|not enough|too many", line):
            return line.split("ERROR:", 1)[-1].strip()
    return None


def _yosys(script: str, workdir: Path, log_name: str, quiet: bool) -> str:
    (workdir / f"{log_name}.ys").write_text(script)
    _say(f"[synth] yosys ({log_name}) in {workdir} ...", quiet)
    return tools.run([tools.yosys(), "-q", "-l", f"{log_name}.log", f"{log_name}.ys"],
                     workdir / f"{log_name}.out", f"yosys ({log_name})", cwd=workdir)


def synthesize(config: Config, target: str, workdir: str | Path = "build", liberty: str | None = None,
               clock_ns: float | None = None, no_dsp: bool = False, seed: int = 1,
               quiet: bool = False, place: bool = True,
               dont_use: tuple[str, ...] = DONT_USE, keep_hierarchy: bool = False,
               route_minutes: float | None = None) -> SynthReport:
    """Synthesise the design of ``config`` for ``target``; see the module docstring.

    ``dont_use``: ASIC cells (glob patterns) kept out of the mapping; ``()`` allows every cell.
    ``route_minutes`` (FPGA): a budget for nextpnr's place and route; a design that fits but is
    not routed within it is reported with its packed figures and no clock (the WebAssembly
    nextpnr takes hours on a device more than 90 % full).
    ``keep_hierarchy`` (asic): map each submodule on its own instead of the flattened design, so
    ABC works on pieces (the flat mapping of a 16-lane rasteriser did not finish in an hour); no
    logic is optimised across module boundaries, and the timing is still of the whole netlist.

    FPGA reports carry ``netlist_sha256``, the digest of Yosys's netlist: two runs with equal
    digests place and route alike (nextpnr is deterministic for a netlist, device and seed).
    ``place=False`` stops an FPGA run after Yosys (``fits`` and ``fmax_mhz`` are then None)."""
    if target not in TARGETS:
        raise tools.ToolError(f"unknown target '{target}'; allowed: {', '.join(TARGETS)}")
    if keep_hierarchy and target != "asic":
        raise tools.ToolError(f"keeping the hierarchy is for --target asic, not {target} (FPGA "
                              "targets: --by-module maps without flattening)")
    if config.values.get("dsp") == "ecp5" and target != "ecp5-85f":
        raise tools.ToolError(f"{config.source}: dsp 'ecp5' instantiates ECP5 DSP blocks, which "
                              f"target {target} does not have: use dsp 'generic' or --target ecp5-85f")
    design = generator(config.family).build(config)
    lib_src = find_liberty(liberty) if target == "asic" else None
    # Generic-gate counts never share a folder (or a report.json) with a Liberty run.
    folder = f"synth_{target}{'_generic' if target == 'asic' and lib_src is None else ''}" \
             f"{'_nodsp' if no_dsp else ''}{'_hier' if keep_hierarchy else ''}"
    workdir = Path(workdir).resolve() / design.top / folder
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if target == "asic" and lib_src is None:
        report = _asic_generic(design, workdir, quiet)
    elif target == "asic":
        report = _asic(design, workdir, lib_src, clock_ns, quiet, dont_use, keep_hierarchy)
    else:
        report = _fpga(design, target, workdir, clock_ns, no_dsp, seed, quiet, place, route_minutes)
    report.seconds = round(time.monotonic() - t0, 1)
    (workdir / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return report


GENERIC_NOTE = ("NOT an area or timing estimate: no Liberty found (give --liberty FILE or install "
                "the sky130 PDK under $PDK_ROOT), so the design was mapped to generic gates and "
                "these figures are gate and transistor counts only")


def _asic_generic(design, workdir: Path, quiet) -> SynthReport:
    """Generic-gate counts for a machine without a Liberty: cells, transistors, logic levels."""
    (workdir / "design.il").write_text(design.rtlil())
    top = design.top
    _yosys(f"read_rtlil design.il\nsynth -flatten -top {top}\n"
           "abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX\nopt_clean\ndelete t:$scopeinfo\n"
           "tee -q -o stat.json stat -json -tech cmos\ntee -q -o ltp.txt ltp -noff\n",
           workdir, "asic_generic", quiet)
    stat = json.loads((workdir / "stat.json").read_text())["design"]
    levels = re.search(r"Longest topological path .*?\(length=(\d+)\)",
                       (workdir / "ltp.txt").read_text())
    return SynthReport("asic", top, {
        "cells": stat["num_cells"],
        "transistors": stat.get("estimated_num_transistors"),
        "logic_levels": int(levels.group(1)) if levels else None,
        "cells_by_type": stat["num_cells_by_type"],
    }, [GENERIC_NOTE], {"yosys": str(workdir / "asic_generic.log")})


def _asic(design, workdir: Path, lib_src: Path, clock_ns, quiet, dont_use,
          keep_hierarchy=False) -> SynthReport:
    (workdir / "design.il").write_text(design.rtlil())
    top = design.top
    lib = _local_liberty(lib_src, workdir)
    period_ns = clock_ns or 5.0
    inverter, tie = _library_cells(lib)
    # With a constraint file ABC also buffers and resizes (buffer; upsize; dnsize): without it a
    # single small gate drives thousands of enable/clear loads and the timing is meaningless.
    (workdir / "abc.constr").write_text(f"set_driving_cell {inverter}\nset_load {OUTPUT_LOAD_PF}\n")
    # One tie cell per polarity for the whole design, as sky130 flows do (a cell per constant bit
    # added thousands of conb_1 cells to a 4x4 array).
    tie_map = f"hilomap -singleton -hicell {tie} HI -locell {tie} LO\n" if tie else ""
    excluded = "".join(f" -dont_use {pattern}" for pattern in dont_use)
    _yosys(f"read_rtlil design.il\nsynth {'' if keep_hierarchy else '-flatten '}-top {top}\n"
           f"dfflibmap -liberty {lib.name}{excluded}\n"
           f"abc -liberty {lib.name}{excluded} -constr abc.constr -D {period_ns * 1000:.0f} "
           f"-script {ABC_SCRIPT}\n"
           f"opt_clean\ndelete t:$scopeinfo\n{tie_map}"
           f"tee -q -o stat.json stat -json -liberty {lib.name}\n"
           "write_verilog -noattr -noexpr netlist.v\n", workdir, "asic", quiet)
    stat = json.loads((workdir / "stat.json").read_text())["design"]
    figures = {"area_um2": round(float(stat["area"]), 2), "cells": stat["num_cells"]}
    notes = [f"Liberty: {lib_src} (abc -D {period_ns * 1000:.0f} ps: choices, &nf mapping, buffering "
             f"and sizing, no SAT sweeping); don't-use cells: {', '.join(dont_use) or 'none'}; "
             f"core ports are the design's own (no IO harness): 0 delay, driven by {inverter}, "
             f"{OUTPUT_LOAD_PF} pF on outputs; no placement, wires or clock tree"]
    if keep_hierarchy:
        notes.append("hierarchy kept: each submodule mapped on its own, no optimisation across "
                     "module boundaries")
    logs = {"yosys": str(workdir / "asic.log")}
    cells = stat["num_cells_by_type"]
    figures["flip_flops"] = sum(n for c, n in cells.items() if "df" in c.split("__")[-1])
    sta = tools.opensta()
    if sta is None:
        notes.append("OpenSTA ('sta') not on PATH (Debian: apt-get install opensta): no timing")
    else:
        _say("[synth] OpenSTA timing ...", quiet)
        script = (f"read_liberty {lib}\nread_verilog {workdir / 'netlist.v'}\nlink_design {top}\n"
                  f"create_clock -name clk -period {period_ns} [get_ports clk]\n"
                  "set data_inputs [delete_from_list [all_inputs] [get_ports clk]]\n"
                  "set_input_delay 0 -clock clk $data_inputs\n"
                  f"set_driving_cell -lib_cell {inverter} $data_inputs\n"
                  "set_output_delay 0 -clock clk [all_outputs]\n"
                  f"set_load {OUTPUT_LOAD_PF} [all_outputs]\n"
                  "report_checks -path_delay max -digits 3\n"
                  "puts \"WORST_SLACK [sta::format_time [sta::worst_slack_cmd max] 4]\"\nexit\n")
        (workdir / "sta.tcl").write_text(script)
        text = tools.run([sta, "-no_init", "-no_splash", "-exit", str(workdir / "sta.tcl")],
                         workdir / "sta.log", "OpenSTA", cwd=workdir)
        slack = re.search(r"WORST_SLACK\s+(-?[\d.]+)", text)
        if not slack:
            raise tools.ToolError(f"OpenSTA printed no worst slack; log: {workdir / 'sta.log'}")
        slack_ns = float(slack.group(1))
        critical = period_ns - slack_ns
        figures.update({"clock_ns": period_ns, "setup_slack_ns": round(slack_ns, 3),
                        "timing_met": slack_ns >= 0, "critical_path_ns": round(critical, 3),
                        "fmax_mhz": round(1000.0 / critical, 1)})
        if slack_ns < 0:
            notes.insert(0, f"TIMING VIOLATED: setup slack {slack_ns:.3f} ns against the requested "
                            f"{period_ns:g} ns clock ({1000 / period_ns:.0f} MHz); the critical path "
                            f"of {critical:.3f} ns allows at most {1000 / critical:.1f} MHz: ask for "
                            f"--clock-ns {math.ceil(critical * 10) / 10:g} or pipeline the path")
        logs["sta"] = str(workdir / "sta.log")
    figures["cells_by_type"] = cells
    return SynthReport("asic", design.top, figures, notes, logs)


def _failed_in_abc9(log: Path) -> bool:
    """Whether Yosys stopped inside its abc9 pass (the last numbered step a sub-step of ABC9)."""
    steps = re.findall(r"^([\d.]+) Executing (\S+)", log.read_text(errors="replace"), re.M)
    abc9 = [number for number, name in steps if name == "ABC9"]
    return bool(abc9) and steps[-1][0].startswith(abc9[-1])


def classic_abc_ecp5(top: str, synth: str = "synth_ecp5") -> tuple[str, str]:
    """``synth_ecp5`` with its abc9 LUT mapping replaced by classic ABC, as the options of a first
    ``{synth} -top {top}`` (the steps up to the LUT mapping) and the script that follows it."""
    # Yosys 0.70's abc9 asserts in abc_ops_reintegrate on some netlists (a WS 8x8 baseline, the
    # ECPIX-5 SoC) and synth_ecp5 has no switch to avoid it: map LUT4s plus PFU muxes (up to 7
    # inputs) with classic ABC in between.
    return ("-run :map_luts", "techmap -map +/lattice/latches_map.v\nabc -lut 4:7 -dress\n"
                              f"clean\n{synth} -top {top} -run map_cells:")


ABC9_FALLBACK_NOTE = "LUTs mapped by classic abc (abc -lut 4:7), not abc9, which failed inside Yosys"


def _yosys_fpga(synth: str, top: str, workdir: Path, quiet: bool) -> list[str]:
    """Yosys's FPGA mapping of ``design.il`` to ``design.json`` and ``stat.json``; returns notes
    on how the LUTs were mapped when that is not ``synth``'s own abc9."""
    tail = "delete t:$scopeinfo\ntee -q -o stat.json stat -json\n"
    try:
        _yosys(f"read_rtlil design.il\n{synth} -top {top} -json design.json\n{tail}", workdir,
               "fpga", quiet)
        return []
    except tools.ToolError as exc:
        if not _failed_in_abc9(workdir / "fpga.log"):
            raise
        cause = str(exc).splitlines()[-1].strip()[:120]
    _say("[synth] abc9 failed inside Yosys; mapping LUTs with classic abc instead", quiet)
    (workdir / "fpga.log").rename(workdir / "fpga_abc9_failed.log")
    first, rest = classic_abc_ecp5(top, synth)
    _yosys(f"read_rtlil design.il\n{synth} -top {top} {first}\n{rest} -json design.json\n{tail}",
           workdir, "fpga", quiet)
    return [f"{ABC9_FALLBACK_NOTE} ({cause}; log fpga_abc9_failed.log)"]


def _fpga_counts(cells: dict, family: str) -> dict:
    """LUTs (a carry cell as 2), flip-flops, DSPs, block RAMs and LUT RAMs among Yosys's cells."""
    count = lambda *names: sum(n for c, n in cells.items() if c in names or any(
        c.startswith(p[:-1]) for p in names if p.endswith("*")))
    if family == "ecp5":
        return {"luts": count("LUT4") + 2 * count("CCU2C"), "ffs": count("TRELLIS_FF"),
                "dsps": count("MULT18X18D"), "brams": count("DP16KD"),
                "lutrams": count("TRELLIS_DPR16X4")}
    return {"luts": count("SB_LUT4"), "ffs": count("SB_DFF*"), "dsps": count("SB_MAC16"),
            "brams": count("SB_RAM40_4K"), "lutrams": 0}


@dataclass
class ModuleArea:
    """One row of :func:`module_breakdown`: ``name`` (instances of one component share a row,
    their indices as ``*``), ``instances``, and the FPGA cells of them all with their own
    submodules (``cells``; for the row ``(own logic)``, the top's logic outside submodules)."""
    name: str
    instances: int
    cells: dict


def module_breakdown(config: Config, target: str, workdir: str | Path = "build",
                     quiet: bool = False) -> list[ModuleArea]:
    """Where an FPGA design's cells go: Yosys maps the bare core (no scan harness) as
    :func:`synthesize` does but without flattening, and counts the cells of each submodule of
    the top (``setup``) and of theirs (``setup.skip``), deeper ones folded into those; instances
    of one component (``lane_0_0``, ``lane_0_1``, ...) share a row. Nothing is optimised across
    module boundaries, and nothing is placed."""
    if target not in FPGA:
        raise tools.ToolError(f"the breakdown by module is for FPGA targets: {', '.join(FPGA)}; "
                              f"not '{target}'")
    spec = FPGA[target]
    design = generator(config.family).build(config)
    workdir = Path(workdir).resolve() / design.top / f"modules_{target}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.il").write_text(design.rtlil())
    _yosys_fpga(f"{spec['synth']} -noflatten", design.top, workdir, quiet)
    modules = json.loads((workdir / "stat.json").read_text())["modules"]
    cells = {name.lstrip("\\"): _fpga_counts(m.get("num_cells_by_type", {}), spec["family"])
             for name, m in modules.items()}
    top = design.top
    rows: dict[str, ModuleArea] = {}
    for name in sorted(cells):
        parts = name.split(".")
        if not 2 <= len(parts) <= 3 or parts[0] != top:
            continue
        # a submodule's own cells; a sub-submodule's with everything below it
        inclusive = {k: sum(c[k] for n, c in cells.items() if n == name or (
                         len(parts) == 3 and n.startswith(name + "."))) for k in cells[name]}
        label = re.sub(r"\d+", "*", ".".join(parts[1:]))
        row = rows.setdefault(label, ModuleArea(label, 0, dict.fromkeys(inclusive, 0)))
        row.instances += 1
        row.cells = {k: row.cells[k] + v for k, v in inclusive.items()}
    return sorted(rows.values(), key=lambda r: -r.cells["luts"]) + [ModuleArea("(own logic)", 1, cells[top])]


def breakdown_table(rows: list[ModuleArea]) -> list[str]:
    """:func:`module_breakdown` as a Markdown table, with each row's share of the LUTs."""
    keys = ("luts", "ffs", "dsps", "brams", "lutrams")
    total = {k: sum(r.cells[k] for r in rows) for k in keys}
    lines = ["| module | instances | LUTs each | LUTs | share | FFs | DSPs | BRAMs | LUT RAMs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c = r.cells
        lines.append(f"| {r.name} | {r.instances} | {round(c['luts'] / r.instances):,} | {c['luts']:,} | "
                     f"{100 * c['luts'] / max(total['luts'], 1):.0f} % | {c['ffs']:,} | "
                     f"{c['dsps']} | {c['brams']} | {c['lutrams']} |")
    lines.append(f"| all | | | {total['luts']:,} | 100 % | {total['ffs']:,} | {total['dsps']} | "
                 f"{total['brams']} | {total['lutrams']} |")
    return lines


def _fpga(design, target, workdir: Path, clock_ns, no_dsp, seed, quiet, place,
          route_minutes=None) -> SynthReport:
    from accelsmith.hdl.harness import ScanHarness

    spec = FPGA[target]
    harness = ScanHarness(design.component)
    top = "harness"
    (workdir / "design.il").write_text(rtlil.convert(harness, name=top, emit_src=False))
    synth = spec["synth_nodsp" if no_dsp else "synth"]
    mapper = _yosys_fpga(synth, top, workdir, quiet)
    stat = json.loads((workdir / "stat.json").read_text())["design"]["num_cells_by_type"]
    # Yosys's LUT count stands until nextpnr's packing replaces it with the device's own count.
    figures = _fpga_counts(stat, spec["family"])
    del figures["lutrams"]
    figures["luts_from"] = "yosys (LUT4 cells, a carry cell as 2; before packing)"
    figures["harness_ffs"] = harness.in_bits + harness.out_bits
    figures["netlist_sha256"] = hashlib.sha256((workdir / "design.json").read_bytes()).hexdigest()
    freq = 1000.0 / clock_ns if clock_ns else (100.0 if spec["family"] == "ecp5" else 30.0)
    notes = [f"{spec['device']}: the core sits behind a serial scan harness (5 pins); its "
             f"{harness.in_bits} input and {harness.out_bits} output flip-flops are included "
             f"in the figures above",
             f"constraint {freq:g} MHz, nextpnr seed {seed}" + (", DSP blocks disabled" if no_dsp else ""),
             *mapper]
    logs = {"yosys": str(workdir / "fpga.log")}
    if not place:
        figures.update(fits=None, fmax_mhz=None)
        return SynthReport(target, design.top, figures, [notes[0], *mapper, "not placed and routed"],
                           logs)
    nextpnr = [tools.nextpnr(spec["family"]), *spec["args"], "--json", "design.json"]
    logs["nextpnr"] = str(workdir / "nextpnr.log")
    # nextpnr-ecp5 goes on placing a design that overfills the device; packing alone tells.
    _say(f"[synth] nextpnr-{spec['family']} packing for {spec['device']} ...", quiet)
    packed = tools.run([*nextpnr, "--pack-only"], workdir / "nextpnr_pack.log",
                       f"nextpnr-{spec['family']} (pack)", cwd=workdir)
    reason = _overfull(packed)
    used, available = _utilisation(packed)[spec["logic"]]
    figures.update(luts=used, luts_pct=round(100 * used / available, 1),
                   luts_from=f"nextpnr ({spec['logic']} cells used after packing, of {available:,})")
    if reason is None:
        _say(f"[synth] nextpnr-{spec['family']} place and route ...", quiet)
        try:
            with tools.time_limit(None if route_minutes is None else 60 * route_minutes):
                tools.run([*nextpnr, "--freq", f"{freq:g}", "--report", "pnr.json", "--seed",
                           str(seed), "--timing-allow-fail"], workdir / "nextpnr.log",
                          f"nextpnr-{spec['family']}", cwd=workdir)
        except tools.ToolTimeout as exc:
            figures.update(fits=True, fmax_mhz=None)
            notes.insert(0, f"fits {spec['device']} after packing; place and route not finished, "
                            f"so no clock: {exc}")
            return SynthReport(target, design.top, figures, notes, logs)
        except tools.ToolError:
            reason = _capacity_error((workdir / "nextpnr.log").read_text(errors="replace"))
            if reason is None:
                raise
    else:
        logs["nextpnr"] = str(workdir / "nextpnr_pack.log")
    if reason is not None:
        figures.update(fits=False, fmax_mhz=None)
        notes.insert(0, f"does not fit {spec['device']} (figures are Yosys's mapping, not placed): "
                        f"{reason}")
        return SynthReport(target, design.top, figures, notes, logs)
    pnr = json.loads((workdir / "pnr.json").read_text())
    fmax = [v["achieved"] for k, v in pnr.get("fmax", {}).items() if "clk" in k] or \
           [v["achieved"] for v in pnr.get("fmax", {}).values()]
    figures["fits"] = True
    figures["fmax_mhz"] = round(min(fmax), 1) if fmax else None
    figures["utilization"] = {k: v for k, v in pnr.get("utilization", {}).items() if v.get("used")}
    return SynthReport(target, design.top, figures, notes, logs)
