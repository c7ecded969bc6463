"""A small memory-mapped register file, described once for the hardware and the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Field", "Register", "RegisterBusSignature", "RegisterFile", "register_properties"]

DATA_WIDTH = 32


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    width: int
    doc: str


@dataclass(frozen=True)
class Register:
    """One 32-bit register.

    ``access`` is ``"rw"`` (stored, read back), ``"ro"`` (driven by the hardware) or
    ``"wo"`` (a command: the written word is presented for one cycle, reads return 0).
    """

    name: str
    access: str
    doc: str
    fields: tuple[Field, ...] = field(default=())
    width: int = DATA_WIDTH

    def describe(self, address: int) -> dict:
        return {"name": self.name, "address": address, "byte_address": address * 4,
                "access": self.access, "width": self.width, "doc": self.doc,
                "fields": [vars(f) for f in self.fields]}


class RegisterBusSignature(wiring.Signature):
    """Word-addressed register bus, as seen from the host that drives it.

    A write takes effect on the clock edge that ends the cycle where ``w_en`` is high;
    ``r_data`` shows the register at ``addr`` combinationally (zero-latency read).
    """

    def __init__(self, addr_width: int):
        super().__init__({
            "addr": Out(addr_width),
            "w_en": Out(1),
            "w_data": Out(DATA_WIDTH),
            "r_data": In(DATA_WIDTH),
        })


class RegisterFile(wiring.Component):
    """Registers at consecutive word addresses behind a :class:`RegisterBusSignature` bus.

    Each register appears as a member named after it (lower case): an output holding the stored
    value for ``rw``, an input for ``ro``, an output valid for one cycle for ``wo`` (with
    ``<name>_stb`` high in that cycle).

    Timing: reads are combinational, writes land at the next clock edge; no backpressure.
    """

    def __init__(self, registers: list[Register]):
        self.registers = list(registers)
        self.addr_width = max(1, (len(self.registers) - 1).bit_length())
        members = {"bus": In(RegisterBusSignature(self.addr_width))}
        for reg in self.registers:
            key = reg.name.lower()
            members[key] = In(reg.width) if reg.access == "ro" else Out(reg.width)
            if reg.access == "wo":
                members[key + "_stb"] = Out(1)
        super().__init__(members)

    def describe(self) -> list[dict]:
        return [reg.describe(addr) for addr, reg in enumerate(self.registers)]

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        with m.Switch(bus.addr):
            for addr, reg in enumerate(self.registers):
                if reg.access != "wo":
                    with m.Case(addr):
                        m.d.comb += bus.r_data.eq(getattr(self, reg.name.lower()))
        for addr, reg in enumerate(self.registers):
            port = getattr(self, reg.name.lower())
            hit = bus.w_en & (bus.addr == addr)
            if reg.access == "rw":
                with m.If(hit):
                    m.d.sync += port.eq(bus.w_data)
            elif reg.access == "wo":
                m.d.comb += [port.eq(Mux(hit, bus.w_data, 0)),
                             getattr(self, reg.name.lower() + "_stb").eq(hit)]
        return m


def register_properties(check, regs: RegisterFile, group: str = "registers"):
    """The formal properties of a register file (:mod:`accelsmith.hdl.formal`): a ``rw``
    register holds and reads back the last word written to it; reading a ``ro`` register gives
    the hardware's value whatever was written; a ``wo`` register's strobe is high exactly in the
    cycle of a write to it, its word presented then and zero otherwise, and it reads as 0.

    The holding property is checked on one ``rw`` register the solver picks (any of them, the
    same for the whole proof): a proof for the picked one is a proof for each, with one copy of
    a register in the harness instead of one per register (the rasteriser has 35)."""
    if not check.proving(group):
        return
    m, bus = check.m, regs.bus
    rw = []
    for addr, reg in enumerate(regs.registers):
        port = getattr(regs, reg.name.lower())
        hit = bus.w_en & (bus.addr == addr)
        read = bus.addr == addr
        if reg.access == "rw":
            rw.append((addr, port))
            check.require(group, f"{reg.name} (rw) reads back", ~read | (bus.r_data == port))
        elif reg.access == "ro":
            check.require(group, f"{reg.name} (ro) reads the hardware's value",
                          ~read | (bus.r_data == port))
        else:
            strobe = getattr(regs, reg.name.lower() + "_stb")
            check.require(group, f"{reg.name} (wo) strobes once per write", strobe == hit)
            check.require(group, f"{reg.name} (wo) presents the word only then",
                          port == Mux(hit, bus.w_data, 0))
            check.require(group, f"{reg.name} (wo) reads as 0", ~read | (bus.r_data == 0))
    if not rw:
        return
    pick = check.free(range(max(len(rw), 2)), "f_rw_pick")       # a port has at least a bit
    check.assume((pick < len(rw)) & (~check.started | (pick == check.past(pick, "f_rw_picked"))))
    addr, port = Array(C(a, bus.addr.shape()) for a, _ in rw)[pick], Array(p for _, p in rw)[pick]
    shadow = Signal(max(len(p) for _, p in rw), name="f_rw_written")
    known = Signal(name="f_rw_known")
    hit = bus.w_en & (bus.addr == addr)
    with m.If(hit):
        m.d.sync += [shadow.eq(bus.w_data), known.eq(1)]
    written = Array(shadow[:len(p)] for _, p in rw)[pick]     # the word as the register keeps it
    check.require(group, "each rw register (the solver's pick) holds the last word written to it",
                  ~known | (port == written))
    check.cover(group, "a rw register written twice", known & hit & (bus.w_data != shadow))
