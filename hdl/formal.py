"""Building blocks of the formal properties (``accelsmith prove``): Amaranth ``Assert`` /
``Assume`` / ``Cover`` over a component's ports, for SymbiYosys.

A property is checked from the design's reset state: every register starts at its ``init``
value and reset is never asserted again (:func:`no_reset`). The rules of a port are *asserted*
where the design drives it and *assumed* where its environment does, so one description gives
both the obligation and the assumption a neighbour may rely on.
"""

from __future__ import annotations

import sys

from amaranth import *
from amaranth.hdl import Assert, Assume, Cover, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

__all__ = ["Checker", "Twins", "engine_properties", "no_reset"]


def no_reset(m):
    """The proof starts in the reset state (registers at ``init``) and stays out of reset."""
    m.d.comb += Assume(~ResetSignal())


class Checker:
    """Collects the properties of one proof: ``check(cond, name)`` asserts where ``assert_``
    and assumes otherwise, so a harness can turn a group of properties into assumptions (a
    neighbour's guarantees) or obligations (the group being proved).

    ``groups``: the names of the property groups this proof asserts; properties of other groups
    become assumptions only if they constrain inputs (``environment=True``), else they are
    left out, so each group is proved on its own.
    """

    def __init__(self, m, groups=None):
        self.m = m
        self.groups = None if groups is None else set(groups)
        self.names: list[tuple[str, str]] = []     # (property, its source file:line)
        self.covers: list[tuple[str, str]] = []
        self.free_inputs: list[Signal] = []
        self._started = None

    def free(self, shape, name: str) -> Signal:
        """A value the solver chooses anew in every cycle (an input of the proof's harness)."""
        sig = Signal(shape, name=name)
        self.free_inputs.append(sig)
        return sig

    def proving(self, group: str) -> bool:
        return self.groups is None or group in self.groups

    @property
    def started(self) -> Signal:
        """High from the second cycle on: a :meth:`past` value is meaningful."""
        if self._started is None:
            self._started = Signal(name="f_started")
            self.m.d.sync += self._started.eq(1)
        return self._started

    def past(self, value, name=None) -> Signal:
        """``value`` one cycle ago (its ``init`` in the first cycle)."""
        reg = Signal.like(value, name=name or "f_past")
        self.m.d.sync += reg.eq(value)
        return reg

    def require(self, group: str, name: str, cond, *, src_loc_at=0):
        """An obligation of ``group``: asserted when the group is being proved, else absent.
        Its source location (in :attr:`names`) is the caller's, ``src_loc_at`` frames up, so a
        failure points at the property, not at this helper."""
        if self.proving(group):
            frame = sys._getframe(1 + src_loc_at)
            self.names.append((f"{group}: {name}", f"{frame.f_code.co_filename}:{frame.f_lineno}"))
            self.m.d.comb += Assert(cond, f"{group}: {name}", src_loc_at=1 + src_loc_at)

    def assume(self, cond):
        """A constraint on the environment, in every proof."""
        self.m.d.comb += Assume(cond)

    def cover(self, group: str, name: str, cond):
        """A state ``group``'s proof must be able to reach (within its depth), so an
        over-constrained environment that makes the obligations hold vacuously is noticed."""
        if self.proving(group):
            frame = sys._getframe(1)
            self.covers.append((f"{group}: {name}", f"{frame.f_code.co_filename}:{frame.f_lineno}"))
            self.m.d.comb += Cover(cond, f"{group}: {name}", src_loc_at=1)

    def stream(self, group: str, port, driven_by_design: bool, *, name: str, count_width=8,
               restart=None, payload=True):
        """The stream rules on ``port`` (``valid``, ``ready``, ``payload``; Amaranth's
        ``lib.stream``): once ``valid`` is high it stays high, with the same payload, until the
        cycle ``ready`` takes it. Asserted on a stream the design drives, assumed on one its
        environment drives. ``restart``: a signal after which the stream starts over (the beat
        on offer is withdrawn by design). ``payload=False`` asserts the rule for ``valid`` only
        (the payload's is proved where it is driven). Returns the beat counter (transfers so
        far, wrapping)."""
        held = self.started & self.past(port.valid, f"f_{name}_valid") & ~self.past(port.ready, f"f_{name}_ready")
        if restart is not None:
            held &= ~self.past(restart, f"f_{name}_restart")
        keep = port.valid
        if payload or not driven_by_design:
            value = Value.cast(port.payload)
            keep &= value == self.past(value, f"f_{name}_payload")
        if driven_by_design:
            rule = "valid and payload held until ready" if payload else "valid held until ready"
            self.require(group, f"{name}: {rule}", ~held | keep, src_loc_at=1)
        else:
            self.assume(~held | keep)
        beats = Signal(count_width, name=f"f_{name}_beats")
        with self.m.If(port.valid & port.ready):
            self.m.d.sync += beats.eq(beats + 1)
        return beats

    def pipeline(self, group: str, inp, out, latency: int):
        """The properties of a pipeline of ``latency`` stages between streams ``inp`` (assumed
        to keep the stream rules) and ``out`` (asserted to): no beat leaves that did not enter,
        and at most ``latency`` are inside at once, so none is lost or made up."""
        beats_in = self.stream(group, inp, False, name=f"{group}_in")
        beats_out = self.stream(group, out, True, name=f"{group}_out")
        inside = Signal(8, name=f"f_{group}_inside")
        self.m.d.comb += inside.eq(beats_in - beats_out)
        self.require(group, "no beat out that did not come in, at most one per stage inside",
                     inside <= latency, src_loc_at=1)
        self.cover(group, "a full pipeline stalls, then moves",
                   self.started & self.past(out.valid & ~out.ready & (inside == latency), f"f_{group}_full")
                   & out.ready)


class Twins(wiring.Component):
    """Two copies of a component, for a property relating two runs (a miter): ``first`` is
    driven by this component's ports (its outputs are ``first``'s), ``second`` by the same
    inputs except the members in ``own`` (paths such as ``("csr", "w_en")``), which the
    property drives. Combinational, no latency."""

    def __init__(self, first, second, own=()):
        self.first, self.second, self.own = first, second, {tuple(path) for path in own}
        super().__init__(dict(first.signature.members.items()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.first, m.submodules.second = self.first, self.second
        wiring.connect(m, wiring.flipped(self), self.first)
        for path, member, port in self.signature.flatten(self):
            if member.flow == In and path not in self.own:
                m.d.comb += _member(self.second, path).eq(port)
        return m


def _member(component, path):
    value = component
    for name in path:
        value = value[name] if isinstance(name, int) else getattr(value, name)
    return value


def engine_properties(check, engine, empty_job=C(0), result_payload=True):
    """The properties every family's engine (the SoC's view: streams ``a``, ``b`` in, ``c`` out,
    registers CTRL.START, STATUS.BUSY / DONE and CYCLES in ``engine.regs``) keeps, for ``check``:

    - ``streams``: ``a`` and ``b`` obey the stream rules (assumed), ``c`` does (asserted);
    - ``start``: a START written while BUSY is ignored (the job goes on, CYCLES keeps counting);
      one written while idle starts a job, or, where ``empty_job`` was high at the START, ends
      it at once with DONE. ``result_payload=False``: the rule for ``c``'s ``valid`` only (its
      payload's is proved on the unit that drives it).
    """
    regs = engine.regs
    busy, done = regs.status[0], regs.status[1]
    check.stream("streams", engine.a, False, name="a")
    check.stream("streams", engine.b, False, name="b")
    check.stream("streams", engine.c, True, name="c", payload=result_payload)
    check.cover("streams", "a result held back, then taken",
                check.started & check.past(engine.c.valid & ~engine.c.ready, "f_c_held") & engine.c.ready)
    if check.proving("start"):
        start_write = regs.ctrl_stb & regs.ctrl[0]
        was_busy, was_started = check.past(busy, "f_was_busy"), check.past(start_write, "f_was_start")
        was_cycles = check.past(regs.cycles, "f_was_cycles")
        was_empty = check.past(empty_job, "f_was_empty")
        check.require("start", "START while BUSY does not restart the job",
                      ~(check.started & was_busy & was_started & busy) | (regs.cycles == was_cycles + 1))
        check.require("start", "START while idle starts a job (an empty one ends at once)",
                      ~(check.started & ~was_busy & was_started)
                      | Mux(was_empty, ~busy & done, busy))
        check.cover("start", "a START while BUSY, ignored", check.started & was_busy & was_started & busy)
