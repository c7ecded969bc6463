"""8N1 UART: the byte stream of the SoC's host bridge on two pins.

One start bit (0), eight data bits least significant first, one stop bit (1); the bit time is
``divisor`` clock cycles (:func:`uart_divisor` picks it from the clock and the baud rate, at
least 4).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["uart_divisor", "UARTTransmitter", "UARTReceiver", "UARTPHY", "receiver_properties"]


def uart_divisor(clock_hz: int, baud: int, tolerance: float = 0.01) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``: at least 4, and the rounded divisor's
    baud rate within ``tolerance`` of the one asked for (a receiver tolerates about 4 % in all,
    shared between both ends)."""
    if baud <= 0 or clock_hz <= 0:
        raise ValueError(f"baud {baud} and clock {clock_hz} Hz must be positive")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"{baud} baud needs at least 4 clock cycles per bit: {clock_hz} Hz allows "
                         f"at most {clock_hz // 4} baud")
    error = abs(clock_hz / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"{baud} baud at {clock_hz} Hz: the nearest divisor {divisor} gives "
                         f"{clock_hz / divisor:.0f} baud, {100 * error:.2f} % off (at most "
                         f"{100 * tolerance:g} %)")
    return divisor


class UARTTransmitter(wiring.Component):
    """Sends each byte accepted on ``data`` as an 8N1 frame on ``tx`` (a register, idle high).

    Timing: ``tx`` changes one cycle after a byte is accepted; the next byte is accepted in the
    cycle after the stop bit's ``divisor`` cycles, so back-to-back bytes take ``10 * divisor + 1``
    cycles each (proved: :func:`transmitter_properties`)."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor {divisor}: at least 4 cycles per bit")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10)                     # stop, data[7:0], start; sent from bit 0
        bits = Signal(range(11))
        count = Signal(range(self.divisor))
        # bits == 0 as a register of its own: ``ready`` reaches the bridge's watchdog logic.
        idle = Signal(init=1)
        m.d.comb += self.data.ready.eq(idle)
        with m.If(idle):
            with m.If(self.data.valid):
                m.d.sync += [frame.eq(Cat(C(0, 1), self.data.payload, C(1, 1))),
                             bits.eq(10), count.eq(self.divisor - 1), self.tx.eq(0), idle.eq(0)]
        with m.Elif(count == 0):
            m.d.sync += [frame.eq(frame >> 1), bits.eq(bits - 1), count.eq(self.divisor - 1),
                         self.tx.eq(Mux(bits == 1, 1, frame[1])), idle.eq(bits == 1)]
        with m.Else():
            m.d.sync += count.eq(count - 1)
        return m


class UARTReceiver(wiring.Component):
    """Receives 8N1 frames on ``rx`` into bytes on ``data``.

    ``rx`` passes two synchronising flip-flops; every bit is the majority of three samples
    around its middle (from 8 cycles per bit; below, the middle sample), so a glitch of one
    cycle changes nothing. A falling edge starts a frame
    only if the start bit is still low at its middle (a glitch on an idle line is ignored). A
    stop bit found low is a framing error: the byte is dropped, ``framing_errors`` counts it and
    the receiver waits for the line to return high before the next frame, so a break or a line
    held low never produces bytes. A byte arriving while the previous one is still on offer is
    dropped and counted in ``overruns``.

    Timing: a byte is offered about ``9.5 * divisor + 4`` cycles after its start edge; ``data``
    keeps the stream rules (held until accepted). Tolerates a baud-rate mismatch of a few per
    cent (tested at +-2 % from 4 cycles per bit up)."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor {divisor}: at least 4 cycles per bit")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                          "framing_errors": Out(16), "overruns": Out(16)})

    def _vote(self, samples):
        """A bit's value from three consecutive samples around its middle: their majority, or
        from fewer than 8 cycles per bit (a three-cycle window is too wide) the middle one."""
        if self.divisor >= 8:
            return (samples[0] & samples[1]) | (samples[1] & samples[2]) | (samples[0] & samples[2])
        return samples[1]

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        sync = Signal(2, init=0b11)
        samples = Signal(3, init=0b111)       # the last three synchronised samples
        m.d.sync += [sync.eq(Cat(self.rx, sync[0])), samples.eq(Cat(sync[1], samples[:2]))]
        line = sync[1]
        vote = self._vote(samples)
        count = Signal(range(d + 1))
        bits = Signal(range(9))
        byte = Signal(8)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    # The vote's three samples lag the line by one to three cycles: counting
                    # d // 2 + 1 centres its window on the middle of the start bit. Right after
                    # a stop bit the line may have fallen a cycle or two before this state
                    # looked (a fast sender): the samples say how long ago, and count less.
                    late = Mux(samples[0], 0, Mux(samples[1], 1, 2))
                    m.d.sync += count.eq(d // 2 + 1 - late)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(vote):
                        m.next = "IDLE"         # too short for a start bit: a glitch
                    with m.Else():
                        m.d.sync += [count.eq(d - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.d.sync += [byte.eq(Cat(byte[1:], vote)), bits.eq(bits + 1),
                                 count.eq(d - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(~vote):
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = "BREAK"
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.sync += self.overruns.eq(self.overruns + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.data.valid.eq(1), self.data.payload.eq(byte)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(vote & line):
                    m.next = "IDLE"
        return m


class UARTPHY(wiring.Component):
    """A :class:`UARTReceiver` and a :class:`UARTTransmitter` at one ``divisor``: ``rx`` / ``tx``
    pins on one side, the bridge's byte streams (``rx_data`` out, ``tx_data`` in) on the other."""

    def __init__(self, divisor: int):
        self.receiver = UARTReceiver(divisor)
        self.transmitter = UARTTransmitter(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "rx_data": Out(stream.Signature(8)), "tx_data": In(stream.Signature(8)),
                          "framing_errors": Out(16), "overruns": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = self.receiver
        m.submodules.transmitter = tx = self.transmitter
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     self.framing_errors.eq(rx.framing_errors), self.overruns.eq(rx.overruns)]
        wiring.connect(m, rx.data, wiring.flipped(self.rx_data))
        wiring.connect(m, wiring.flipped(self.tx_data), tx.data)
        return m


def transmitter_properties(check, transmitter: UARTTransmitter):
    """The formal property of a :class:`UARTTransmitter` (``uart-transmit``,
    :mod:`accelsmith.hdl.formal`), with any bytes offered on ``data`` (keeping the stream rules):
    from the cycle after a byte is taken, ``tx`` carries its frame, a low start bit, the bits LSB
    first and a high stop bit, each ``divisor`` cycles; no byte is taken while a frame is on the
    line, the next one is taken in the cycle after it, and between frames the line is high."""
    group = "uart-transmit"
    check.stream(group, transmitter.data, False, name="data")
    if not check.proving(group):
        return
    m, d, data = check.m, transmitter.divisor, transmitter.data
    length = 10 * d
    at = Signal(range(length + 2), init=length + 1, name="f_at")   # cycles since a byte was taken
    byte = Signal(8, name="f_byte")
    sent = Signal(2, name="f_sent")
    with m.If(data.valid & data.ready):
        m.d.sync += [at.eq(1), byte.eq(data.payload), sent.eq(sent + (sent != 3))]
    with m.Elif(at <= length):
        m.d.sync += at.eq(at + 1)
    wave = Cat(C(0, d), *[bit.replicate(d) for bit in byte], C(1, 1).replicate(d))
    framing = (at >= 1) & (at <= length)
    check.require(group, "the frame of the byte taken: start, bits LSB first, stop, divisor cycles each",
                  ~framing | (transmitter.tx == wave.bit_select((at - 1)[:len(at)], 1)))
    check.require(group, "the line is high between frames", framing | transmitter.tx)
    check.require(group, "a byte is taken only between frames, and then at once", data.ready == ~framing)
    check.cover(group, "two frames back to back", (sent == 2) & (at == 1))


def receiver_properties(check, receiver: UARTReceiver):
    """The formal properties of a :class:`UARTReceiver` (:mod:`accelsmith.hdl.formal`); the
    harness drives ``rx``:

    - ``uart-stream``: with any bits on ``rx`` and any backpressure, ``data`` keeps the stream
      rules;
    - ``uart-recovery``: whatever came before (glitches, frames cut short, framing errors, a
      line held low), once the line has been high for 11 bit times a well-formed frame of any
      byte is received as that byte, within ``10 * divisor + 6`` cycles of its start edge;
    - ``uart-glitch`` (8 or more cycles per bit, the majority vote): a frame of any byte with
      any one cycle of each bit inverted is received as that byte.
    """
    from amaranth.asserts import AnyConst, AnySeq

    m, d = check.m, receiver.divisor
    if check.proving("uart-glitch"):
        _glitched_frame(check, receiver)
        return
    noise = AnySeq(1)
    if check.proving("uart-stream"):
        m.d.comb += receiver.rx.eq(noise)
        check.stream("uart-stream", receiver.data, True, name="data")
        check.cover("uart-stream", "a byte received", receiver.data.valid)
    if not check.proving("uart-recovery"):
        return
    byte = AnyConst(8)
    go = AnySeq(1)
    # A frame on a line held idle for 11 bit times: long enough for a frame the noise started
    # to end (its remaining bits read as ones) before this one's start edge.
    idle = 11 * d
    high = C(1, 1)
    frame = Cat(high.replicate(idle), C(0, d), *[bit.replicate(d) for bit in byte], high.replicate(d))
    deadline = idle + 10 * d + 6
    at = Signal(range(deadline + 2), name="f_at")      # cycles since the idle line began
    sending = Signal(name="f_sending")
    got = Signal(name="f_got")
    # The frame comes after at least 11 bit times of noise: room for a whole frame of it, a
    # framing error and a break (both are among the behaviours the cover statements reach).
    noise_cycles = Signal(range(idle + 1), name="f_noise_cycles")
    with m.If(noise_cycles < idle):
        m.d.sync += noise_cycles.eq(noise_cycles + 1)
    check.assume(~go | (noise_cycles == idle))
    with m.If(~sending & go):
        m.d.sync += sending.eq(1)
    with m.Elif(sending & (at <= deadline)):
        m.d.sync += at.eq(at + 1)
    m.d.comb += receiver.rx.eq(Mux(sending, Mux(at < len(frame), frame.bit_select(at, 1), 1), noise))
    check.assume(receiver.data.ready)
    with m.If(sending & (at > idle) & receiver.data.valid & (receiver.data.payload == byte)):
        m.d.sync += got.eq(1)
    check.require("uart-recovery", "after 11 idle bit times a frame is received as sent",
                  ~(sending & (at == deadline)) | got)
    check.cover("uart-recovery", "a frame after a framing error is received",
                sending & got & (at == deadline) & (receiver.framing_errors != 0))


def _glitched_frame(check, receiver: UARTReceiver):
    """``uart-glitch`` (see :func:`receiver_properties`): from an idle line, a frame of any
    byte in which any one cycle of every bit (start and stop bits included) may be inverted is
    received as that byte, within ``10 * divisor + 6`` cycles of its start."""
    from amaranth.asserts import AnyConst

    m, d = check.m, receiver.divisor
    byte = AnyConst(8)
    glitched = AnyConst(10)                                   # which bits have a glitch
    where = [AnyConst(range(d)) for _ in range(10)]          # the cycle of each bit's glitch
    lead = 2                                                   # idle cycles before the frame
    deadline = lead + 10 * d + 6
    at = Signal(range(deadline + 2), name="f_at")
    with m.If(at <= deadline):
        m.d.sync += at.eq(at + 1)
    bit, phase = Signal(range(11), name="f_bit"), Signal(range(d), name="f_phase")
    with m.If(at >= lead):
        m.d.sync += phase.eq(Mux(phase == d - 1, 0, phase + 1))
        with m.If((phase == d - 1) & (bit < 10)):
            m.d.sync += bit.eq(bit + 1)
    level = Array([C(0, 1), *byte, C(1, 1)])[bit]
    flip = Array(glitched)[bit] & (phase == Array(where)[bit])
    m.d.comb += receiver.rx.eq(Mux((at >= lead) & (bit < 10), level ^ flip, 1))
    check.assume(receiver.data.ready)
    got = Signal(name="f_got")
    with m.If(receiver.data.valid & (receiver.data.payload == byte)):
        m.d.sync += got.eq(1)
    check.require("uart-glitch", "a frame with a glitch in every bit is received as sent",
                  ~(at == deadline) | got)
    check.require("uart-glitch", "no framing error from a glitch", receiver.framing_errors == 0)
    check.cover("uart-glitch", "a frame with every bit glitched is received",
                got & (glitched == 0x3FF))
