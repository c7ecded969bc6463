"""The board SoC's serial path without a board: the SoC with its UART PHY as a native model,
bit-level on its rx/tx pins, behind a pseudo-terminal that the driver opens through pyserial
exactly as it would open a USB-UART."""

from __future__ import annotations

import time

import numpy as np
import pytest
import serial

from accelsmith.config import validate
from accelsmith.flows.native import NativeSoC, build_native, serve_pty
from accelsmith.generators.soc import build_soc
from accelsmith.registry import generator
from accelsmith.sw_driver.accelerator import Accelerator
from accelsmith.sw_driver.bridge import frame
from accelsmith.sw_driver.transport import SerialTransport

BAUD = 3_000_000            # a real FTDI rate; 48 MHz / 3 Mbaud = 16 cycles per bit
RAW = {"family": "bitweight", "architecture": "systolic_os", "rows": 4, "cols": 4,
       "soc_a_beats": 256, "soc_b_beats": 256, "soc_c_rows": 64, "soc_jobs": 16,
       "soc_clock_mhz": 48, "soc_watchdog_us": 1000}


@pytest.fixture(scope="module")
def uart_soc():
    config = validate(RAW, "<uart test>")
    soc = build_soc(generator(config.family).build(config), uart_baud=BAUD)
    divisor = soc.manifest["soc"]["link"]["divisor"]
    assert divisor == 16
    return soc, build_native(soc.verilog(), soc.top, quiet=True, uart_divisor=divisor)


@pytest.fixture
def device(uart_soc):
    soc, lib = uart_soc
    model = NativeSoC(lib)
    path, stop = serve_pty(model)
    yield soc, model, path
    stop()
    model.close()


def _gemm(soc, path, seed=1):
    rng = np.random.default_rng(seed)
    A, B = rng.integers(-128, 128, (9, 21)), rng.integers(-128, 128, (21, 6))
    with Accelerator(soc.manifest, SerialTransport(path, BAUD)) as acc:
        result = acc.gemm(A, B)
        assert np.array_equal(result.C, acc.golden(A, B))
        return acc.read("seq_link_errors"), result


def test_gemm_over_the_serial_path_is_bit_exact(device):
    soc, _, path = device
    errors, result = _gemm(soc, path)
    assert errors == 0 and result.retries == 0
    assert result.engine_cycles == result.model_cycles


def test_a_framing_error_is_counted_and_survived(device):
    soc, model, path = device
    model.fault("framing")                      # the next byte the host sends arrives broken
    errors, _ = _gemm(soc, path)
    # The broken byte is dropped and counted; the receiver may misframe the bytes right after it
    # (back to back, no idle time to resynchronise) and count those too. C is still exact.
    assert errors & 0xFFFF >= 1


def test_glitches_on_rx_are_filtered(device):
    soc, model, path = device
    # A one-cycle glitch every 53 cycles (prime to the 16-cycle bit) hits every phase of a bit,
    # its middle included, and the idle line between frames: the three-sample vote and the
    # start-bit check leave the GEMM untouched.
    model.fault("glitches", 53)
    errors, result = _gemm(soc, path, seed=53)
    model.fault("glitches", 0)
    assert errors == 0 and result.retries == 0


def test_the_host_disappearing_mid_command(device):
    soc, model, path = device
    port = serial.Serial(path, BAUD, timeout=1)
    port.write(frame(0x01, 0x134, [0x11223344])[:7])   # a write cut after one data byte
    port.flush()
    port.close()
    time.sleep(0.5)                                     # the bridge watchdog: 1 ms of SoC time
    errors, _ = _gemm(soc, path)
    assert errors == 0


def test_run_cli_drives_the_serial_port_like_a_board(device, tmp_path):
    """`accelsmith run CONFIG --port TTY --baud N`: the command a user points at /dev/ttyUSB0,
    here at the pseudo-terminal of the bit-level board model."""
    import subprocess
    import sys

    import yaml

    _, _, path = device
    rng = np.random.default_rng(7)
    A, B = rng.integers(-128, 128, (6, 13)), rng.integers(-128, 128, (13, 5))
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(RAW))
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "run", str(tmp_path / "board.yaml"),
                           "--a", str(tmp_path / "A.npy"), "--b", str(tmp_path / "B.npy"),
                           "--port", path, "--baud", str(BAUD), "--check", "-o", str(tmp_path / "C.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert np.array_equal(np.load(tmp_path / "C.npy"), A @ B)
