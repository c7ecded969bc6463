"""One generator per family: validated config -> Amaranth top-level component + manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amaranth.back import rtlil, verilog
from amaranth.lib import wiring

from accelsmith.config import Param
from accelsmith.models.intformat import IntFormat, accumulator_format

__all__ = ["Design", "NUMBER_CHECKS", "NUMBER_PARAMS", "SOC_PARAMS", "integration", "number_formats", "ports_of",
           "semantics", "write_design"]

# Operand and accumulator formats and the module name: the same keys in every tensor family.
NUMBER_PARAMS = (
    Param("a_bits", int, "Width of A elements.", default=8, minimum=2, maximum=16),
    Param("a_signed", bool, "A elements are two's complement (else unsigned).", default=True),
    Param("b_bits", int, "Width of B elements.", default=8, minimum=2, maximum=16),
    Param("b_signed", bool, "B elements are two's complement (else unsigned).", default=True),
    Param("max_k", int, "Longest reduction K the default accumulator width never overflows for.",
          default=256, minimum=1, maximum=1 << 20),
    Param("acc_bits", int, "Accumulator width. Narrower than the default, sums wrap modulo "
          "2**acc_bits (two's complement if either operand is signed).", default=None, minimum=2,
          maximum=64, default_doc="just wide enough for `max_k`"),
    Param("acc_wraps", bool, "States that an accumulator too narrow for even one product "
          "(K = 1) is wanted: its sums wrap modulo 2**acc_bits from the first step. Required for "
          "such an `acc_bits`, so a too-small width is never taken silently.", default=False),
    Param("name", str, "Verilog module name of the top level.", default=None,
          pattern=r"[A-Za-z_][A-Za-z0-9_]{0,62}", default_doc="derived from the parameters"),
)


# The SoC around an engine (``generate --soc``, ``run``, ``sim-server``): the same keys in every
# family, part of the config hash the driver checks.
SOC_PARAMS = (
    Param("soc_a_beats", int, "SoC: beats the A operand buffer holds.", default=4096, minimum=16,
          maximum=1 << 18),
    Param("soc_b_beats", int, "SoC: beats the B operand buffer holds.", default=4096, minimum=16,
          maximum=1 << 18),
    Param("soc_c_rows", int, "SoC: result rows the C buffer holds.", default=1024, minimum=16,
          maximum=1 << 18),
    Param("soc_jobs", int, "SoC: engine jobs per run (job buffer words).", default=256, minimum=1,
          maximum=1 << 16),
    Param("soc_clock_mhz", int, "SoC: clock frequency the watchdog is counted in.", default=100,
          minimum=1, maximum=1000),
    Param("soc_watchdog_us", int, "SoC: the bridge drops a frame not finished within this time "
          "(LiteX UARTBone: 100 ms).", default=100_000, minimum=1, maximum=10_000_000),
)

def number_formats(values: dict) -> tuple[IntFormat, IntFormat, IntFormat]:
    """(A, B, accumulator) formats of a validated config with :data:`NUMBER_PARAMS`."""
    a_fmt = IntFormat(values["a_bits"], values["a_signed"])
    b_fmt = IntFormat(values["b_bits"], values["b_signed"])
    acc_fmt = accumulator_format(a_fmt, b_fmt, values["max_k"])
    if values["acc_bits"] is not None:
        acc_fmt = IntFormat(values["acc_bits"], acc_fmt.signed)
    return a_fmt, b_fmt, acc_fmt


def _narrow_accumulator_stated(values: dict) -> str | None:
    """An accumulator that overflows at K = 1 needs ``acc_wraps: true``."""
    if values["acc_bits"] is None or values["acc_wraps"]:
        return None
    a_fmt, b_fmt, acc_fmt = number_formats(values)
    if _overflow_free_k(a_fmt, b_fmt, acc_fmt) >= 1:
        return None
    need = accumulator_format(a_fmt, b_fmt, 1).bits
    return (f"key 'acc_bits' has value {values['acc_bits']}, too narrow for even one {a_fmt} x "
            f"{b_fmt} product ({need} bits): sums would wrap from K = 1. Give acc_bits >= {need}, "
            f"leave it out (the default never overflows up to max_k = {values['max_k']}), or add "
            f"'acc_wraps: true' to state that wrap-around is wanted.")


# Rules across the number keys, shared by every family that has them.
NUMBER_CHECKS = (_narrow_accumulator_stated,)


def semantics(a_fmt: IntFormat, b_fmt: IntFormat, acc_fmt: IntFormat) -> dict:
    """The manifest's statement of the arithmetic (wrap-around, overflow-free K)."""
    return {"accumulator": f"{acc_fmt}: sums wrap modulo 2**{acc_fmt.bits}"
                           + (" (two's complement)" if acc_fmt.signed else ""),
            "never_overflows_up_to_k": _overflow_free_k(a_fmt, b_fmt, acc_fmt)}


def _overflow_free_k(a_fmt, b_fmt, acc_fmt) -> int:
    """Largest K whose sums always fit the accumulator (capped at 2**32)."""
    lo, hi = 0, 1 << 32
    while lo < hi:
        mid = (lo + hi + 1) // 2
        need = accumulator_format(a_fmt, b_fmt, mid)
        lo, hi = (mid, hi) if need.bits <= acc_fmt.bits else (lo, mid - 1)
    return lo


def integration(component: wiring.Component, geometry) -> tuple[dict, dict]:
    """``(streams, integration)`` for a manifest: each stream's ports and exact payload layout,
    and the facts an integrator needs (clock, reset, register bus timing, handshake, Verilog
    dialect), in the manifest's machine-readable form; docs/integration.md explains them."""
    layouts = geometry.stream_layouts()
    streams = {}
    for name, direction, fmt in (("a", "in", geometry.a_fmt), ("b", "in", geometry.b_fmt),
                                 ("c", "out", geometry.acc_fmt)):
        payload = len(getattr(component, name).payload.as_value())
        if payload != layouts[name]["payload_bits"]:
            raise AssertionError(f"stream {name}: the layout describes "
                                 f"{layouts[name]['payload_bits']} bits, the port has {payload}")
        streams[name] = {"direction": direction, "element": str(fmt), "ports": {
            "valid": f"{name}__valid", "ready": f"{name}__ready", "payload": f"{name}__payload"},
            **layouts[name]}
    addr_width = len(component.csr.addr)
    facts = {
        "clock": {"port": "clk", "edge": "rising", "domains": 1,
                  "note": "every port is synchronous to clk; cross clock domains outside the engine"},
        "reset": {"port": "rst", "polarity": "active high", "synchronous": True,
                  "min_cycles": 1, "note": "sampled on the rising edge of clk: after one edge "
                  "with rst high the engine is idle (STATUS 0, registers at their reset values, "
                  "no result beat offered); registers also start at those values in simulation "
                  "and on FPGAs (Verilog initial values)"},
        "register_bus": {"ports": {"addr": "csr__addr", "w_en": "csr__w_en",
                                   "w_data": "csr__w_data", "r_data": "csr__r_data"},
                         "addr_width": addr_width, "data_width": 32, "addressing": "word",
                         "read_latency_cycles": 0,
                         "read": "combinational: r_data shows the register at addr in the same "
                                 "cycle; 'wo' registers read 0",
                         "write": "w_en high for one cycle writes w_data at the rising edge "
                                  "ending it; a 'wo' register acts on that edge only"},
        "streams": {"protocol": "valid/ready (amaranth.lib.stream)",
                    "transfer": "a beat moves on a rising edge of clk where valid and ready are "
                                "both high",
                    "rules": "once valid is high, valid and payload stay unchanged until the beat "
                             "is accepted (the testbench checks this on c and holds to it on a and "
                             "b); ready may be high before valid"},
        "verilog": {"dialect": "Verilog-2005 (Yosys write_verilog of the Amaranth design)",
                    "icarus": "iverilog -g2005: under the default -g2012 declaration initialisers "
                              "run before any process starts, so Yosys's 'always @*' blocks may "
                              "not be evaluated at time 0 and outputs can stay X",
                    "verilator": "build with -Wno-WIDTHEXPAND -Wno-WIDTHTRUNC (Amaranth's "
                                 "arithmetic widens and truncates on purpose)"},
    }
    return streams, facts


@dataclass
class Design:
    """A generated top level: the component, its Verilog module name and its manifest."""

    top: str
    component: wiring.Component
    manifest: dict
    #: makes the component the SoC wraps, when it is not ``component`` itself (made on demand:
    #: Amaranth warns of components created and never elaborated)
    soc_engine: Callable[[], wiring.Component] | None = None

    def verilog(self) -> str:
        return verilog.convert(self.component, name=self.top, emit_src=False)

    def rtlil(self) -> str:
        """The design as Yosys's own netlist text, what the synthesis flows read."""
        return rtlil.convert(self.component, name=self.top, emit_src=False)


def ports_of(component: wiring.Component) -> list[dict]:
    """The Verilog ports Amaranth emits for a component (``clk``/``rst`` plus its signature)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": len(value.as_value() if hasattr(value, "as_value") else value)})
    return ports


def write_design(design: Design, outdir: str | Path) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.manifest.json`` into ``outdir``; returns both paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    v_path = outdir / f"{design.top}.v"
    m_path = outdir / f"{design.top}.manifest.json"
    v_path.write_text(design.verilog())
    manifest = dict(design.manifest, verilog=v_path.name)
    m_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return v_path, m_path
