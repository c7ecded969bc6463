"""FPGA DSP blocks instantiated directly, where synthesis would leave their registers unused.

Yosys maps a behavioural ``*`` onto an ECP5 ``MULT18X18D`` as a combinational multiplier and
keeps the registers around it in the fabric; nextpnr then places those flip-flops wherever the
rest of the array pulls them, and the routes to and from the DSP column dominate the clock
(an 8x8 INT8 2D-Matrix on ECP5-85F: 95 MHz with fabric registers on both sides, 138 MHz with the
DSP's own input and output registers). :func:`ecp5_registered_product` instantiates the block
with those registers.

For simulation the flows add :data:`SIM_MODELS` (a behavioural model of the configuration used
here) whenever the Verilog instantiates a primitive it names; synthesis for the device uses
the primitive itself (Yosys's ECP5 cell library).
"""

from __future__ import annotations

import re
from pathlib import Path

from amaranth import *

__all__ = ["SIM_MODELS", "ecp5_registered_product", "sim_models_for"]

# Primitive name -> its simulation model.
SIM_MODELS = {"MULT18X18D": Path(__file__).with_name("sim_models") / "MULT18X18D.v"}


def sim_models_for(verilog: str) -> list[Path]:
    """The simulation models a Verilog text needs (the primitives it instantiates)."""
    return [path for name, path in SIM_MODELS.items()
            if re.search(rf"^\s*{name}\s", verilog, re.M) and f"module {name}" not in verilog]


def _pins(prefix: str, value, width: int = 18) -> dict:
    """``value`` sign- or zero-extended to ``width`` pins ``prefix0 .. prefix{width-1}``."""
    top = len(value) - 1
    return {f"i_{prefix}{k}": value[min(k, top)] if k <= top or value.shape().signed else C(0, 1)
            for k in range(width)}


def ecp5_registered_product(m: Module, core, a, b, name: str, reset):
    """``a * b`` through an ECP5 ``MULT18X18D`` with its A/B input registers and its output
    register: two ticks of latency, clock enable ``core.en``, synchronous reset ``reset`` (what
    zeroes the core's other registers; None: none). Operands up to 18 bits, signed or not."""
    if len(a) > 18 or len(b) > 18:
        raise ValueError(f"{name}: MULT18X18D takes operands up to 18 bits, not {len(a)} x {len(b)}")
    product = Signal(36, name=f"{name}_p")
    m.submodules[name] = Instance(
        "MULT18X18D",
        **{f"p_REG_{reg}_{what}": sig for reg in ("INPUTA", "INPUTB", "OUTPUT")
           for what, sig in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))},
        p_GSR="DISABLED", p_RESETMODE="SYNC",
        **_pins("A", a), **_pins("B", b), **{f"i_C{k}": C(0, 1) for k in range(18)},
        i_SIGNEDA=C(int(a.shape().signed), 1), i_SIGNEDB=C(int(b.shape().signed), 1),
        i_SOURCEA=C(0, 1), i_SOURCEB=C(0, 1),
        i_CLK0=ClockSignal(), i_CE0=core.en, i_RST0=C(0, 1) if reset is None else reset,
        **{f"o_P{k}": product[k] for k in range(36)})
    width = len(a) + len(b)
    return product[:width].as_signed() if a.shape().signed or b.shape().signed else product[:width]
