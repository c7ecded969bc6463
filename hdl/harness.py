"""IO harness for measuring a core on an FPGA without one pin per data bit."""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ScanHarness"]


class ScanHarness(wiring.Component):
    """Wraps any component behind a serial scan: five pins instead of thousands.

    Every input bit of the core is a flip-flop of a shift chain loaded from ``sdi`` one bit per
    cycle, so synthesis sees independent, registered inputs it cannot optimise away. Every
    output bit is captured into a second chain when ``capture`` is high and shifted out on
    ``sdo`` otherwise, so every output is registered and observable. Paths into and out of the
    core therefore start and end at flip-flops, as they would inside a larger design.

    A ``stall_free`` core's ``en`` is tied high, as the shells drive it.

    Overhead (included in the reported figures): one flip-flop per core input bit
    (``in_bits``) and one flip-flop plus a 2:1 multiplexer per core output bit (``out_bits``).
    """

    def __init__(self, core: wiring.Component):
        self.core = core
        self.inputs, self.outputs, self.tied = [], [], []
        # Every shell holds a stall-free core's ``en`` high (see tensor_engine), so the harness
        # does too: from a scan bit it would be a clock enable on every register of the core.
        tie_en = getattr(core, "stall_free", False)
        for path, member, value in core.signature.flatten(core):
            value = value.as_value() if hasattr(value, "as_value") else value
            if tie_en and path == ("en",):
                self.tied.append(value)
                continue
            (self.inputs if member.flow == wiring.In else self.outputs).append(value)
        self.in_bits = sum(len(v) for v in self.inputs)
        self.out_bits = sum(len(v) for v in self.outputs)
        super().__init__({"sdi": In(1), "capture": In(1), "sdo": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        m.d.comb += [value.eq(1) for value in self.tied]
        chain_in = Signal(self.in_bits)
        m.d.sync += chain_in.eq(Cat(self.sdi, chain_in[:-1]))
        offset = 0
        for value in self.inputs:
            m.d.comb += value.eq(chain_in[offset:offset + len(value)])
            offset += len(value)
        chain_out = Signal(self.out_bits)
        with m.If(self.capture):
            m.d.sync += chain_out.eq(Cat(*self.outputs))
        with m.Else():
            m.d.sync += chain_out.eq(chain_out[1:])
        m.d.comb += self.sdo.eq(chain_out[0])
        return m
