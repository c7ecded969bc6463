"""``accelsmith sim-server`` as external tools see it: LiteX's own ``litex_server`` and
``RemoteClient`` (the ``litex`` package) through ``csr.csv``, and the driver over
``socket://`` exactly as over a serial port."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CONFIG = "os_4x4_int8"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@pytest.fixture
def sim_server(tmp_path):
    """A running sim-server; yields (port, output folder)."""
    cmd = [sys.executable, "-m", "accelsmith.cli", "sim-server", CONFIG, "--tcp",
           "127.0.0.1:0", "-o", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        deadline = time.monotonic() + 600
        lines = []
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("sim-server exited:\n" + "".join(lines))
            lines.append(line)
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
        assert port, "sim-server did not say where it listens"
        yield port, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_litex_server_and_remote_client_read_and_write(sim_server):
    pytest.importorskip("litex")
    from litex import RemoteClient

    port, folder = sim_server
    litex_server = shutil.which("litex_server") or str(Path(sys.executable).parent / "litex_server")
    bind = _free_port()
    server = subprocess.Popen([litex_server, "--uart", "--uart-port",
                               f"socket://127.0.0.1:{port}", "--bind-ip", "127.0.0.1",
                               "--bind-port", str(bind)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port(bind, server, 60)
        client = RemoteClient(host="127.0.0.1", port=bind, csr_csv=str(folder / "csr.csv"))
        client.open()
        try:
            assert client.regs.ident_magic.read() == 0x6163736D
            client.regs.seq_scratch.write(0x5EED1234)
            assert client.regs.seq_scratch.read() == 0x5EED1234
            # Plain addressed reads of a burst, as RemoteClient.read(addr, length) makes them.
            ident = client.read(0, length=3)
            assert ident[0] == 0x6163736D
            csv = (folder / "csr.csv").read_text()
            hash_row = re.search(r"constant,accelsmith_config_hash,(\d+)", csv)
            assert ident[2] == int(hash_row.group(1))
        finally:
            client.close()
        # The driver as another client of the same litex_server, over Etherbone.
        from accelsmith.sw_driver.accelerator import Accelerator
        from accelsmith.sw_driver.etherbone import packet
        from litex.tools.remote.etherbone import (EtherbonePacket, EtherboneReads,
                                                  EtherboneRecord)

        record = EtherboneRecord(4)
        record.reads = EtherboneReads(addr_size=4, addrs=[0x100, 0x104])
        record.rcount = 2
        litex_packet = EtherbonePacket(32)
        litex_packet.records = [record]
        litex_packet.encode()
        assert packet(reads=[0x100, 0x104]) == bytes(litex_packet.bytes)   # same wire format
        rng = np.random.default_rng(8)
        A, B = rng.integers(-128, 128, (6, 9)), rng.integers(-128, 128, (9, 5))
        with Accelerator.open(CONFIG, f"etherbone://127.0.0.1:{bind}") as acc:
            assert acc.read("seq_scratch") == 0x5EED1234
            assert np.array_equal(acc.gemm(A, B).C, acc.golden(A, B))
    finally:
        server.terminate()
        server.wait(10)


def test_driver_over_a_socket_like_a_serial_port(sim_server):
    from accelsmith.sw_driver.accelerator import Accelerator

    port, _ = sim_server
    rng = np.random.default_rng(2)
    A, B = rng.integers(-128, 128, (9, 23)), rng.integers(-128, 128, (23, 6))
    with Accelerator.open(CONFIG, f"socket://127.0.0.1:{port}") as acc:
        result = acc.gemm(A, B)
        assert np.array_equal(result.C, acc.golden(A, B))
        assert result.engine_cycles == result.model_cycles
    # The CLI's --port path, with --check.
    np.save(Path(_) / "A.npy", A)
    np.save(Path(_) / "B.npy", B)
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "run", CONFIG, "--a",
                           str(Path(_) / "A.npy"), "--b", str(Path(_) / "B.npy"), "--port",
                           f"socket://127.0.0.1:{port}", "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bit-exact" in proc.stdout
