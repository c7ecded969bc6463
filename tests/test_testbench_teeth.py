"""The testbench's own checks have teeth: engines with one planted bug each must fail it.

Each mutant wraps a generated engine and breaks one thing the testbench claims to check (the
CYCLES count, DONE, STATUS.ERROR, the stream protocol, the last flag); the simulation must fail
and say why. A check disabled in ``testbench/tiles.py`` or
``testbench/streams.py`` makes its mutant pass, and this test fail.
"""

import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring

from accelsmith.config import validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate
from accelsmith.generators import Design
from accelsmith.registry import generator

BITWEIGHT = {"family": "bitweight", "architecture": "systolic_os", "rows": 2, "cols": 2,
             "a_bits": 4, "b_bits": 4}
SPARSE = {"family": "sparse", "format": "nm", "n": 2, "m": 4, "rows": 2, "cols": 2}


class Mutant(wiring.Component):
    """``engine`` with the same ports, every one passed through except what ``kind`` breaks."""

    def __init__(self, engine, kind: str, registers: list[dict]):
        self.engine, self.kind = engine, kind
        self.reg = {r["name"]: r for r in registers}
        super().__init__(engine.signature)

    def _mask(self, reg: str, field: str) -> int:
        f = next(f for f in self.reg[reg]["fields"] if f["name"] == field)
        return ((1 << f["width"]) - 1) << f["offset"]

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        for (_, member, outer), (_, _, inner) in zip(self.signature.flatten(self),
                                                     engine.signature.flatten(engine)):
            m.d.comb += inner.eq(outer) if member.flow == wiring.In else outer.eq(inner)
        csr, c = self.csr, self.c
        at = lambda name: csr.addr == self.reg[name]["address"]
        if self.kind == "cycles_off_by_one":
            m.d.comb += csr.r_data.eq(engine.csr.r_data + at("CYCLES"))
        elif self.kind == "never_done":
            m.d.comb += csr.r_data.eq(Mux(at("STATUS"), engine.csr.r_data & ~self._mask("STATUS", "DONE"),
                                          engine.csr.r_data))
        elif self.kind == "error_stuck":
            m.d.comb += csr.r_data.eq(Mux(at("STATUS"), engine.csr.r_data | self._mask("STATUS", "ERROR"),
                                          engine.csr.r_data))
        elif self.kind == "valid_withdrawn":
            # A result beat the sink refused vanishes for a cycle (timing unchanged without stalls).
            refused = Signal()
            m.d.sync += refused.eq(c.valid & ~c.ready)
            m.d.comb += [c.valid.eq(engine.c.valid & ~refused), engine.c.ready.eq(c.ready & ~refused)]
        elif self.kind == "last_inverted":
            m.d.comb += c.payload.last.eq(~engine.c.payload.last)
        elif self.kind != "none":
            raise ValueError(self.kind)
        return m


MUTANTS = {
    "cycles_off_by_one": (BITWEIGHT, "model predicts"),
    "never_done": (BITWEIGHT, "did not finish within"),
    "error_stuck": (SPARSE, "STATUS.ERROR = 1, expected 0"),
    "valid_withdrawn": (BITWEIGHT, "valid beat withdrawn or changed"),
    "last_inverted": (BITWEIGHT, "the last flag is wrong"),
}


@pytest.mark.parametrize("kind", MUTANTS)
def test_testbench_catches(kind, tmp_path):
    raw, message = MUTANTS[kind]
    config = validate(raw, f"<{kind}>")
    design = generator(config.family).build(config)
    mutant = Mutant(design.component, kind, design.manifest["registers"])
    top = f"{design.top}_{kind}"
    simulator = "icarus" if tools.iverilog() else "verilator"   # Icarus builds in a second
    result = simulate(config, simulator, seed=5, vectors=40, workdir=tmp_path, quiet=True,
                      design=Design(top, mutant, dict(design.manifest, top=top)))
    assert not result.passed, f"the testbench passed an engine with '{kind}'"
    assert any(message in f for f in result.failures), result.failures


def test_unbroken_wrapper_passes(tmp_path):
    """The wrapper itself changes nothing: without a mutation the same run passes."""
    config = validate(BITWEIGHT)
    design = generator("bitweight").build(config)
    top = f"{design.top}_none"
    simulator = "icarus" if tools.iverilog() else "verilator"
    result = simulate(config, simulator, seed=5, vectors=40, workdir=tmp_path, quiet=True,
                      design=Design(top, Mutant(design.component, "none", design.manifest["registers"]),
                                    dict(design.manifest, top=top)))
    assert result.passed, result.summary()
