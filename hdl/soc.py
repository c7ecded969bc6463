"""The SoC around a generated engine: a host bridge speaking LiteX's UARTBone protocol over a byte
stream, registers, operand and result buffers, and a sequencer that runs a whole multi-tile job
at the engine's rate with no host in the loop.

The SoC only knows the engine through its streams (``a``, ``b`` in, ``c`` out) and its register
bus, so any engine that describes itself in a manifest gets the same SoC. The address map
(:class:`MemoryMap`) is computed once and used by the hardware, the manifest, ``csr.csv`` and the
host driver.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from amaranth import *
from amaranth.hdl import ResetInserter
from amaranth.lib import crc, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .csr import Field, Register, RegisterBusSignature, RegisterFile
from .uart import UARTPHY

__all__ = ["SoCBusSignature", "UARTBoneBridge", "BufferReader", "JobSequencer", "MemoryMap",
           "SoC", "MAGIC", "FORMAT_VERSION", "CRC32", "bridge_properties", "reader_properties"]

MAGIC = 0x6163736D          # "acsm"
FORMAT_VERSION = 1
CRC32 = crc.catalog.CRC32_ETHERNET(32)   # zlib.crc32 of the words' little-endian bytes

# UARTBone commands (LiteX ``Stream2Wishbone``).
CMD_WRITE, CMD_READ, CMD_WRITE_FIXED, CMD_READ_FIXED = 0x01, 0x02, 0x03, 0x04


class SoCBusSignature(wiring.Signature):
    """Word-addressed bus from the host bridge, as seen from the bridge.

    ``w_stb`` high for one cycle writes ``w_data`` at ``addr`` on the edge ending it; ``r_stb``
    high for one cycle requests the word at ``addr``, which is on ``r_data`` two cycles later
    (read latency two: a block RAM's clock-to-output and the multiplexer behind it get a cycle
    each) and stays there until the next ``r_stb``. No wait states: every access completes."""

    def __init__(self):
        super().__init__({"addr": Out(30), "w_stb": Out(1), "w_data": Out(32), "r_stb": Out(1),
                          "r_data": In(32)})


class UARTBoneBridge(wiring.Component):
    """Host bridge for LiteX's UARTBone frames on an 8-bit byte stream.

    A frame is ``[cmd][len][addr:4][data:4*len]``: ``cmd`` 0x01 writes and 0x02 reads with an
    incrementing address, 0x03 / 0x04 with a fixed one; ``len`` counts 32-bit words (1-255; a
    frame with 0 is dropped after its address); ``addr`` is a big-endian *word* address (byte
    address >> 2, the upper two bits ignored), data words are big-endian. Writes get no reply; a
    read of N words answers exactly 4N bytes. Any other command byte is dropped.

    The watchdog counts every cycle the bridge is not waiting for a command; after
    ``watchdog_cycles`` of them the frame is dropped and the bridge waits for a command again
    (``timeouts`` counts this). A reply byte on offer is never withdrawn: a watchdog expiry during
    a reply takes effect when that byte is accepted, so ``tx`` keeps the stream rules.

    Timing: one ``rx`` byte accepted per cycle, one bus write per received word (one cycle after
    its last byte), a read costs four cycles before its four reply bytes. ``bus.addr`` is always
    set at least one cycle before it is strobed (writes gather four bytes after it, reads wait a
    cycle), so the SoC decodes addresses into registers. ``idle`` is high while waiting for a
    command.
    """

    def __init__(self, watchdog_cycles: int):
        if watchdog_cycles < 2:
            raise ValueError(f"watchdog_cycles {watchdog_cycles}: at least 2")
        self.watchdog_cycles = watchdog_cycles
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "bus": Out(SoCBusSignature()), "idle": Out(1), "timeouts": Out(16)})

    def elaborate(self, platform):
        m = Module()
        rx, tx, bus = self.rx, self.tx, self.bus
        cmd, length = Signal(8), Signal(8)
        addr, word = Signal(32), Signal(32)
        nbyte = Signal(2)
        incrementing = (cmd == CMD_WRITE) | (cmd == CMD_READ)
        writing = (cmd == CMD_WRITE) | (cmd == CMD_WRITE_FIXED)
        watchdog = Signal(range(self.watchdog_cycles))
        expired = Signal()          # watchdog == watchdog_cycles - 1, as a register
        drop = Signal()

        def next_word(read):
            m.d.sync += [addr.eq(addr + incrementing), length.eq(length - 1)]
            with m.If(length == 1):
                m.next = "CMD"
            with m.Else():
                m.next = "SELECT" if read else "DATA"

        @contextmanager
        def frame_state(name):
            # Inside a frame the watchdog, the state's last statement, wins.
            with m.State(name):
                yield
                with m.If(drop):
                    m.next = "CMD"

        m.d.comb += bus.addr.eq(addr[:30])
        with m.FSM() as fsm:
            with m.State("CMD"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid & (rx.payload >= CMD_WRITE) & (rx.payload <= CMD_READ_FIXED)):
                    m.d.sync += cmd.eq(rx.payload)
                    m.next = "LEN"
            with frame_state("LEN"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [length.eq(rx.payload), nbyte.eq(0)]
                    m.next = "ADDR"
            with frame_state("ADDR"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [addr.eq(Cat(rx.payload, addr[:24])), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        with m.If(length == 0):
                            m.next = "CMD"
                        with m.Elif(writing):
                            m.next = "DATA"
                        with m.Else():
                            m.next = "SELECT"
            with frame_state("DATA"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [word.eq(Cat(rx.payload, word[:24])), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        m.next = "WRITE"
            with frame_state("WRITE"):
                m.d.comb += [bus.w_stb.eq(1), bus.w_data.eq(word)]
                next_word(read=False)
            with frame_state("SELECT"):
                m.next = "READ"             # the address is decoded (a register) meanwhile
            with frame_state("READ"):
                m.d.comb += bus.r_stb.eq(1)
                m.next = "WAIT"
            with frame_state("WAIT"):
                m.next = "LATCH"
            with frame_state("LATCH"):
                m.d.sync += [word.eq(bus.r_data), nbyte.eq(0)]
                m.next = "REPLY"
            with frame_state("REPLY"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(word[24:])]
                with m.If(tx.ready):
                    m.d.sync += [word.eq(word << 8), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        next_word(read=True)
        # A reply byte on offer is finished before the watchdog drops the frame.
        offering = fsm.ongoing("REPLY") & ~tx.ready
        m.d.comb += drop.eq(~fsm.ongoing("CMD") & expired & ~offering)
        with m.If(fsm.ongoing("CMD")):
            m.d.sync += [watchdog.eq(0), expired.eq(0)]
        with m.Elif(drop):
            m.d.sync += [watchdog.eq(0), expired.eq(0), self.timeouts.eq(self.timeouts + 1)]
        with m.Elif(~expired):
            m.d.sync += [watchdog.eq(watchdog + 1), expired.eq(watchdog == self.watchdog_cycles - 2)]
        m.d.comb += self.idle.eq(fsm.ongoing("CMD") & ~rx.valid)
        return m


def bridge_properties(check, bridge: UARTBoneBridge):
    """The formal properties of a :class:`UARTBoneBridge` (:mod:`accelsmith.hdl.formal`), with
    any bytes on ``rx`` (keeping the stream rules) and any read data on the bus:

    - ``bridge-stream``: reply bytes on ``tx`` keep the stream rules, whatever the host's
      backpressure;
    - ``bridge-watchdog``: while the host takes reply bytes as they come, once no byte has
      arrived for ``watchdog_cycles + 2`` cycles the bridge is waiting for a command (``idle``),
      whatever came before: a frame cut short never wedges it.
    """
    watchdog = bridge.watchdog_cycles
    check.stream("bridge-stream", bridge.rx, False, name="rx")
    check.stream("bridge-stream", bridge.tx, True, name="tx")
    check.cover("bridge-stream", "a reply byte held back, then taken",
                check.started & check.past(bridge.tx.valid & ~bridge.tx.ready, "f_tx_held")
                & bridge.tx.ready)
    if not check.proving("bridge-watchdog"):
        return
    m = check.m
    check.assume(bridge.tx.ready)
    silent = Signal(range(watchdog + 3), name="f_silent")     # cycles without a byte, saturating
    with m.If(bridge.rx.valid):
        m.d.sync += silent.eq(0)
    with m.Elif(silent < watchdog + 2):
        m.d.sync += silent.eq(silent + 1)
    check.require("bridge-watchdog", "idle within the watchdog time after the last byte",
                  ~((silent == watchdog + 2) & ~bridge.rx.valid) | bridge.idle)
    check.cover("bridge-watchdog", "a frame cut short is dropped",
                (bridge.timeouts != 0) & (silent == watchdog + 2))


class BufferReader(wiring.Component):
    """Streams beats ``0 .. count - 1`` of a memory with a synchronous read port onto ``out``.

    ``start`` latches ``count`` (at most ``depth``) and restarts from beat 0. Connect ``rd_addr`` /
    ``rd_en`` / ``rd_data`` to a read port (``transparent_for=()``): its data register doubles as
    the output register, held while ``out`` stalls. Throughput one beat per cycle, latency one
    cycle. The counters are as wide as the buffer, not the 32-bit register (short carry chains
    for FPGA clocks)."""

    def __init__(self, width: int, depth: int):
        self.depth = depth
        super().__init__({"start": In(1), "count": In(range(depth + 1)),
                          "out": Out(stream.Signature(width)),
                          "rd_addr": Out(range(max(depth, 2))), "rd_en": Out(1),
                          "rd_data": In(width)})

    def elaborate(self, platform):
        m = Module()
        index, left = Signal(range(max(self.depth, 2))), Signal(range(self.depth + 1))
        advance = ~self.out.valid | self.out.ready
        m.d.comb += [self.rd_en.eq(advance), self.rd_addr.eq(index),
                     self.out.payload.eq(self.rd_data)]
        with m.If(self.start):
            m.d.sync += [index.eq(0), left.eq(self.count), self.out.valid.eq(0)]
        with m.Elif(advance):
            m.d.sync += self.out.valid.eq(left != 0)
            with m.If(left != 0):
                m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
        return m


def reader_properties(check, reader: BufferReader):
    """The formal properties of a :class:`BufferReader` (``buffer-reader``,
    :mod:`accelsmith.hdl.formal`) over a memory whose word at each address is the address (a
    synchronous read port the harness drives), with any ``start``, ``count`` and backpressure:
    ``out`` keeps the stream rules between starts (a ``start`` withdraws the beat on offer and
    restarts from word 0); after a ``start`` the i-th beat carries word i, and no more than
    ``count`` beats leave."""
    group = "buffer-reader"
    check.stream(group, reader.out, True, name="out", restart=reader.start)
    if not check.proving(group):
        return
    m = check.m
    check.assume(reader.count <= reader.depth)        # the SoC refuses a START beyond its buffers
    word = Signal.like(reader.rd_data, name="f_word")
    with m.If(reader.rd_en):
        m.d.sync += word.eq(reader.rd_addr)
    m.d.comb += reader.rd_data.eq(word)
    beats = Signal(range(reader.depth + 2), name="f_beats")
    count = Signal.like(reader.count, name="f_count")
    with m.If(reader.start):
        m.d.sync += [beats.eq(0), count.eq(reader.count)]
    with m.Elif(reader.out.valid & reader.out.ready):
        m.d.sync += beats.eq(beats + 1)
    started = Signal(name="f_reader_started")
    with m.If(reader.start):
        m.d.sync += started.eq(1)
    check.require(group, "the i-th beat after a start carries word i",
                  ~(started & reader.out.valid) | (reader.out.payload == beats[:len(reader.out.payload)]))
    check.require(group, "no more beats than count", ~started | (beats <= count))
    check.require(group, "no beat before the first start", started | ~reader.out.valid)
    check.cover(group, "a full buffer streamed with a stall", started & (beats == reader.depth)
                & (count == reader.depth))


# Cycles the sequencer spends per job besides the engine's (see JobSequencer; proved exact).
JOB_OVERHEAD_CYCLES = 5


class JobSequencer(wiring.Component):
    """Runs ``jobs`` engine jobs back to back, feeding the engine from the operand buffers and
    writing its result rows into the result buffer.

    On ``start`` both :class:`BufferReader` s restart (``a_count`` / ``b_count`` beats, streamed
    in order across job boundaries: the engine takes what each job needs). Per job: the job's
    word is read from the job buffer and written to the engine's ``job_register`` (K_STEPS of
    the tensor engines, COUNT of the rasteriser), the engine is
    started, its STATUS polled until DONE, its STATUS.ERROR (when it has one) and CYCLES
    collected. Every ``c`` row is accepted at once (``c`` never stalls the engine) and written
    at ``c_count``; rows past the buffer's end are dropped and set ``overflow``.

    The engine register bus is shared with the host: in a cycle where ``grant`` is low the
    sequencer's access is not made and it retries the next cycle.

    Timing: :data:`JOB_OVERHEAD_CYCLES` per job (job word, its register, START, the poll that sees
    DONE, CYCLES) besides the engine's own job cycles, and one to finish a run; ``cycles`` counts every cycle ``busy`` is high.
    ``jobs``, ``a_count`` and ``b_count`` are taken at ``start`` (a host writing them during a run
    changes the next run, not this one) and are at most the buffers' depths (the SoC refuses a
    START otherwise), so the job and row counters are as wide as the buffers.
    """

    def __init__(self, engine_regs: list[Register], a_width: int, b_width: int, c_width: int,
                 a_depth: int, b_depth: int, c_depth: int, jobs_depth: int,
                 job_register: str = "K_STEPS"):
        self.engine_regs = {r.name: (addr, r) for addr, r in enumerate(engine_regs)}
        self.job_register = job_register
        self.a_reader = BufferReader(a_width, a_depth)
        self.b_reader = BufferReader(b_width, b_depth)
        self.c_depth, self.jobs_depth = c_depth, jobs_depth
        addr_width = max(1, (len(engine_regs) - 1).bit_length())
        index = lambda depth: range(max(depth, 2))
        super().__init__({
            "engine": Out(RegisterBusSignature(addr_width)), "grant": In(1),
            "a": Out(stream.Signature(a_width)), "b": Out(stream.Signature(b_width)),
            "c": In(stream.Signature(c_width)),
            "a_addr": Out(index(a_depth)), "a_en": Out(1), "a_data": In(a_width),
            "b_addr": Out(index(b_depth)), "b_en": Out(1), "b_data": In(b_width),
            "job_addr": Out(index(jobs_depth)), "job_en": Out(1), "job_data": In(32),
            "c_addr": Out(index(c_depth)), "c_en": Out(1), "c_data": Out(c_width),
            "start": In(1), "jobs": In(range(jobs_depth + 1)), "a_count": In(range(a_depth + 1)),
            "b_count": In(range(b_depth + 1)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "overflow": Out(1),
            "error_job": Out(range(max(jobs_depth, 2))), "error_count": Out(32),
            "c_count": Out(range(c_depth + 1)),
            "cycles": Out(32), "engine_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.a_reader = ar = self.a_reader
        m.submodules.b_reader = br = self.b_reader
        for reader, name in ((ar, "a"), (br, "b")):
            m.d.comb += [reader.start.eq(self.start & ~self.busy),
                         reader.count.eq(getattr(self, f"{name}_count")),
                         getattr(self, f"{name}_addr").eq(reader.rd_addr),
                         getattr(self, f"{name}_en").eq(reader.rd_en),
                         reader.rd_data.eq(getattr(self, f"{name}_data"))]
            wiring.connect(m, reader.out, wiring.flipped(getattr(self, name)))

        m.d.comb += self.c.ready.eq(1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.c_count.eq(0), self.overflow.eq(0)]
        with m.Elif(self.c.valid):
            with m.If(self.c_count < self.c_depth):
                m.d.comb += [self.c_en.eq(1), self.c_addr.eq(self.c_count),
                             self.c_data.eq(self.c.payload)]
                m.d.sync += self.c_count.eq(self.c_count + 1)
            with m.Else():
                m.d.sync += self.overflow.eq(1)

        bus, grant = self.engine, self.grant
        status_addr, status_reg = self.engine_regs["STATUS"]
        fields = {f.name: f.offset for f in status_reg.fields}
        job = Signal(range(self.jobs_depth + 1))
        jobs = Signal.like(self.jobs)       # latched at START: a host write of JOBS mid-run waits
        k_word = Signal(32)
        # A job's CYCLES is added the cycle after it is read (FETCH or FINISH follows), keeping
        # the 32-bit adder off the path through the register bus and its address decode.
        collected = Signal(32)
        m.d.sync += [self.engine_cycles.eq(self.engine_cycles + collected), collected.eq(0)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        def access(addr, data=None):
            m.d.comb += bus.addr.eq(addr)
            if data is not None:
                m.d.comb += [bus.w_en.eq(grant), bus.w_data.eq(data)]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [job.eq(0), jobs.eq(self.jobs), self.done.eq(0), self.error.eq(0),
                                 self.error_count.eq(0), self.error_job.eq(0), self.cycles.eq(0),
                                 self.engine_cycles.eq(0)]
                    with m.If(self.jobs == 0):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):
                m.next = "SET"              # the job word reaches k_word meanwhile
            with m.State("SET"):
                access(self.engine_regs[self.job_register][0], k_word)
                with m.If(grant):
                    m.next = "KICK"
            with m.State("KICK"):
                ctrl_addr, ctrl = self.engine_regs["CTRL"]
                access(ctrl_addr, 1 << ctrl.fields[0].offset)
                with m.If(grant):
                    m.next = "WAIT"
            with m.State("WAIT"):
                access(status_addr)
                status = bus.r_data
                with m.If(grant & status[fields["DONE"]] & ~status[fields["BUSY"]]):
                    if "ERROR" in fields:
                        with m.If(status[fields["ERROR"]]):
                            m.d.sync += [self.error.eq(1), self.error_count.eq(self.error_count + 1)]
                            with m.If(~self.error):
                                m.d.sync += self.error_job.eq(job)
                    m.next = "COLLECT"
            with m.State("COLLECT"):
                access(self.engine_regs["CYCLES"][0])
                with m.If(grant):
                    m.d.sync += [collected.eq(bus.r_data), job.eq(job + 1)]
                    with m.If(job + 1 == jobs):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FINISH"):
                m.d.sync += self.done.eq(1)
                m.next = "IDLE"
        # The job buffer is read a job ahead and its word registered (k_word), so the memory's
        # clock-to-output stays off the register bus: job 0 from IDLE, the next job from COLLECT.
        m.d.comb += [self.job_en.eq(1),
                     self.job_addr.eq(Mux(fsm.ongoing("IDLE"), 0,
                                          Mux(fsm.ongoing("COLLECT"), job + 1, job)))]
        m.d.sync += k_word.eq(self.job_data)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m


def sequencer_properties(check, seq: JobSequencer, engine_cycles: int = 2):
    """The formal properties of a :class:`JobSequencer` (:mod:`accelsmith.hdl.formal`) with a
    model of an engine behind its register bus (a START makes it BUSY until, any number of
    cycles later, DONE, with ERROR or not), a job buffer whose word ``i`` is ``i + 1``, any
    ``grant``, any counts within the buffers and any result rows (none in the cycle of a START:
    the engine sends rows only during its jobs, see ``results``):

    - ``sequencer``: ``a`` and ``b`` keep the stream rules between starts; the engine is started
      only while it is idle, with job ``i``'s word in its job register; a run starts exactly
      JOBS jobs (taken at START) and ends with DONE once the last one's DONE is seen; ERROR,
      ERROR_COUNT and ERROR_JOB say whether, how many and which job first ended with ERROR;
      CYCLES counts the run's cycles; no engine register is written without ``grant``; every
      row on ``c`` is accepted at once and stored at the next address, or, past the buffer's
      end, counted as OVERFLOW;
    - ``sequencer-liveness``: with ``grant`` high and engine jobs of ``engine_cycles`` cycles
      at most, a run of ``n`` jobs is BUSY for ``n * (engine_cycles + JOB_OVERHEAD_CYCLES) + 1``
      cycles at most (and a run can take that long: the bound is exact).
    """
    m = check.m
    addr = {name: a for name, (a, _) in seq.engine_regs.items()}
    status_fields = {f.name: f.offset for f in seq.engine_regs["STATUS"][1].fields}
    start_bit = seq.engine_regs["CTRL"][1].fields[0].offset
    bus, busy = seq.engine, seq.busy
    run_start = seq.start & ~busy
    check.stream("sequencer", seq.a, True, name="a", restart=run_start)
    check.stream("sequencer", seq.b, True, name="b", restart=run_start)
    check.stream("sequencer", seq.c, False, name="c")
    check.assume(~(seq.c.valid & run_start))
    check.assume((seq.jobs <= seq.jobs_depth) & (seq.a_count <= seq.a_reader.depth)
                 & (seq.b_count <= seq.b_reader.depth))

    # The engine: BUSY from a START until it finishes (a free choice, or forced after
    # engine_cycles in the liveness proof), then DONE with a free ERROR.
    eng_busy, eng_done, eng_error = (Signal(name=f"f_engine_{n}") for n in ("busy", "done", "error"))
    eng_time = Signal(range(engine_cycles + 1), name="f_engine_time")
    finish, flag = check.free(1, "f_engine_finishes"), check.free(1, "f_engine_flags")
    if check.proving("sequencer-liveness"):
        check.assume(seq.grant & (~eng_busy | (eng_time < engine_cycles - 1) | finish))
    kick = bus.w_en & (bus.addr == addr["CTRL"]) & bus.w_data[start_bit]
    with m.If(kick & ~eng_busy):
        m.d.sync += [eng_busy.eq(1), eng_done.eq(0), eng_error.eq(0), eng_time.eq(0)]
    with m.Elif(eng_busy & finish):
        m.d.sync += [eng_busy.eq(0), eng_done.eq(1), eng_error.eq(flag)]
    with m.Elif(eng_busy):
        m.d.sync += eng_time.eq(eng_time + 1)
    status = Signal(32, name="f_engine_status")
    for name, bit in (("BUSY", eng_busy), ("DONE", eng_done), ("ERROR", eng_error)):
        if name in status_fields:
            m.d.comb += status[status_fields[name]].eq(bit)
    m.d.comb += bus.r_data.eq(Mux(bus.addr == addr["STATUS"], status, check.free(32, "f_engine_word")))
    # Synchronous read ports (the data holds while the port is not enabled): the operand
    # buffers hold their addresses, the job buffer word i + 1.
    for en, address, data, offset in ((seq.a_en, seq.a_addr, seq.a_data, 0),
                                      (seq.b_en, seq.b_addr, seq.b_data, 0),
                                      (seq.job_en, seq.job_addr, seq.job_data, 1)):
        word = Signal.like(data, name=f"f_{data.name}")
        with m.If(en):
            m.d.sync += word.eq(address + offset)
        m.d.comb += data.eq(word)

    # What the run should do, counted beside it.
    jobs, starts, errors = (Signal(8, name=f"f_{n}") for n in ("jobs", "starts", "errors"))
    first_error, written, cycles = Signal(8, name="f_first_error"), Signal(32, name="f_written"), Signal(32, name="f_cycles")
    rows = Signal(range(seq.c_depth + 2), name="f_rows")
    with m.If(run_start):
        m.d.sync += [jobs.eq(seq.jobs), starts.eq(0), errors.eq(0), cycles.eq(0), rows.eq(0)]
    with m.Else():
        with m.If(kick):
            m.d.sync += starts.eq(starts + 1)
        with m.If(eng_busy & finish & flag & busy):
            m.d.sync += errors.eq(errors + 1)
            with m.If(errors == 0):
                m.d.sync += first_error.eq(starts - 1)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(seq.c.valid & (rows <= seq.c_depth)):
            m.d.sync += rows.eq(rows + 1)
    with m.If(bus.w_en & (bus.addr == addr[seq.job_register])):
        m.d.sync += written.eq(bus.w_data)
    ended = check.started & check.past(busy, "f_was_busy") & ~busy
    group = "sequencer"
    check.require(group, "the engine is started only while idle", ~(kick & eng_busy))
    check.require(group, "job i starts with word i in the job register", ~kick | (written == starts + 1))
    check.require(group, "no engine register written without grant", ~bus.w_en | seq.grant)
    check.require(group, "a run starts exactly JOBS jobs, DONE after the last one's",
                  ~ended | (starts == jobs) & seq.done & ~eng_busy)
    check.require(group, "ERROR, ERROR_COUNT and ERROR_JOB after a run",
                  ~ended | (seq.error == (errors != 0)) & (seq.error_count == errors)
                  & (~seq.error | (seq.error_job == first_error)))
    check.require(group, "CYCLES counts the run's cycles", ~ended | (seq.cycles == cycles))
    check.require(group, "every row is accepted at once", seq.c.ready)
    check.require(group, "a row is stored at the next address, or past the end counted",
                  ~seq.c.valid | (seq.c_en & (seq.c_addr == rows) & (seq.c_data == seq.c.payload))
                  | (rows >= seq.c_depth))
    check.require(group, "OVERFLOW once a row found the buffer full", seq.overflow == (rows > seq.c_depth))
    check.cover(group, "a run of every job, one with ERROR, ends", ended & (jobs == seq.jobs_depth) & (errors == 1))
    check.cover(group, "a row past the buffer's end", seq.overflow)
    limit = jobs * (engine_cycles + JOB_OVERHEAD_CYCLES) + 1
    check.require("sequencer-liveness", "a run ends within jobs * (engine cycles + overhead) + 1 cycles",
                  ~busy | (cycles < limit))
    check.cover("sequencer-liveness", "the longest run ends",
                ended & (jobs == seq.jobs_depth) & (cycles == limit))


@dataclass(frozen=True)
class Buffer:
    """One buffer of the address map: ``depth`` beats of ``width`` bits, each beat at
    ``words`` (a power of two) consecutive 32-bit words, least significant word first."""

    name: str
    base: int           # byte address
    width: int
    depth: int
    host: str           # "write" (operands, jobs) or "read" (results)

    @property
    def words(self) -> int:
        return 1 << max(0, (-(-self.width // 32) - 1).bit_length())

    @property
    def size(self) -> int:
        return self.depth * self.words * 4


def _ident_registers() -> list[Register]:
    return [
        Register("MAGIC", "ro", f"Identifies an accelsmith SoC: {MAGIC:#010x} ('acsm')."),
        Register("VERSION", "ro", "Format version of this register map and of csr.csv."),
        Register("CONFIG_HASH", "ro", "First 32 bits of the SHA-256 of the canonical config "
                 "(engine and SoC keys): the driver refuses hardware built from another config."),
        Register("A_DEPTH", "ro", "Beats the A buffer holds."),
        Register("B_DEPTH", "ro", "Beats the B buffer holds."),
        Register("C_DEPTH", "ro", "Result rows the C buffer holds."),
        Register("JOB_DEPTH", "ro", "Job words the job buffer holds."),
        Register("WATCHDOG", "ro", "Bridge watchdog in clock cycles."),
    ]


def _seq_registers() -> list[Register]:
    return [
        Register("CTRL", "wo", "Sequencer commands.", (
            Field("START", 0, 1, "Run JOBS jobs; ignored while BUSY; refused (STATUS.REFUSED) "
                  "when a count exceeds its buffer."),
            Field("CLEAR_CRC", 1, 1, "Restart both checksums."),
            Field("ABORT", 2, 1, "Reset the engine and the sequencer (buffers keep their data)."))),
        Register("STATUS", "ro", "Sequencer status.", (
            Field("BUSY", 0, 1, "A run is in progress."),
            Field("DONE", 1, 1, "The last run finished; cleared by START."),
            Field("ERROR", 2, 1, "A job of the last run ended with the engine's STATUS.ERROR."),
            Field("OVERFLOW", 3, 1, "Result rows were dropped: the C buffer was full."),
            Field("REFUSED", 4, 1, "The last START was refused: JOBS, A_COUNT or B_COUNT "
                  "exceeds its buffer."))),
        Register("JOBS", "rw", "Engine jobs per run; job i takes its engine word (K_STEPS, or "
                 "COUNT of a rasteriser) from job word i."),
        Register("A_COUNT", "rw", "A beats streamed into the engine per run."),
        Register("B_COUNT", "rw", "B beats streamed into the engine per run."),
        Register("C_COUNT", "ro", "Result rows written in the current or last run."),
        Register("CYCLES", "ro", "Cycles the current or last run has been BUSY."),
        Register("ENGINE_CYCLES", "ro", "Sum of the engine's CYCLES over the run's jobs."),
        Register("ERROR_JOB", "ro", "Index of the first job that ended with an engine error."),
        Register("ERROR_COUNT", "ro", "Jobs of the run that ended with an engine error."),
        Register("WRITE_CRC", "ro", "CRC-32 (zlib's) of every word written into a buffer since "
                 "CLEAR_CRC, each as four little-endian bytes, in bus order."),
        Register("READ_CRC", "ro", "CRC-32 of every word read out of a buffer since CLEAR_CRC."),
        Register("TIMEOUTS", "ro", "Frames the bridge watchdog dropped (wraps at 2**16)."),
        Register("SCRATCH", "rw", "Free for the host (link tests)."),
        Register("LINK_ERRORS", "ro", "UART SoCs: bytes dropped for a framing error (bits "
                 "0-15) and for an overrun (bits 16-31); 0 on a byte-stream SoC."),
    ]


class MemoryMap:
    """Byte addresses of the SoC: CSR blocks of 64 words at 0x000 (``ident``), 0x100 (``seq``),
    0x200 (``engine``); buffers at multiples of 16 MiB (``a``, ``b``, ``c``, ``jobs``)."""

    BLOCK_WORDS = 64
    REGION_SHIFT = 24

    def __init__(self, engine_regs: list[Register], a_width: int, b_width: int, c_width: int,
                 a_depth: int, b_depth: int, c_depth: int, jobs_depth: int):
        self.blocks = {"ident": (0x000, _ident_registers()), "seq": (0x100, _seq_registers()),
                       "engine": (0x200, list(engine_regs))}
        for name, (_, regs) in self.blocks.items():
            if len(regs) > self.BLOCK_WORDS:
                raise ValueError(f"CSR block {name}: {len(regs)} registers, at most 64")
        self.buffers = {
            "a": Buffer("a", 1 << self.REGION_SHIFT, a_width, a_depth, "write"),
            "b": Buffer("b", 2 << self.REGION_SHIFT, b_width, b_depth, "write"),
            "c": Buffer("c", 3 << self.REGION_SHIFT, c_width, c_depth, "read"),
            "jobs": Buffer("jobs", 4 << self.REGION_SHIFT, 32, jobs_depth, "write"),
        }
        for buf in self.buffers.values():
            if buf.size > 1 << self.REGION_SHIFT:
                raise ValueError(f"buffer {buf.name}: {buf.size} bytes, at most 16 MiB")

    def registers(self) -> list[dict]:
        """Every register as ``{"name": "seq_status", "byte_address", "access", "fields"...}``."""
        out = []
        for block, (base, regs) in self.blocks.items():
            for i, reg in enumerate(regs):
                desc = reg.describe(i)
                desc.update(name=f"{block}_{reg.name.lower()}", block=block, byte_address=base + 4 * i,
                            address=(base >> 2) + i)
                out.append(desc)
        return out

    def describe(self) -> dict:
        return {"csr_blocks": {name: base for name, (base, _) in self.blocks.items()},
                "registers": self.registers(),
                "buffers": {b.name: {"base": b.base, "width": b.width, "depth": b.depth,
                                     "words_per_beat": b.words, "size": b.size, "host": b.host}
                            for b in self.buffers.values()}}


class SoC(wiring.Component):
    """An engine inside its SoC: :class:`UARTBoneBridge` on ``rx`` / ``tx`` (an 8-bit byte stream,
    a socket in simulation; with ``uart_divisor``, the pins of a :class:`~accelsmith.hdl.uart.
    UARTPHY` at that many cycles per bit, as on a board), the :class:`MemoryMap`'s registers and
    buffers (``amaranth.lib.memory``), and a :class:`JobSequencer` between the buffers and the
    engine's streams.

    Buffers are written (A, B, jobs) or read (C) by the host, one 32-bit word per bus access;
    the sequencer reads / writes whole beats. Host writes past a buffer's end are dropped (and
    left out of WRITE_CRC); reads of the write-only buffers and of unmapped addresses return 0. ``idle`` is high while the bridge waits for a
    command and no run is in progress (a simulation may stop clocking then).
    """

    def __init__(self, engine, map: MemoryMap, *, config_hash: int, watchdog_cycles: int,
                 uart_divisor: int | None = None):
        self.engine = engine
        self.map = map
        self.config_hash = config_hash & 0xFFFFFFFF
        self.bridge = UARTBoneBridge(watchdog_cycles)
        bufs = map.buffers
        self.sequencer = JobSequencer(
            map.blocks["engine"][1], bufs["a"].width, bufs["b"].width, bufs["c"].width,
            bufs["a"].depth, bufs["b"].depth, bufs["c"].depth, bufs["jobs"].depth,
            getattr(engine, "JOB_REGISTER", "K_STEPS"))
        self.phy = None if uart_divisor is None else UARTPHY(uart_divisor)
        if self.phy is None:
            link = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))}
        else:
            link = {"rx": In(1, init=1), "tx": Out(1, init=1)}
        super().__init__({**link, "idle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bufs = self.map.buffers
        m.submodules.bridge = bridge = self.bridge
        link_errors = C(0, 32)
        if self.phy is None:
            wiring.connect(m, wiring.flipped(self.rx), bridge.rx)
            wiring.connect(m, bridge.tx, wiring.flipped(self.tx))
        else:
            m.submodules.phy = phy = self.phy
            m.d.comb += [phy.rx.eq(self.rx), self.tx.eq(phy.tx)]
            wiring.connect(m, phy.rx_data, bridge.rx)
            wiring.connect(m, bridge.tx, phy.tx_data)
            link_errors = Cat(phy.framing_errors, phy.overruns)
        bus = bridge.bus

        abort = Signal()
        m.submodules.engine = ResetInserter(abort)(self.engine)
        m.submodules.sequencer = ResetInserter(abort)(seq := self.sequencer)
        eng = self.engine

        ident = RegisterFile(self.map.blocks["ident"][1])
        regs = RegisterFile(self.map.blocks["seq"][1])
        m.submodules.ident, m.submodules.seq_regs = ident, regs
        m.d.comb += [ident.magic.eq(MAGIC), ident.version.eq(FORMAT_VERSION),
                     ident.config_hash.eq(self.config_hash), ident.a_depth.eq(bufs["a"].depth),
                     ident.b_depth.eq(bufs["b"].depth), ident.c_depth.eq(bufs["c"].depth),
                     ident.job_depth.eq(bufs["jobs"].depth),
                     ident.watchdog.eq(self.bridge.watchdog_cycles)]

        # Decode: byte address bits [24:32) pick a buffer (0: the CSR blocks), bits [8:10) a block.
        # Registered: the bridge sets an address at least a cycle before it strobes it (see
        # UARTBoneBridge), and the compares stay off the paths behind the strobes.
        region = bus.addr[self.map.REGION_SHIFT - 2:30]
        offset = bus.addr[:self.map.REGION_SHIFT - 2]
        block, index = bus.addr[6:8], bus.addr[:6]
        csr_files = {"ident": ident.bus, "seq": regs.bus, "engine": None}

        def decoded(condition, name):
            hit = Signal(name=f"hit_{name}")
            m.d.sync += hit.eq(condition)
            return hit
        hits = {}
        for n, name in enumerate(("ident", "seq", "engine")):
            count = len(self.map.blocks[name][1])
            hits[name] = decoded((region == 0) & (bus.addr[8:self.map.REGION_SHIFT - 2] == 0) &
                                 (block == n) & (index < count), name)
        for name in ("ident", "seq"):
            port = csr_files[name]
            m.d.comb += [port.addr.eq(index), port.w_data.eq(bus.w_data),
                         port.w_en.eq(bus.w_stb & hits[name])]

        # The engine's register bus: the host's access wins its cycle, the sequencer waits.
        host_engine = (bus.w_stb | bus.r_stb) & hits["engine"]
        m.d.comb += seq.grant.eq(~host_engine)
        with m.If(host_engine):
            m.d.comb += [eng.csr.addr.eq(index), eng.csr.w_data.eq(bus.w_data),
                         eng.csr.w_en.eq(bus.w_stb)]
        with m.Else():
            m.d.comb += [eng.csr.addr.eq(seq.engine.addr), eng.csr.w_data.eq(seq.engine.w_data),
                         eng.csr.w_en.eq(seq.engine.w_en)]
        m.d.comb += seq.engine.r_data.eq(eng.csr.r_data)

        # Engine streams: the same bits, whatever layout the engine gives them.
        for name in ("a", "b"):
            src, dst = getattr(seq, name), getattr(eng, name)
            m.d.comb += [dst.valid.eq(src.valid), dst.payload.as_value().eq(src.payload),
                         src.ready.eq(dst.ready)]
        m.d.comb += [seq.c.valid.eq(eng.c.valid), seq.c.payload.eq(eng.c.payload.as_value()),
                     eng.c.ready.eq(seq.c.ready)]

        # Buffers.
        read_data = {}
        write_crc, read_crc = crc.Processor(CRC32), crc.Processor(CRC32)
        m.submodules.write_crc, m.submodules.read_crc = write_crc, read_crc
        buffer_write = Signal()
        for n, buf in enumerate(bufs.values(), start=1):
            mem = Memory(shape=buf.words * 32, depth=buf.depth, init=[])
            m.submodules[f"{buf.name}_buf"] = mem
            lane_bits = (buf.words - 1).bit_length()
            beat = offset[lane_bits:]
            lane = offset[:lane_bits]
            hit = decoded((region == n) & (beat < buf.depth), buf.name)
            if buf.host == "write":
                wp = mem.write_port(granularity=32)
                m.d.comb += [wp.addr.eq(beat), wp.data.eq(bus.w_data.replicate(buf.words)),
                             wp.en.eq(Mux(bus.w_stb & hit, 1 << lane if lane_bits else 1, 0))]
                with m.If(bus.w_stb & hit):
                    m.d.comb += buffer_write.eq(1)
                rp = mem.read_port(transparent_for=())
                port = "job" if buf.name == "jobs" else buf.name
                m.d.comb += [rp.addr.eq(getattr(seq, f"{port}_addr")),
                             rp.en.eq(getattr(seq, f"{port}_en")),
                             getattr(seq, f"{port}_data").eq(rp.data)]
            else:
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(seq.c_addr), wp.data.eq(seq.c_data), wp.en.eq(seq.c_en)]
                rp = mem.read_port(transparent_for=())
                lane_q = Signal(max(lane_bits, 1))
                beat_q = Signal(rp.data.shape(), name=f"{buf.name}_read_beat")
                m.d.comb += [rp.addr.eq(beat), rp.en.eq(bus.r_stb)]
                with m.If(bus.r_stb):
                    m.d.sync += lane_q.eq(lane)
                # The RAM's output straight into registers (it holds while ``en`` is low).
                m.d.sync += beat_q.eq(rp.data)
                words = [beat_q[32 * i:32 * (i + 1)] for i in range(buf.words)]
                read_data[n] = (hit, Array(words)[lane_q] if lane_bits else words[0])

        # Read data, two cycles after r_stb: registered CSR words, or a buffer's registered beat.
        csr_word = Signal(32)
        kind = Signal(range(len(bufs) + 2))      # 0: nothing/CSR, n: buffer n
        with m.If(bus.r_stb):
            m.d.sync += [csr_word.eq(Mux(hits["ident"], ident.bus.r_data, 0)
                                     | Mux(hits["seq"], regs.bus.r_data, 0)
                                     | Mux(hits["engine"], eng.csr.r_data, 0)), kind.eq(0)]
            for n, (hit, _) in read_data.items():
                with m.If(hit):
                    m.d.sync += kind.eq(n)
        was_read = Signal(2)        # r_stb one and two cycles ago
        m.d.sync += was_read.eq(Cat(bus.r_stb, was_read[0]))
        m.d.comb += bus.r_data.eq(csr_word)
        for n, (_, word) in read_data.items():
            with m.If(kind == n):
                m.d.comb += bus.r_data.eq(word)

        # The CRCs take their words a cycle late, through registers: the XOR network stays off
        # the read-data multiplexer (the host reads the CRCs many cycles after its transfer).
        clear_crc = Signal()        # a cycle late as well, so the order with the words stays
        m.d.sync += clear_crc.eq(regs.ctrl_stb & regs.ctrl[1])
        crc_in = {name: (Signal(name=f"{name}_crc_valid"), Signal(32, name=f"{name}_crc_word"))
                  for name in ("write", "read")}
        m.d.sync += [crc_in["write"][0].eq(buffer_write), crc_in["write"][1].eq(bus.w_data),
                     crc_in["read"][0].eq(was_read[1] & (kind != 0)), crc_in["read"][1].eq(bus.r_data)]
        for name, proc in (("write", write_crc), ("read", read_crc)):
            m.d.comb += [proc.start.eq(clear_crc), proc.valid.eq(crc_in[name][0]),
                         proc.data.eq(crc_in[name][1])]

        # Sequencer control.
        # Registered: the counts are written at least one bus write before START, and the
        # 32-bit compares stay off the path from the bridge's write strobe.
        too_many = Signal()
        m.d.sync += too_many.eq((regs.jobs > bufs["jobs"].depth) | (regs.a_count > bufs["a"].depth)
                                | (regs.b_count > bufs["b"].depth))
        start = regs.ctrl_stb & regs.ctrl[0]
        refused = Signal()
        with m.If(start & ~seq.busy):
            m.d.sync += refused.eq(too_many)
        m.d.comb += [abort.eq(regs.ctrl_stb & regs.ctrl[2]),
                     seq.start.eq(start & ~too_many), seq.jobs.eq(regs.jobs),
                     seq.a_count.eq(regs.a_count), seq.b_count.eq(regs.b_count),
                     regs.status.eq(Cat(seq.busy, seq.done, seq.error, seq.overflow, refused)),
                     regs.c_count.eq(seq.c_count), regs.cycles.eq(seq.cycles),
                     regs.engine_cycles.eq(seq.engine_cycles), regs.error_job.eq(seq.error_job),
                     regs.error_count.eq(seq.error_count), regs.write_crc.eq(write_crc.crc),
                     regs.read_crc.eq(read_crc.crc), regs.timeouts.eq(bridge.timeouts),
                     regs.link_errors.eq(link_errors),
                     self.idle.eq(bridge.idle & ~seq.busy)]
        return m
