"""Byte transports between the host and a SoC's bridge: the driver sees only these.

:class:`SerialTransport` opens anything pyserial's ``serial_for_url`` does (``/dev/ttyUSB0``,
``socket://127.0.0.1:PORT`` for ``accelsmith sim-server``, ``loop://``); the in-process
simulation is :class:`accelsmith.flows.native.SimTransport`. Every wait has a timeout.
"""

from __future__ import annotations

import socket
import time
from abc import ABC, abstractmethod

__all__ = ["TransportError", "Transport", "SerialTransport"]


class TransportError(Exception):
    """The link failed: no answer in time, a short reply, a closed connection."""


class Transport(ABC):
    """A bidirectional byte stream to a SoC's bridge."""

    name = "transport"
    #: bytes per second the link carries (None: as fast as the host can go)
    bytes_per_second: float | None = None

    @abstractmethod
    def write(self, data: bytes):
        """Queue ``data`` for the device (it may be sent later, at the next read at the latest)."""

    @abstractmethod
    def read(self, n: int, timeout: float) -> bytes:
        """Exactly ``n`` bytes from the device, or :class:`TransportError` after ``timeout``
        seconds without them."""

    def settle(self, timeout: float, max_cycles: int | None = None):
        """Give the device time to finish what it is doing: a simulation runs until idle (at
        most ``max_cycles``); a real link has nothing to do here."""

    def recover(self, watchdog_seconds: float, watchdog_cycles: int):
        """After a failed exchange: wait until the device's bridge watchdog has dropped any half
        frame, and discard stale reply bytes."""
        time.sleep(watchdog_seconds * 1.2 + 0.01)
        self.discard_input()

    def discard_input(self):
        """Drop reply bytes already received."""

    def _gather(self, n: int, timeout: float, receive) -> bytes:
        """``n`` bytes from ``receive(max_bytes, seconds_left)`` (which may return fewer, or
        b"" on a quiet link), or :class:`TransportError` when ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(f"{self.name}: {len(out)} of {n} reply bytes within "
                                     f"{timeout:.2f} s")
            out += receive(n - len(out), left)
        return bytes(out)

    def frames(self, burst_words: int, timeout: float):
        """The word-access layer over this transport: UARTBone frames (Etherbone overrides)."""
        from .bridge import UARTBone

        return UARTBone(self, burst_words, timeout)

    def close(self):
        pass


class SerialTransport(Transport):
    """A pyserial port by URL. Sockets get TCP_NODELAY, so a command's bytes are not held back
    by Nagle's algorithm and delayed acknowledgements (22 reads/s otherwise)."""

    def __init__(self, url: str, baudrate: int = 115200, open_timeout: float = 5.0):
        try:
            import serial
        except ImportError:
            raise TransportError("the serial transport needs pyserial (pip install pyserial)") from None
        self.url = url
        self.name = url
        self.bytes_per_second = None if url.startswith(("socket://", "loop://")) else baudrate / 10
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=open_timeout,
                                               write_timeout=open_timeout,
                                               do_not_open=False)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {url}: {exc}") from None
        sock = getattr(self._port, "_socket", None)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._serial = serial

    def write(self, data: bytes):
        try:
            self._port.write(data)
        except (self._serial.SerialException, OSError) as exc:
            raise TransportError(f"{self.url}: write failed: {exc}") from None

    def read(self, n: int, timeout: float) -> bytes:
        def receive(count, left):
            self._port.timeout = min(left, 0.5)
            try:
                return self._port.read(count)
            except (self._serial.SerialException, OSError) as exc:
                raise TransportError(f"{self.url}: read failed: {exc}") from None

        return self._gather(n, timeout, receive)

    def discard_input(self):
        try:
            self._port.reset_input_buffer()
        except (self._serial.SerialException, OSError):
            pass

    def close(self):
        self._port.close()
