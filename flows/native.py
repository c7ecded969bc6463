"""The SoC as a native Verilator model: built into a shared library that Python steps in batches
of cycles, its bridge byte stream carried in process (:class:`SimTransport`) or over a local TCP
socket (:func:`serve`, ``accelsmith sim-server``).

No cocotb here: the C++ loop below clocks the model, offers one host byte per cycle on ``rx``
and collects ``tx`` bytes, so a batch of cycles costs one call from Python.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import re
import select
import socket
import sys
import time
from pathlib import Path

from accelsmith.hdl.dsp import sim_models_for
from accelsmith.sw_driver.transport import Transport, TransportError

from .tools import ToolError, run, verilator, verilator_env

__all__ = ["harness", "build_native", "NativeSoC", "SimTransport", "serve", "serve_pty",
           "cache_dir", "compact_memory_inits"]

_HEAD = r"""
// Native SoC model, stepped from Python in batches of cycles.
// (Verilator spells the Verilog port rx__valid as rx___05Fvalid.)
#include "V@TOP@.h"
#include "verilated.h"
#include <cstdint>

struct Sim {
    VerilatedContext* ctx; V@TOP@* top; uint64_t cycles;
    // UART SoCs: the host's end of the line, bit-level, @DIV@ cycles per bit.
    int out_bit; uint32_t out_count; uint16_t out_frame;      // host -> rx pin (-1: idle)
    int in_state; uint32_t in_count; int in_bit; uint8_t in_byte; uint64_t high_run;
    int bad_stop_next; int64_t glitch_in; int64_t glitch_every;  // faults to inject
};

static void tick(Sim* s) {
    s->top->clk = 1; s->top->eval();
    s->top->clk = 0;
    s->cycles++;
}

extern "C" {
void* sim_open() {
    Sim* s = new Sim{};
    s->ctx = new VerilatedContext;
    s->top = new V@TOP@{s->ctx};
    s->out_bit = -1; s->glitch_in = -1;
    s->top->clk = 0; s->top->rst = 1; @IDLE_INPUTS@
    s->top->eval();
    for (int i = 0; i < 2; i++) { tick(s); s->top->eval(); }
    s->top->rst = 0; s->top->eval();
    s->cycles = 0;
    return s;
}

void sim_close(void* h) {
    Sim* s = (Sim*)h;
    s->top->final(); delete s->top; delete s->ctx; delete s;
}

uint64_t sim_cycles(void* h) { return ((Sim*)h)->cycles; }

// Faults on the line (UART SoCs): 1 = the next byte gets a stop bit of 0 (a framing error),
// 2 = rx is inverted for one cycle, arg cycles from now; 3 = and again every arg cycles
// (0: no more).
void sim_fault(void* h, int kind, int64_t arg) {
    Sim* s = (Sim*)h;
    if (kind == 1) s->bad_stop_next = 1;
    if (kind == 2) s->glitch_in = arg;
    if (kind == 3) { s->glitch_every = arg; s->glitch_in = arg ? arg : -1; }
}

// Up to max_cycles cycles; stops early when out is full or, with stop_when_idle, when every
// input byte is taken and the SoC is idle. out_cap 0: the host takes no reply bytes (tx stalls)
// and the clock runs on. Returns the cycles run.
uint64_t sim_run(void* h, const uint8_t* in, uint64_t n_in, uint64_t* consumed, uint8_t* out,
                 uint64_t out_cap, uint64_t* produced, uint64_t max_cycles, int stop_when_idle) {
    Sim* s = (Sim*)h;
    V@TOP@* t = s->top;
    uint64_t i = 0, o = 0, c = 0;
    for (; c < max_cycles; c++) {
@LOOP@
    }
    *consumed = i;
    *produced = o;
    return c;
}
}
"""

# The bridge's byte stream, one byte per cycle each way.
_STREAM_LOOP = r"""
        bool have = i < n_in;
        t->rx___05Fvalid = have;
        t->rx___05Fpayload = have ? in[i] : 0;
        t->tx___05Fready = o < out_cap;
        t->eval();
        if (stop_when_idle && !have && t->idle) break;
        if (out_cap && o >= out_cap) break;
        bool rx_fire = have && t->rx___05Fready;
        bool tx_fire = t->tx___05Fvalid && o < out_cap;
        uint8_t byte = t->tx___05Fpayload;
        tick(s);
        if (rx_fire) i++;
        if (tx_fire) out[o++] = byte;
"""

# The UART pins: the host's bytes serialised 8N1 onto rx, tx sampled at mid-bit into bytes.
_UART_LOOP = r"""
        const uint32_t div = @DIV@;
        if (out_cap && o >= out_cap) break;
        if (s->out_bit < 0 && i < n_in) {
            s->out_frame = (uint16_t)((1u << 9) | ((uint32_t)in[i++] << 1));
            if (s->bad_stop_next) { s->out_frame &= ~(1u << 9); s->bad_stop_next = 0; }
            s->out_bit = 0; s->out_count = div;
        }
        int line = s->out_bit < 0 ? 1 : (s->out_frame >> s->out_bit) & 1;
        if (s->glitch_in == 0) { line ^= 1; s->glitch_in = s->glitch_every ? s->glitch_every : -1; }
        else if (s->glitch_in > 0) s->glitch_in--;
        t->rx = line;
        t->eval();
        int pin = t->tx;
        s->high_run = pin ? s->high_run + 1 : 0;
        if (stop_when_idle && i >= n_in && s->out_bit < 0 && s->in_state == 0 && t->idle
            && s->high_run > 12 * div) break;
        switch (s->in_state) {
        case 0: if (!pin) { s->in_state = 1; s->in_count = div / 2; } break;
        case 1: if (--s->in_count == 0) {
                    if (!pin) { s->in_state = 2; s->in_bit = 0; s->in_byte = 0; s->in_count = div; }
                    else s->in_state = 0;
                } break;
        case 2: if (--s->in_count == 0) {
                    s->in_byte |= (uint8_t)(pin << s->in_bit);
                    s->in_count = div;
                    if (++s->in_bit == 8) s->in_state = 3;
                } break;
        case 3: if (--s->in_count == 0) {
                    if (pin) out[o++] = s->in_byte;
                    s->in_state = 0;
                } break;
        }
        tick(s);
        if (s->out_bit >= 0 && --s->out_count == 0) {
            s->out_count = div;
            if (++s->out_bit == 10) s->out_bit = -1;
        }
"""


def harness(top: str, uart_divisor: int | None = None) -> str:
    """The C++ loop around a SoC's model: its byte stream, or (``uart_divisor``) its UART pins."""
    if uart_divisor is None:
        loop, idle = _STREAM_LOOP, "s->top->rx___05Fvalid = 0; s->top->tx___05Fready = 1;"
    else:
        loop, idle = _UART_LOOP.replace("@DIV@", str(uart_divisor)), "s->top->rx = 1;"
    return (_HEAD.replace("@LOOP@", loop).replace("@IDLE_INPUTS@", idle)
            .replace("@DIV@", str(uart_divisor or 0)).replace("@TOP@", top))


_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
          "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-lint", "-Wno-style"]


_ZERO_INIT = re.compile(r"  initial begin\n((?:    ([A-Za-z_]\w*)\[\d+\] = \d+'[hdb]0+;\n)+)  end\n")


def compact_memory_inits(verilog: str) -> str:
    """Yosys initialises every element of a memory on its own line (Amaranth's ``init=[]``);
    Verilator turns each into C++, which dominates the compile time of a SoC's buffers. An
    all-zero initialisation of ``name[0 .. N-1]`` becomes the equivalent loop."""

    def loop(match):
        lines = match.group(1).splitlines()
        name = match.group(2)
        indices = [int(line.split("[", 1)[1].split("]", 1)[0]) for line in lines]
        if any(not line.startswith(f"    {name}[") for line in lines) or indices != list(range(len(lines))):
            return match.group(0)
        var = f"{name}__init"
        return (f"  integer {var};\n  initial begin\n    for ({var} = 0; {var} < {len(lines)}; "
                f"{var} = {var} + 1)\n      {name}[{var}] = 0;\n  end\n")

    return _ZERO_INIT.sub(loop, verilog)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "accelsmith" / "native"


def build_native(verilog: str, top: str, cache: Path | None = None, quiet: bool = False,
                 opt: str = "-O2", uart_divisor: int | None = None) -> Path:
    """The shared library of the SoC ``top`` in ``verilog``, built once per Verilog text and
    Verilator version (cached; concurrent builds of the same model wait for each other)."""
    verilator_bin = verilator()
    verilog = compact_memory_inits(verilog)
    cpp = harness(top, uart_divisor)
    models = [path.read_text() for path in sim_models_for(verilog)]
    key = hashlib.sha256("\0".join([verilog, *models, cpp, verilator_bin, opt, *_FLAGS]).encode())
    folder = (cache or cache_dir()) / f"{top[:80]}-{key.hexdigest()[:16]}"
    lib = folder / "libsoc.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.exists():
            return lib
        (folder / f"{top}.v").write_text("\n".join([verilog, *models]))
        (folder / "harness.cpp").write_text(cpp)
        if not quiet:
            print(f"building the native model of {top} with Verilator (once; cached in "
                  f"{folder})", file=sys.stderr, flush=True)
        cmd = [verilator_bin, "--cc", "--exe", "--build", "-j", "2", *_FLAGS,
               "--top-module", top, "-CFLAGS", "-fPIC -O2", "-LDFLAGS", "-shared",
               "-o", "libsoc.tmp.so", "--Mdir", "obj", f"{top}.v", "harness.cpp"]
        env = dict(os.environ, **verilator_env())
        # The model sets the pace here (unlike under cocotb), so its code is optimised.
        env["MAKEFLAGS"] = env["MAKEFLAGS"].replace("OPT_FAST=-O0", f"OPT_FAST={opt}")
        run(cmd, folder / "build.log", "verilator (native SoC model)", cwd=folder, env=env)
        os.replace(folder / "obj" / "libsoc.tmp.so", lib)
    return lib


class NativeSoC:
    """A running native model of a SoC (``lib`` from :func:`build_native`), reset and idle.

    :meth:`run` is the whole interface: bytes in, cycles, bytes out."""

    def __init__(self, lib: Path):
        self._lib = ctypes.CDLL(str(lib))
        u64, ptr = ctypes.c_uint64, ctypes.c_void_p
        self._lib.sim_open.restype = ptr
        self._lib.sim_close.argtypes = [ptr]
        self._lib.sim_cycles.argtypes = [ptr]
        self._lib.sim_cycles.restype = u64
        self._lib.sim_run.argtypes = [ptr, ctypes.c_char_p, u64, ctypes.POINTER(u64),
                                      ctypes.c_char_p, u64, ctypes.POINTER(u64), u64, ctypes.c_int]
        self._lib.sim_run.restype = u64
        self._lib.sim_fault.argtypes = [ptr, ctypes.c_int, ctypes.c_int64]
        self._handle = self._lib.sim_open()

    @property
    def cycles(self) -> int:
        """Cycles simulated since reset."""
        if self._handle is None:
            raise TransportError("the native model is closed")
        return self._lib.sim_cycles(self._handle)

    def run(self, data: bytes = b"", max_cycles: int = 1 << 62, out_cap: int = 1 << 16,
            stop_when_idle: bool = True) -> tuple[int, bytes, int]:
        """Offer ``data`` on the byte stream and clock until ``max_cycles``, ``out_cap`` reply
        bytes, or (``stop_when_idle``) every byte taken with the SoC idle.
        Returns ``(bytes consumed, reply bytes, cycles run)``."""
        if self._handle is None:
            raise TransportError("the native model is closed")
        consumed, produced = ctypes.c_uint64(), ctypes.c_uint64()
        out = ctypes.create_string_buffer(max(out_cap, 1))
        cycles = self._lib.sim_run(self._handle, bytes(data), len(data), ctypes.byref(consumed),
                                   out, out_cap, ctypes.byref(produced), max_cycles,
                                   int(stop_when_idle))
        return consumed.value, out.raw[:produced.value], cycles

    def fault(self, kind: str, after_cycles: int = 0):
        """UART SoCs: ``"framing"`` sends the next host byte with a stop bit of 0; ``"glitch"``
        inverts ``rx`` for one cycle ``after_cycles`` from now; ``"glitches"`` does so every
        ``after_cycles`` cycles (0 stops them)."""
        self._lib.sim_fault(self._handle, {"framing": 1, "glitch": 2, "glitches": 3}[kind],
                            after_cycles)

    def close(self):
        if self._handle is not None:
            self._lib.sim_close(self._handle)
            self._handle = None


class SimTransport(Transport):
    """The byte stream of a :class:`NativeSoC` in this process. The model runs only while the
    host waits for it (a read, :meth:`settle`), as fast as it can; a read that the SoC will never
    answer (it went idle with the reply incomplete) fails at once instead of timing out.

    ``max_cycles`` bounds the cycles one read or settle may simulate (a hung job)."""

    name = "simulation"

    def __init__(self, model: NativeSoC, max_cycles: int = 1 << 34):
        self.model = model
        self.max_cycles = max_cycles
        self._pending = bytearray()
        self._received = bytearray()

    def write(self, data: bytes):
        self._pending += data

    def _step(self, max_cycles: int, out_cap: int, stop_when_idle: bool = True) -> int:
        used, out, cycles = self.model.run(bytes(self._pending), max_cycles, out_cap,
                                           stop_when_idle)
        del self._pending[:used]
        self._received += out
        return cycles

    def read(self, n: int, timeout: float) -> bytes:
        budget = self.max_cycles
        while len(self._received) < n:
            cycles = self._step(min(budget, 1 << 24), n - len(self._received))
            budget -= cycles
            if len(self._received) >= n:
                break
            if cycles == 0 or budget <= 0:
                got = len(self._received)
                self._received.clear()
                raise TransportError(f"simulation: {got} of {n} reply bytes, then the SoC went "
                                     f"idle (the request was not understood)" if cycles == 0 else
                                     f"simulation: no reply within {self.max_cycles} cycles")
        out = bytes(self._received[:n])
        del self._received[:n]
        return out

    def settle(self, timeout: float, max_cycles: int | None = None):
        self._step(min(self.max_cycles, max_cycles or self.max_cycles), 1 << 16)

    def advance(self, cycles: int):
        """Clock ``cycles`` cycles whether or not the SoC is idle (watchdog tests)."""
        self._step(cycles, 1 << 16, stop_when_idle=False)

    def recover(self, watchdog_seconds: float, watchdog_cycles: int):
        self._pending.clear()
        self.advance(watchdog_cycles + 16)
        self._received.clear()

    def close(self):
        self.model.close()


def serve(model: NativeSoC, host: str, port: int, *, batch: int = 1 << 15, once: bool = False,
          ready=None, stop=None, log=print):
    """Carry the SoC's byte stream over TCP at ``host:port``, one client at a time, TCP_NODELAY
    on. The model runs while it has work (a frame in progress, a job running) and sleeps in
    ``select`` when idle. ``ready(port)`` is called once listening; ``stop()`` returning true (or
    ``once`` after the first client) ends the server."""
    with socket.create_server((host, port)) as server:
        server.settimeout(0.5)
        if ready:
            ready(server.getsockname()[1])
        while not (stop and stop()):
            try:
                conn, peer = server.accept()
            except (TimeoutError, socket.timeout):
                continue
            log(f"sim-server: client {peer[0]}:{peer[1]} connected")
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _carry(model, conn, batch, stop)
            log(f"sim-server: client {peer[0]}:{peer[1]} left after {model.cycles} cycles")
            if once:
                return


def serve_pty(model: NativeSoC, batch: int = 1 << 14):
    """The model's link behind a pseudo-terminal, as a USB-UART appears to the host: returns
    ``(device path, stop)``; a thread carries bytes until ``stop()`` is called. Hosts may open
    and close the device at will (the model keeps running, so a half frame left behind meets
    the bridge watchdog)."""
    import threading
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    done = threading.Event()

    def carry():
        pending = bytearray()
        busy = False
        while not done.is_set():
            readable, _, _ = select.select([master], [], [], 0 if busy or pending else 0.05)
            if readable:
                try:
                    pending += os.read(master, 1 << 16)
                except OSError:            # no host has the device open
                    time.sleep(0.01)
            used, out, cycles = model.run(bytes(pending), batch, 1 << 16, stop_when_idle=True)
            del pending[:used]
            if out:
                try:
                    os.write(master, out)
                except OSError:
                    pass
            busy = cycles == batch

    thread = threading.Thread(target=carry, daemon=True)
    thread.start()

    def stop():
        done.set()
        thread.join(5)
        os.close(master)
        os.close(slave)

    return path, stop


def _carry(model: NativeSoC, conn: socket.socket, batch: int, stop):
    pending = bytearray()
    busy = False
    while not (stop and stop()):
        readable, _, _ = select.select([conn], [], [], 0 if busy or pending else 0.2)
        if readable:
            try:
                data = conn.recv(1 << 16)
            except ConnectionError:
                return
            if not data:
                return
            pending += data
            if hasattr(socket, "TCP_QUICKACK"):     # acknowledge at once: hosts send small writes
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        used, out, cycles = model.run(bytes(pending), batch, 1 << 16, stop_when_idle=True)
        del pending[:used]
        if out:
            try:
                conn.sendall(out)
            except ConnectionError:
                return
        busy = cycles == batch   # still working: keep clocking without sleeping
        if not busy and not pending:
            time.sleep(0)
