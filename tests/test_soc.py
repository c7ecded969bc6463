"""The SoC and the host driver on the native Verilator model: the bridge's frames byte by byte,
GEMMs through every architecture, and faults on the link."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from accelsmith.config import ConfigError, load, validate
from accelsmith.flows.native import NativeSoC, SimTransport, build_native
from accelsmith.generators.soc import build_soc, csr_csv
from accelsmith.models.sparse import NMMatrix, prune_nm
from accelsmith.registry import generator, reference_configs
from accelsmith.sw_driver.accelerator import (Accelerator, DriverError, EngineError,
                                              IdentityError)
from accelsmith.sw_driver.bridge import frame
from accelsmith.sw_driver.gemm import GemmError
from accelsmith.sw_driver.transport import Transport, TransportError

# A small SoC with a short watchdog (3,000 cycles: a 255-word read takes the bridge 2,046) and
# buffers small enough that K is chunked.
SMALL = {"family": "bitweight", "architecture": "systolic_os", "rows": 4, "cols": 4,
         "soc_a_beats": 64, "soc_b_beats": 64, "soc_c_rows": 32, "soc_jobs": 8,
         "soc_clock_mhz": 1, "soc_watchdog_us": 3000}
WATCHDOG = 3000


def _soc(raw: dict):
    config = validate(raw, "<test>")
    return build_soc(generator(config.family).build(config))


@pytest.fixture(scope="module")
def small():
    soc = _soc(SMALL)
    return soc, build_native(soc.verilog(), soc.top, quiet=True)


def _reg(soc, name):
    return next(r for r in soc.manifest["soc"]["registers"] if r["name"] == name)["byte_address"]


def _exchange(tr: SimTransport, data: bytes, reply: int) -> bytes:
    tr.write(data)
    return tr.read(reply, 1.0) if reply else (tr.settle(1.0), b"")[1]


# -- the bridge, byte by byte ------------------------------------------------------------------


def test_bridge_commands_bursts_and_garbage(small):
    soc, lib = small
    tr = SimTransport(NativeSoC(lib))
    scratch, magic = _reg(soc, "seq_scratch"), _reg(soc, "ident_magic")
    # 0x02: incrementing read of the identification block.
    ident = struct.unpack(">8I", _exchange(tr, frame(0x02, magic, 8), 32))
    assert ident[0] == soc.manifest["soc"]["magic"] and ident[2] == soc.manifest["soc"]["config_hash"]
    # 0x01 write, then 0x04: a fixed-address read of 3 words answers 12 bytes, all the same word.
    _exchange(tr, frame(0x01, scratch, [0x12345678]), 0)
    assert struct.unpack(">3I", _exchange(tr, frame(0x04, scratch, 3), 12)) == (0x12345678,) * 3
    # 0x03: a fixed-address write of 3 words leaves the last one.
    _exchange(tr, frame(0x03, scratch, [1, 2, 0xCAFEF00D]), 0)
    assert struct.unpack(">I", _exchange(tr, frame(0x02, scratch, 1), 4))[0] == 0xCAFEF00D
    # The documented example frame of REFERENCE.md, byte for byte (here at SCRATCH).
    example = bytes([0x01, 0x01]) + struct.pack(">I", scratch >> 2) + bytes.fromhex("12345678")
    assert example == frame(0x01, scratch, [0x12345678])
    # A 255-word write into the 64-beat A buffer: the words past its end are dropped, the CRC
    # covers what was stored.
    words = [(i * 2654435761) & 0xFFFFFFFF for i in range(255)]
    clear = frame(0x01, _reg(soc, "seq_ctrl"), [2])
    _exchange(tr, clear + frame(0x01, soc.manifest["soc"]["buffers"]["a"]["base"], words), 0)
    crc = struct.unpack(">I", _exchange(tr, frame(0x02, _reg(soc, "seq_write_crc"), 1), 4))[0]
    assert crc == zlib.crc32(np.array(words[:64], dtype="<u4").tobytes())
    # A one-word burst.
    _exchange(tr, clear + frame(0x01, soc.manifest["soc"]["buffers"]["b"]["base"], [words[1]]), 0)
    crc = struct.unpack(">I", _exchange(tr, frame(0x02, _reg(soc, "seq_write_crc"), 1), 4))[0]
    assert crc == zlib.crc32(np.array(words[1:2], dtype="<u4").tobytes())
    # A 255-word read answers exactly 1,020 bytes (ident, then zeros past the registers).
    reply = _exchange(tr, frame(0x02, magic, 255), 1020)
    assert reply[:4] == struct.pack(">I", ident[0]) and len(reply) == 1020
    tr.settle(1.0)
    assert tr.read(0, 1.0) == b""
    # Unknown command bytes before, between and after frames, and back-to-back frames.
    garbage = bytes([0x00, 0x05, 0xFF, 0x7E, 0x80, 0x10])
    stream = garbage + frame(0x01, scratch, [7]) + garbage + frame(0x02, scratch, 1) + \
        frame(0x02, magic, 1) + garbage
    assert struct.unpack(">2I", _exchange(tr, stream, 8)) == (7, ident[0])
    # The result buffer starts zeroed (its initialisation is compacted for Verilator).
    c_base = soc.manifest["soc"]["buffers"]["c"]["base"]
    assert _exchange(tr, frame(0x02, c_base + 4 * 37, 8), 32) == bytes(32)
    # A frame with length 0 is dropped; the next one works.
    _exchange(tr, bytes([0x02, 0x00]) + struct.pack(">I", scratch >> 2), 0)
    assert struct.unpack(">I", _exchange(tr, frame(0x02, scratch, 1), 4))[0] == 7


def test_bridge_watchdog_drops_a_half_frame(small):
    soc, lib = small
    tr = SimTransport(NativeSoC(lib))
    scratch, timeouts = _reg(soc, "seq_scratch"), _reg(soc, "seq_timeouts")
    _exchange(tr, frame(0x01, scratch, [5]), 0)
    half = frame(0x01, scratch, [0xAAAAAAAA])[:7]      # command, length, address, one data byte
    tr.write(half)
    tr.advance(WATCHDOG // 2)
    assert not tr.model.run(b"", 1, 0)[2] == 0           # still inside the frame: not idle
    tr.advance(WATCHDOG)
    assert tr.model.run(b"", 4, 0)[2] == 0               # idle again
    assert struct.unpack(">2I", _exchange(tr, frame(0x02, scratch, 1) + frame(0x02, timeouts, 1),
                                          8)) == (5, 1)
    # A read whose reply is not taken keeps its byte on offer; the frame still ends.
    used, out, _ = tr.model.run(frame(0x02, scratch, 2), WATCHDOG * 3, out_cap=0)
    assert out == b""
    _, out, _ = tr.model.run(b"", 100, out_cap=1, stop_when_idle=False)
    assert out == b"\x00"                                # the byte on offer is finished ...
    assert _exchange(tr, frame(0x02, timeouts, 1), 4) == struct.pack(">I", 2)  # ... then dropped


# -- GEMMs -------------------------------------------------------------------------------------

# Every architecture and both sparse formats, and a wrapping accumulator, in the default suite;
# more engine variants (their cocotb testbenches run by default) through the SoC as slow tests.
_CONFIGS = ["os_4x4_int8", "ws_4x4_int8", "tree_4x4_int8", "matrix2d_4x4_int8", "cube_4_int8",
            "os_4x4_int8_acc12", "sparse_nm2of4_4x4_int8", "sparse_bitmap_4x4_tile8_int8",
            "board_icebreaker_os_2x2_int8",     # pipelined: runs free through stalls, no clear
            *(pytest.param(name, marks=pytest.mark.slow) for name in (
                "os_4x4_u4xs8", "os_4x4_int8_opt1", "matrix2d_4x4_int8_opt4c",
                "os_4x4_int8_rbuf"))]
# Not a reference config: the result-buffered OS shell (TILES) on the bit-weight side.
_EXTRA = {"os_4x4_int8_rbuf": {"family": "bitweight", "architecture": "systolic_os", "rows": 4,
                               "cols": 4, "result_buffer": True}}


def _operand(rng, fmt, shape, kind="random"):
    if kind == "min":
        return np.full(shape, fmt.min)
    if kind == "max":
        return np.full(shape, fmt.max)
    return rng.integers(fmt.min, fmt.max + 1, shape)


@pytest.mark.parametrize("name", _CONFIGS)
def test_gemm_is_bit_exact(name):
    """Random and corner-case GEMMs: tile multiples and not, K = 1, extreme values (the
    narrow-accumulator config wraps), a zero A, sparse operands."""
    config = validate(_EXTRA[name], name) if name in _EXTRA else name
    acc = Accelerator.simulated(config, quiet=True)
    g = acc.geometry
    rng = np.random.default_rng(sum(map(ord, name)))
    cases = [((1, 1, 1), "random", "random"), ((g.m_tile, 1, g.n_tile + 1), "random", "random"),
             ((13, 37, 9), "random", "random"), ((2 * g.m_tile, 40, 2 * g.n_tile), "min", "min"),
             ((5, 33, 6), "max", "min"), ((7, 19, 5), "zero", "random")]
    for (M, K, N), ka, kb in cases:
        A = np.zeros((M, K), dtype=np.int64) if ka == "zero" else _operand(rng, g.a_fmt, (M, K), ka)
        B = _operand(rng, g.b_fmt, (K, N), kb)
        if "bitmap" in name:
            A = A * (rng.random(A.shape) < 0.3)
        result = acc.gemm(A, B, prune=True)
        want = acc.golden(A, B, prune=True)
        assert np.array_equal(result.C, want), f"{name} {M}x{K}x{N} {ka}/{kb}"
        assert result.engine_cycles == result.model_cycles, f"{name} {M}x{K}x{N}: cycles"
    acc.close()


def test_gemm_splits_k_to_fit_the_buffers_and_wraps(small):
    soc, lib = small
    acc = Accelerator(soc.manifest, SimTransport(NativeSoC(lib)))
    rng = np.random.default_rng(3)
    A, B = rng.integers(-128, 128, (9, 300)), rng.integers(-128, 128, (300, 10))
    result = acc.gemm(A, B)
    assert np.array_equal(result.C, acc.golden(A, B))
    assert result.jobs == 3 * 3 * 5 and result.runs > 1          # 300 / 64 -> 5 K chunks
    # The accumulator (s24 here) wraps exactly like the model over long K.
    A, B = np.full((4, 2000), -128), np.full((2000, 4), -128)
    assert np.array_equal(acc.gemm(A, B).C, acc.golden(A, B))


def test_nm_engine_refuses_dense_a_and_names_a_malformed_tile():
    acc = Accelerator.simulated("sparse_nm2of4_4x4_int8", quiet=True)
    rng = np.random.default_rng(5)
    A, B = rng.integers(-128, 128, (8, 16)), rng.integers(-128, 128, (16, 8))
    with pytest.raises(GemmError, match="prune"):
        acc.gemm(A, B)
    comp = NMMatrix.compress(prune_nm(A, 2, 4), 2, 4, acc.geometry.a_fmt)
    assert np.array_equal(acc.gemm(comp, B).C, acc.golden(comp, B))
    comp.indices[5, 2:4] = [3, 1]                      # row 5 (tile row 1), group 1: descending
    with pytest.raises(EngineError, match=r"tile \(1, 0\)") as info:
        acc.gemm(comp, B)
    assert info.value.tiles == [(1, 0), (1, 1)]          # row 5 feeds both tile columns
    acc.close()


def test_driver_refuses_hardware_of_another_config(small):
    soc, lib = small
    other = _soc(dict(SMALL, soc_jobs=9))
    with pytest.raises(IdentityError, match="another config"):
        Accelerator(other.manifest, SimTransport(NativeSoC(lib)))


def test_driver_refuses_a_watchdog_too_short_for_one_word(small):
    # 20 cycles of watchdog: half of it cannot hold a frame header and one read word at the
    # bridge's pace (6 + 8 cycles), so bursts would always be dropped.
    soc, lib = small
    short = _soc(dict(SMALL, soc_watchdog_us=20))
    with pytest.raises(DriverError, match=r"the bridge cannot carry one word .*20 cycles"):
        Accelerator(short.manifest, SimTransport(NativeSoC(lib)), check_identity=False)


def test_bad_operands_are_refused_clearly(small):
    soc, lib = small
    acc = Accelerator(soc.manifest, SimTransport(NativeSoC(lib)))
    with pytest.raises(GemmError, match="outside the engine's s8 range"):
        acc.gemm(np.full((4, 4), 200), np.ones((4, 4), dtype=int))
    with pytest.raises(GemmError, match="must equal B's rows"):
        acc.gemm(np.ones((4, 5), dtype=int), np.ones((4, 4), dtype=int))
    with pytest.raises(GemmError, match="integers"):
        acc.gemm(np.full((4, 4), 0.5), np.ones((4, 4), dtype=int))


# -- faults on the link ------------------------------------------------------------------------


class FaultyTransport(Transport):
    """A :class:`SimTransport` with faults at chosen byte positions of the host's writes or
    the device's replies: ``drop_tx`` / ``flip_tx`` / ``flip_rx`` are sets of byte indices,
    ``cut_rx`` the reply byte at which a read fails as if the cable were pulled."""

    name = "faulty simulation"

    def __init__(self, inner: SimTransport, drop_tx=(), flip_tx=(), flip_rx=(), cut_rx=None):
        self.inner = inner
        self.drop_tx, self.flip_tx, self.flip_rx = set(drop_tx), set(flip_tx), set(flip_rx)
        self.cut_rx = cut_rx
        self.sent = self.received = 0

    def write(self, data: bytes):
        out = bytearray()
        for byte in data:
            if self.sent in self.flip_tx:
                byte ^= 0x40
            if self.sent not in self.drop_tx:
                out.append(byte)
            self.sent += 1
        self.inner.write(bytes(out))

    def read(self, n: int, timeout: float) -> bytes:
        if self.cut_rx is not None and self.received <= self.cut_rx < self.received + n:
            self.received, self.cut_rx = self.cut_rx + 1, None
            raise TransportError("connection lost in the middle of a read")
        data = bytearray(self.inner.read(n, timeout))
        for i in range(n):
            if self.received + i in self.flip_rx:
                data[i] ^= 0x01
        self.received += n
        return bytes(data)

    def settle(self, timeout, max_cycles=None):
        self.inner.settle(timeout, max_cycles)

    def recover(self, watchdog_seconds, watchdog_cycles):
        self.inner.recover(watchdog_seconds, watchdog_cycles)


@pytest.mark.parametrize("fault", ["drop_tx", "flip_tx", "flip_rx", "cut_rx"])
def test_faults_are_detected_and_retried(small, fault):
    soc, lib = small
    rng = np.random.default_rng(11)
    A, B = rng.integers(-128, 128, (8, 20)), rng.integers(-128, 128, (20, 8))
    clean = Accelerator(soc.manifest, SimTransport(NativeSoC(lib)))
    sent0, received0 = clean.bus.bytes_sent, clean.bus.bytes_received
    want = clean.gemm(A, B)
    sent, received = clean.bus.bytes_sent - sent0, clean.bus.bytes_received - received0
    # Faults spread over the GEMM's exchange: operands, registers, results.
    positions = {"drop_tx": [sent // 3, sent // 2], "flip_tx": [sent // 4, 2 * sent // 3],
                 "flip_rx": [received // 2, received - 10], "cut_rx": received // 2}[fault]
    faulty = FaultyTransport(SimTransport(NativeSoC(lib)))
    acc = Accelerator(soc.manifest, faulty)
    faulty.sent = faulty.received = 0                    # count from the GEMM on
    setattr(faulty, fault, set(positions) if fault != "cut_rx" else positions)
    start = time.monotonic()
    result = acc.gemm(A, B)
    assert np.array_equal(result.C, want.C)
    assert result.retries >= 1
    assert time.monotonic() - start < 60


def test_persistent_faults_end_in_a_clear_error(small):
    soc, lib = small
    faulty = FaultyTransport(SimTransport(NativeSoC(lib)))
    acc = Accelerator(soc.manifest, faulty, retries=2)
    faulty.flip_rx = set(range(10_000_000))              # every reply byte corrupted
    with pytest.raises(DriverError, match="failed 3 times"):
        acc.gemm(np.ones((4, 4), dtype=int), np.ones((4, 4), dtype=int))


def test_a_silent_device_is_reported_not_waited_for(small):
    soc, lib = small
    faulty = FaultyTransport(SimTransport(NativeSoC(lib)), drop_tx=range(10_000_000))
    start = time.monotonic()
    with pytest.raises(IdentityError, match="no answer"):
        Accelerator(soc.manifest, faulty)
    assert time.monotonic() - start < 10


def test_csr_csv_has_litex_rows(small):
    soc, _ = small
    rows = [line.split(",") for line in csr_csv(soc.manifest).splitlines() if not line.startswith("#")]
    assert all(len(r) == 5 for r in rows)
    kinds = {r[0] for r in rows}
    assert kinds == {"csr_base", "csr_register", "constant", "memory_region"}
    constants = {r[1]: r[2] for r in rows if r[0] == "constant"}
    assert constants["config_csr_data_width"] == "32"
    assert constants["config_bus_address_width"] == "32"
    regs = {r[1]: int(r[2], 16) for r in rows if r[0] == "csr_register"}
    assert regs["ident_magic"] == 0 and regs["seq_scratch"] == _reg(soc, "seq_scratch")


def test_every_reference_config_has_a_soc():
    for path in reference_configs():
        config = load(path)
        soc = build_soc(generator(config.family).build(config))
        assert soc.manifest["soc"]["buffers"]["a"]["depth"] == config.values["soc_a_beats"]


def test_loop_url_is_not_mistaken_for_a_soc():
    # pyserial's loop:// echoes the driver's own frames back: the magic cannot match.
    with pytest.raises(IdentityError, match="identification read|not an accelsmith SoC"):
        Accelerator.open("os_4x4_int8", "loop://", link_timeout=1.0)
