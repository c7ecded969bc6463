"""Stream shells around the tensor cores: operand streams in, result rows out, control registers.

The shells share one register map (:func:`registers`) and one readout stage; they differ in
how operands are sequenced into the core (see :mod:`accelsmith.models.bitweight` for the job
layout the host follows).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .csr import Field, Register, RegisterBusSignature, RegisterFile
from .formal import engine_properties

__all__ = ["registers", "OutputStationaryEngine", "BufferedOutputStationaryEngine",
           "WeightStationaryEngine", "VariableStepEngine",
           "result_layout", "shell_properties", "shell_liveness"]

_STATUS_FIELDS = (
    Field("BUSY", 0, 1, "A job is running (from START until its last result row is accepted)."),
    Field("DONE", 1, 1, "The last job finished; cleared by START."),
)
_ERROR_FIELD = Field("ERROR", 2, 1, "The last job received malformed operand metadata; the "
                     "affected operand groups contributed zero (see the core). Cleared by START.")


def registers(error_flag: bool = False, tiles: bool = False) -> list[Register]:
    """The register map of every shell; ``error_flag`` adds STATUS.ERROR (sparse cores),
    ``tiles`` the TILES register (:class:`BufferedOutputStationaryEngine`)."""
    return [
        Register("CTRL", "wo", "Command register.",
                 (Field("START", 0, 1, "Write 1 to start a job; ignored while BUSY."),)),
        Register("STATUS", "ro", "Engine status.", _STATUS_FIELDS + ((_ERROR_FIELD,) if error_flag else ())),
        Register("K_STEPS", "rw", "Steps of the reduction per job (K / k_per_step, rounded up). "
                 "0 gives an all-zero tile."),
        Register("CYCLES", "ro", "Clock cycles the current or last job has been BUSY (wraps at 2**32)."),
    ] + ([Register("TILES", "rw", "Output tiles per job, computed back to back with the same "
                   "K_STEPS (operands of tile after tile on a/b, rows of tile after tile on c); "
                   "0 counts as 1.")] if tiles else [])


def _index(n, name):
    """A counter over ``n`` values; at least one bit, as Verilog has no zero-width wires."""
    return Signal(range(max(n, 2)), name=name)


def result_layout(acc_shape, n_tile):
    """One row of the output tile, ``last`` set on the tile's final row."""
    return data.StructLayout({"data": data.ArrayLayout(acc_shape, n_tile), "last": 1})


class _Shell(wiring.Component):
    """Streams carry the core's own operand layouts (``a_layout``, ``b_layout``). A core with an
    ``error`` output (metadata checks) gets STATUS.ERROR, set when a step it flags is accepted."""

    def __init__(self, core, m_tile, a_layout, b_layout, tiles=False):
        self.core = core
        self.m_tile = m_tile
        # Stall-free cores shift their rows into a three-row output buffer, and the shift is
        # decided a cycle ahead into a register per row, so neither c.ready nor the sequencer's
        # state reaches the thousands of result registers it drives: one cycle more per job, no
        # loss of throughput.
        self.stall_free = getattr(core, "stall_free", False)
        self.readout_latency = int("shift" in core.signature.members)
        self.checks_metadata = "error" in core.signature.members
        self.regs = RegisterFile(registers(self.checks_metadata, tiles))
        super().__init__({
            "a": In(stream.Signature(a_layout)),
            "b": In(stream.Signature(b_layout)),
            "c": Out(stream.Signature(result_layout(core.acc_shape, core.n_tile))),
            "csr": In(RegisterBusSignature(self.regs.addr_width)),
        })

    def _control(self, m, accepted=None):
        """Register file, START decode, BUSY/DONE/CYCLES (and ERROR) bookkeeping; ``accepted`` is
        high in cycles where the core takes an operand step. Returns (start, busy, done)."""
        m.submodules.regs = regs = self.regs
        wiring.connect(m, wiring.flipped(self.csr), regs.bus)
        m.submodules.core = self.core
        busy, done, cycles = Signal(), Signal(), Signal(32)
        start = self._takes_start(regs, busy)
        status = [busy, done]
        with m.If(start):
            m.d.sync += [done.eq(0), cycles.eq(0)]
        with m.Elif(busy):
            m.d.sync += cycles.eq(cycles + 1)
        if self.checks_metadata:
            error = Signal()
            status.append(error)
            with m.If(start):
                m.d.sync += error.eq(0)
            with m.Elif(accepted & self.core.error):
                m.d.sync += error.eq(1)
        m.d.comb += [regs.status.eq(Cat(*status)), regs.cycles.eq(cycles)]
        return start, busy, done

    @staticmethod
    def _takes_start(regs, busy):
        """A START write that starts a job: one while BUSY is ignored."""
        return regs.ctrl_stb & regs.ctrl[0] & ~busy

    def _carry_save_row(self, row):
        """Result row ``row`` of a core with carry-save accumulators: the core's carry-propagate
        adders, one row of them behind the row multiplexer (cores that shift their rows out:
        row 0, see :meth:`_row_taken`)."""
        core = self.core
        if self.stall_free:
            sums, carries, row = [core.acc_sum[0]], [core.acc_carry[0]], 0
        else:
            sums, carries = Array(core.acc_sum), Array(core.acc_carry)
        return Cat((sums[row][j] + carries[row][j])[:core.acc_shape.width] for j in range(core.n_tile))

    def _free_running(self, m):
        """A ``stall_free`` core (see the core) gets ``en`` in every cycle and the operand
        payloads as they are: where a shell would freeze it, it takes a zero step instead
        (``step`` low, see :meth:`_step`; weight-stationary cores: an output the shell ignores)."""
        if self.stall_free:
            m.d.comb += [self.core.en.eq(1), self.core.a.eq(self.a.payload)]
            if "b" in self.core.signature.members:
                m.d.comb += self.core.b.eq(self.b.payload)

    def _step(self):
        """Statements for a cycle where the core takes the operand step on ``a`` (and ``b``)."""
        if self.stall_free:
            return [self.core.step.eq(1)] if "step" in self.core.signature.members else []
        ports = [p for p in ("a", "b") if p in self.core.signature.members]
        return [getattr(self.core, p).eq(getattr(self, p).payload) for p in ports]

    def _output_buffer(self, m, shift, offer_next, value, last, row):
        """For ``readout_latency`` 1: the three-row buffer in front of ``c``, fed by shifting row
        0 out of the core. ``shift`` (a fresh signal, made a register here) is high in the cycles
        where the row on offer (``value``, ``last``; row ``row`` of the tile, counted up on
        ``shift`` and back to 0 after the last) enters the buffer and the core shifts, decided
        a cycle ahead from ``offer_next`` (comb: a row will be on offer in the next cycle) and
        the buffer's room assuming nothing leaves it: so ``c.ready`` stays off the decision, and
        with a third row of room a ``c`` that keeps accepting still takes a row per cycle. Each
        of the core's rows gets its shift from a register of its own, high only while the row
        still holds results (see the core), so no one register drives the whole array. Returns
        ``drained`` (comb): no row is left in the buffer after this cycle."""
        m.submodules.output_buffer = fifo = SyncFIFO(width=len(self.c.payload.as_value()), depth=3)
        decide = offer_next & (fifo.level + shift < fifo.depth)
        row_next = Mux(shift & last, 0, row + shift)
        rows = Signal(self.m_tile)
        m.d.sync += [shift.eq(decide)] + [rows[i].eq(decide & (row_next < self.m_tile - i))
                                          for i in range(self.m_tile)]
        m.d.comb += [self.c.valid.eq(fifo.r_rdy), self.c.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.c.ready), fifo.w_en.eq(shift), fifo.w_data.eq(Cat(value, last)),
                     self.core.shift.eq(rows)]
        return ~fifo.r_rdy | (fifo.level == 1) & self.c.ready

    def _buffered_readout(self, m, value, row, done, entering, reading):
        """READOUT (and DRAIN) state bodies of an unbuffered shell with an output buffer;
        ``entering`` (a register): the FSM moves to READOUT at the end of this cycle;
        ``reading``: a register the caller sets as it does, cleared here as READOUT ends (the
        state as a flip-flop of its own: the shift decision reads registers only)."""
        last = row == self.m_tile - 1
        shift = Signal()
        drained = self._output_buffer(m, shift, entering | reading & ~(last & shift), value, last, row)
        with m.State("READOUT"):
            with m.If(shift):
                m.d.sync += row.eq(row + 1)
                with m.If(last):
                    m.d.sync += [row.eq(0), reading.eq(0)]
                    m.next = "DRAIN"
        with m.State("DRAIN"):
            with m.If(drained):
                m.d.sync += done.eq(1)
                m.next = "IDLE"

    def _readout(self, m, value, row, done):
        """READOUT state body: present ``value`` (result row ``row``) on ``c`` until accepted."""
        last = row == self.m_tile - 1
        m.d.comb += [self.c.valid.eq(1),
                     self.c.payload.data.eq(value),
                     self.c.payload.last.eq(last)]
        with m.If(self.c.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(last):
                m.d.sync += [row.eq(0), done.eq(1)]
                m.next = "IDLE"


class OutputStationaryEngine(_Shell):
    """Job sequencer for output-stationary cores (systolic OS, 2D-Matrix, 3D-Cube).

    Per job: START clears the accumulators; ``K_STEPS`` steps are taken, each one ``a`` beat
    and one ``b`` beat accepted together (both streams stall the core); the core is flushed for
    ``core.latency`` cycles; then ``m_tile`` result rows leave on ``c``, one per accepted beat.

    Throughput: one step per cycle while both operand streams are valid. Cycles per job without
    stalls: ``K_STEPS + core.latency + m_tile``. Backpressure on ``c`` holds the row on offer.
    """

    def __init__(self, core):
        members = core.signature.members
        super().__init__(core, core.m_tile, members["a"].shape, members["b"].shape)
        if self.readout_latency and core.latency < 2:
            raise ValueError(f"a stall-free core needs a latency of 2 or more, not {core.latency}")

    def elaborate(self, platform):
        m = Module()
        core = self.core
        feeding = Signal()
        start, busy, done = self._control(m, feeding)
        steps_left = Signal(32)
        flush = Signal(range(core.latency + 1))
        row = _index(self.m_tile, "row")
        result = self._carry_save_row(row)
        flushed = Signal()          # the last FLUSH cycle (stall-free cores: as a register)
        reading = Signal()          # stall-free cores: in READOUT
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.comb += core.clear.eq(1)
                    m.d.sync += [steps_left.eq(self.regs.k_steps), flush.eq(core.latency)]
                    with m.If(self.regs.k_steps == 0):
                        m.next = "FLUSH"
                    with m.Else():
                        m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [self.a.ready.eq(self.b.valid), self.b.ready.eq(self.a.valid)]
                with m.If(self.a.valid & self.b.valid):
                    m.d.comb += [core.en.eq(1), feeding.eq(1), *self._step()]
                    m.d.sync += steps_left.eq(steps_left - 1)
                    with m.If(steps_left == 1):
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                m.d.comb += core.en.eq(1)
                m.d.sync += flush.eq(flush - 1)
                if self.readout_latency:
                    # Stall-free cores have a latency of 2 or more: FLUSH passes flush == 2.
                    m.d.sync += flushed.eq(flush == 2)
                with m.If(flush == 1):
                    if self.readout_latency:
                        m.d.sync += reading.eq(1)
                    m.next = "READOUT"
            if self.readout_latency:
                self._buffered_readout(m, result, row, done, flushed, reading)
            else:
                with m.State("READOUT"):
                    self._readout(m, result, row, done)
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))
        self._free_running(m)
        return m


class BufferedOutputStationaryEngine(_Shell):
    """Job sequencer for output-stationary cores with a result buffer (``result_buffer=True``):
    a job is ``TILES`` output tiles of ``K_STEPS`` steps each, streamed back to back.

    The first step of every tile carries the core's ``first`` token; when it has reached every
    PE (``core.latency`` ticks later) the previous tile sits in the result registers and its
    ``m_tile`` rows leave on ``c`` while the core accumulates the new tile. After the last tile
    one token step with zero operands moves it to the result registers. A tile's first step waits
    while the result registers still hold unread rows, so results are never overwritten.

    Throughput: one step per cycle while both operand streams are valid; tiles follow each other
    without a gap when ``K_STEPS >= core.latency + m_tile + 1``. Stall-free cycles per job:
    :meth:`accelsmith.models.bitweight.EngineGeometry.job_cycles` (a cycle-exact model of this
    sequencer). Backpressure on ``c`` holds the row on offer and, through the buffer, the core.
    """

    def __init__(self, core):
        if not getattr(core, "result_buffer", False):
            raise ValueError("BufferedOutputStationaryEngine needs a core built with result_buffer=True")
        members = core.signature.members
        super().__init__(core, core.m_tile, members["a"].shape, members["b"].shape, tiles=True)

    def elaborate(self, platform):
        m = Module()
        core, regs = self.core, self.regs
        feeding = Signal()
        start, busy, done = self._control(m, feeding)
        k_steps, steps_left, tiles_left = Signal(32), Signal(32), Signal(32)
        first_step = Signal()       # the next step taken starts a tile
        opening = Signal()          # ... and that tile is the job's first
        full = Signal()             # the result registers hold a tile not yet read out
        capturing = Signal()        # a token is on its way through the core
        ticks_left = Signal(range(core.latency + 1))
        row = _index(self.m_tile, "row")
        token = Signal()            # a token enters the core this cycle
        free = ~full & ~capturing

        with m.If(token):
            m.d.sync += [capturing.eq(1), ticks_left.eq(core.latency)]
        with m.Elif(core.en & capturing):
            m.d.sync += ticks_left.eq(ticks_left - 1)
            with m.If(ticks_left == 1):
                m.d.sync += [capturing.eq(0), full.eq(1)]

        last_row = row == self.m_tile - 1
        result = self._carry_save_row(row)
        if self.readout_latency:
            taken = Signal()
            filling = core.en & capturing & (ticks_left == 1)
            drained = self._output_buffer(m, taken, filling | full & ~(taken & last_row), result, last_row,
                                          row)
        else:
            taken, drained = self.c.ready, C(1, 1)
        with m.If(full):
            if not self.readout_latency:
                m.d.comb += [self.c.valid.eq(1), self.c.payload.data.eq(result), self.c.payload.last.eq(last_row)]
            with m.If(taken):
                m.d.sync += row.eq(Mux(last_row, 0, row + 1))
                with m.If(last_row):
                    m.d.sync += full.eq(0)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.comb += core.clear.eq(1)
                    m.d.sync += [k_steps.eq(regs.k_steps), steps_left.eq(regs.k_steps),
                                 tiles_left.eq(Mux(regs.tiles == 0, 1, regs.tiles)),
                                 first_step.eq(1), opening.eq(1)]
                    with m.If(regs.k_steps == 0):
                        m.next = "TOKEN"
                    with m.Else():
                        m.next = "FEED"
            with m.State("FEED"):
                # A tile's first step hands the previous tile to the result registers, so it
                # waits for them to be free (the batch's first tile has nothing to hand over).
                may = ~first_step | opening | free
                take = self.a.valid & self.b.valid & may
                m.d.comb += [self.a.ready.eq(self.b.valid & may), self.b.ready.eq(self.a.valid & may)]
                with m.If(take):
                    m.d.comb += [core.en.eq(1), feeding.eq(1), *self._step(), core.first.eq(first_step),
                                 token.eq(first_step & ~opening)]
                    m.d.sync += [steps_left.eq(steps_left - 1), first_step.eq(0), opening.eq(0)]
                    with m.If(steps_left == 1):
                        m.d.sync += [tiles_left.eq(tiles_left - 1), steps_left.eq(k_steps),
                                     first_step.eq(1)]
                        with m.If(tiles_left == 1):
                            m.next = "TOKEN"
                with m.Elif(capturing):
                    m.d.comb += core.en.eq(1)       # a zero step carries the token on
            with m.State("TOKEN"):
                # A token step with zero operands ends the last tile (every tile when K_STEPS = 0).
                with m.If(free):
                    m.d.comb += [core.en.eq(1), core.first.eq(1), token.eq(1)]
                    with m.If((k_steps == 0) & (tiles_left > 1)):
                        m.d.sync += tiles_left.eq(tiles_left - 1)
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(capturing):
                    m.d.comb += core.en.eq(1)
            with m.State("FLUSH"):
                with m.If(capturing):
                    m.d.comb += core.en.eq(1)
                # Done with the last row: taken now, or (output buffer) out of the buffer.
                with m.Elif(~full & drained if self.readout_latency else ~full | self.c.ready & last_row):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))
        self._free_running(m)
        return m


class WeightStationaryEngine(_Shell):
    """Job sequencer for weight-stationary cores (systolic WS, multiplier-adder tree).

    Per step: ``k_per_step`` ``b`` beats load the weight block; ``m_tile`` ``a`` beats stream A
    rows through the core; the core is flushed for ``core.latency`` cycles. Each output row the
    core produces (``out + out_carry``: carry-save cores leave the carry-propagate addition to
    this one three-input adder) is added to row ``m`` of an ``m_tile x n_tile`` accumulator
    buffer. After ``K_STEPS`` steps the buffer leaves on ``c``.

    The buffer row an output will be added to is read one enabled cycle before the output
    arrives (its row index is known from the tracker), so the row multiplexer and the adder sit
    in different cycles at the cost of one row of registers and no extra latency. Consecutive
    outputs never belong to the same row (rows are fed in turn and each step ends with a flush),
    so the row read ahead is never one still being written.

    With a ``stall_free`` core START clears nothing: the first step's outputs replace the
    buffer's rows instead of adding to them (and a job of no steps reads out zeros), so no
    job-start pulse fans out to the buffer; a finished job drains the tracker.

    Throughput: one A row per cycle while streaming. Cycles per job without stalls:
    ``K_STEPS * (k_per_step + m_tile + core.latency) + m_tile``.
    """

    def __init__(self, core, m_tile):
        members = core.signature.members
        super().__init__(core, m_tile, members["a"].shape, members["w_data"].shape)

    def elaborate(self, platform):
        m = Module()
        core = self.core
        start, busy, done = self._control(m)
        ks, n, M = core.k_per_step, core.n_tile, self.m_tile
        steps_left = Signal(32)
        w_row = _index(ks, "w_row")
        a_row = _index(M, "a_row")
        flush = Signal(range(core.latency + 1))
        row = _index(M, "row")

        acc_buf = [Signal(data.ArrayLayout(core.acc_shape, n), name=f"acc_row{i}") for i in range(M)]
        # Which buffer row the core's output belongs to, delayed alongside the core.
        trk_valid = Signal(core.latency)
        trk_row = [_index(M, f"trk_row{d}") for d in range(core.latency)]
        feeding = Signal()
        with m.If(core.en):
            m.d.sync += trk_valid.eq(Cat(feeding, trk_valid[:-1]))
            m.d.sync += [dst.eq(src) for dst, src in zip(trk_row, [a_row] + trk_row[:-1])]
        # The row of the output arriving at the next enabled cycle, read into a register now.
        target = Signal(data.ArrayLayout(core.acc_shape, n))
        fresh = Signal()            # stall-free: the buffer holds nothing of this job yet
        ahead = Array(acc_buf)[([a_row] + trk_row)[-2]]
        with m.If(core.en):
            m.d.sync += target.eq(Mux(fresh, 0, ahead) if self.stall_free else ahead)
        summed = Signal(data.ArrayLayout(core.acc_shape, n))
        m.d.comb += [summed[j].eq(target[j] + core.out[j] + core.out_carry[j]) for j in range(n)]
        with m.If(core.en & trk_valid[-1]):
            with m.Switch(trk_row[-1]):
                for i in range(M):
                    with m.Case(i):
                        m.d.sync += acc_buf[i].eq(summed)
        if not self.stall_free:
            with m.If(core.clear):
                m.d.sync += [r.eq(0) for r in acc_buf] + [trk_valid.eq(0)]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.comb += core.clear.eq(1)
                    m.d.sync += [steps_left.eq(self.regs.k_steps), w_row.eq(0), fresh.eq(1)]
                    with m.If(self.regs.k_steps == 0):
                        m.next = "READOUT"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.b.ready.eq(1), core.w_row.eq(w_row), core.w_data.eq(self.b.payload)]
                with m.If(self.b.valid):
                    m.d.comb += core.w_en.eq(1)
                    m.d.sync += w_row.eq(w_row + 1)
                    with m.If(w_row == ks - 1):
                        m.d.sync += [w_row.eq(0), a_row.eq(0)]
                        m.next = "STREAM"
            with m.State("STREAM"):
                m.d.comb += self.a.ready.eq(1)
                with m.If(self.a.valid):
                    m.d.comb += [core.en.eq(1), feeding.eq(1), *self._step()]
                    m.d.sync += a_row.eq(a_row + 1)
                    with m.If(a_row == M - 1):
                        m.d.sync += [a_row.eq(0), flush.eq(core.latency)]
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                m.d.comb += core.en.eq(1)
                m.d.sync += flush.eq(flush - 1)
                with m.If(flush == 1):
                    m.d.sync += [steps_left.eq(steps_left - 1), fresh.eq(0)]
                    with m.If(steps_left == 1):
                        m.next = "READOUT"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("READOUT"):
                value = Array(acc_buf)[row]
                self._readout(m, Mux(fresh, 0, value) if self.stall_free else value, row, done)
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))
        self._free_running(m)
        return m


class VariableStepEngine(OutputStationaryEngine):
    """Job sequencer for cores whose steps take a data-dependent number of cycles
    (:class:`~accelsmith.hdl.digit_serial.DigitSerialMatrix`,
    :class:`~accelsmith.hdl.sparse_cores.OuterProductArray`).

    Per job: START clears the accumulators; ``K_STEPS`` steps are offered to the core, each one
    ``a`` beat and one ``b`` beat accepted together when the core is ready for a step; once the
    core is no longer busy, ``m_tile`` result rows leave on ``c``.

    Throughput: one step per ``step_cycles`` (data-dependent, see the core). Cycles per job
    without stalls: ``1 + sum(step_cycles) + 1 + m_tile`` (``m_tile + 1`` for ``K_STEPS = 0``):
    the first beat is taken in the first BUSY cycle, later beats in the last cycle of the step
    before, and one cycle passes between the core's last cycle and the first result row.
    Same stream layout as :class:`OutputStationaryEngine`.
    """

    def elaborate(self, platform):
        m = Module()
        core = self.core
        accepted = Signal()
        start, busy, done = self._control(m, accepted)
        steps_left = Signal(32)
        row = _index(self.m_tile, "row")
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.comb += core.clear.eq(1)
                    m.d.sync += steps_left.eq(self.regs.k_steps)
                    with m.If(self.regs.k_steps == 0):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "FEED"
            with m.State("FEED"):
                both = self.a.valid & self.b.valid
                m.d.comb += [core.step_valid.eq(both), core.a.eq(self.a.payload),
                             core.b.eq(self.b.payload),
                             self.a.ready.eq(self.b.valid & core.step_ready),
                             self.b.ready.eq(self.a.valid & core.step_ready)]
                with m.If(both & core.step_ready):
                    m.d.comb += accepted.eq(1)
                    m.d.sync += steps_left.eq(steps_left - 1)
                    with m.If(steps_left == 1):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(~core.busy):
                    m.next = "READOUT"
            with m.State("READOUT"):
                self._readout(m, self._carry_save_row(row), row, done)
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))
        return m


def shell_properties(check, shell):
    """The formal properties of a shell (:mod:`accelsmith.hdl.formal`), over its ports and its
    register file's, for ``check`` (a :class:`~accelsmith.hdl.formal.Checker`):

    - ``streams`` and ``start``: those of every engine (:func:`~accelsmith.hdl.formal.engine_properties`;
      a shell's job is never empty);
    - ``results``: no row leaves on ``c`` and no operand is taken outside a job; a job sends
      ``m_tile`` rows per tile (TILES, 0 counting as 1), ``last`` on each tile's final row and
      only there.
    """
    regs = shell.regs
    busy = regs.status[0]
    engine_properties(check, shell)
    start_write = regs.ctrl_stb & regs.ctrl[0]
    m = check.m
    if check.proving("results"):
        tiles = Signal(32, name="f_tiles")          # the job's tiles, latched at its START
        job_rows = Signal(16, name="f_job_rows")
        row_in_tile = Signal(range(max(shell.m_tile, 2)), name="f_row_in_tile")
        with m.If(start_write & ~busy):
            m.d.sync += [tiles.eq(Mux(getattr(regs, "tiles", C(1, 32)) == 0, 1,
                                      getattr(regs, "tiles", C(1, 32)))),
                         job_rows.eq(0), row_in_tile.eq(0)]
        with m.Elif(shell.c.valid & shell.c.ready):
            m.d.sync += [job_rows.eq(job_rows + 1),
                         row_in_tile.eq(Mux(row_in_tile == shell.m_tile - 1, 0, row_in_tile + 1))]
        check.require("results", "no result row outside a job", ~shell.c.valid | busy)
        check.require("results", "no operand taken outside a job",
                      ~(shell.a.valid & shell.a.ready | shell.b.valid & shell.b.ready) | busy)
        check.require("results", "last on each tile's final row, only there",
                      ~shell.c.valid | (shell.c.payload.last == (row_in_tile == shell.m_tile - 1)))
        ended = check.started & check.past(busy, "f_busy_before") & ~busy
        check.require("results", "a job sends m_tile rows per tile",
                      ~ended | (job_rows == (tiles * shell.m_tile)[:16]))
        check.cover("results", "a job ends", ended)


def shell_liveness(check, shell, bound, max_steps: int = 3, max_tiles: int = 2):
    """The ``liveness`` property of a shell: while ``a`` and ``b`` offer a beat in every cycle
    and ``c`` accepts in every cycle (assumed), a job of up to ``max_steps`` steps (and
    ``max_tiles`` tiles) is BUSY for fewer than ``bound(steps, tiles)`` cycles, the model's
    worst case over all operand data (``job_cycle_bound`` of the engine's geometry)."""
    group = "liveness"
    if not check.proving(group):
        return
    m, regs = check.m, shell.regs
    busy = regs.status[0]
    tiles = getattr(regs, "tiles", None)
    check.assume(shell.a.valid & shell.b.valid & shell.c.ready)
    check.assume(regs.k_steps <= max_steps)
    if tiles is not None:
        check.assume(tiles <= max_tiles)
    limit = Signal(16, name="f_cycle_limit")      # the job's bound, latched at its START
    with m.If(regs.ctrl_stb & regs.ctrl[0] & ~busy):
        for steps in range(max_steps + 1):
            for t in range(max_tiles + 1) if tiles is not None else [1]:
                hit = (regs.k_steps == steps) & (tiles == t if tiles is not None else 1)
                with m.If(hit):
                    m.d.sync += limit.eq(bound(steps, max(t, 1)))
    check.require(group, "a job whose streams keep flowing ends within the model's bound",
                  ~busy | (regs.cycles < limit))
    check.cover(group, "the longest job ends", check.started & check.past(busy, "f_live_busy") & ~busy
                & (check.past(regs.k_steps, "f_live_k") == max_steps))


# Steps per job in the isolation proofs: two jobs must fit the depth, and the rows' values
# (multipliers in two copies) are the hard part for the solver.
ISOLATION_STEPS = {"isolation": 2, "isolation-data": 1}


def shell_isolation(check, twins):
    """The ``isolation`` and ``isolation-data`` properties of a shell: a job depends only on its
    own operands and registers. ``twins`` (:class:`~accelsmith.hdl.formal.Twins` of two shells,
    ``own`` ``("csr", "w_en")``): the first shell runs any job on any operand data (every
    malformed N:M index and bitmap count of a sparse core among them), then the next job; the
    second shell sees the same register writes and streams but starts only with that next job.
    From there the two agree cycle for cycle:

    - ``isolation``: BUSY, DONE, ERROR, CYCLES, the operand beats taken and the result rows
      offered (jobs of up to 2 steps);
    - ``isolation-data``: the result rows' values (jobs of 1 step).

    So no job blocks, delays or changes the job after it: malformed metadata affects only its
    own job."""
    groups = [g for g in ISOLATION_STEPS if check.proving(g)]
    if not groups:
        return
    m, first, second = check.m, twins.first, twins.second
    busy = first.regs.status[0]
    check.stream(groups[0], first.a, False, name="a")
    check.stream(groups[0], first.b, False, name="b")
    check.assume(first.regs.k_steps <= min(ISOLATION_STEPS[g] for g in groups))
    if hasattr(first.regs, "tiles"):
        check.assume(first.regs.tiles <= 1)
    ran = Signal(name="f_first_ran")            # the first shell has run a job
    with m.If(busy):
        m.d.sync += ran.eq(1)
    ctrl = next(a for a, r in enumerate(first.regs.registers) if r.name == "CTRL")
    # the second shell sees every write but the START of the first job
    m.d.comb += second.csr.w_en.eq(twins.csr.w_en & ((twins.csr.addr != ctrl) | ran & ~busy))
    joined = Signal(name="f_second_started")
    steps = Signal.like(second.regs.k_steps, name="f_second_steps")     # its job's, at START
    with m.If(second.regs.status[0]):
        m.d.sync += joined.eq(1)
    with m.If(~joined & ~second.regs.status[0]):
        m.d.sync += steps.eq(second.regs.k_steps)
    both = joined | second.regs.status[0]
    for name, a, b in (("BUSY, DONE and ERROR", first.regs.status, second.regs.status),
                       ("CYCLES", first.regs.cycles, second.regs.cycles),
                       ("operand beats taken", Cat(first.a.ready, first.b.ready),
                        Cat(second.a.ready, second.b.ready)),
                       ("result rows offered", first.c.valid, second.c.valid)):
        check.require("isolation", f"{name} as if the earlier job had not run", ~both | (a == b))
    check.require("isolation-data", "result rows' values as if the earlier job had not run",
                  ~(both & first.c.valid) | (first.c.payload.as_value() == second.c.payload.as_value()))
    ended = (both & check.past(second.regs.status[0], "f_second_busy") & ~second.regs.status[0]
             & (steps != 0))
    if first.checks_metadata:
        flagged = Signal(name="f_first_flagged")    # the earlier job ended with ERROR set
        with m.If(ran & ~busy & ~joined):
            m.d.sync += flagged.eq(first.regs.status[2])
        for group in groups:
            check.cover(group, "a job of a step after one with malformed metadata ends", ended & flagged)
    else:
        for group in groups:
            check.cover(group, "a job of a step after another ends", ended)
