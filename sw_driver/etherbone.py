"""The driver through ``litex_server``: Etherbone packets over TCP (``etherbone://HOST:PORT``).

``litex_server --uart --uart-port PORT`` owns the SoC's UART (or a ``socket://`` of
``accelsmith sim-server``) and serves Etherbone to clients; this transport is such a client, so
LiteX's server and our driver can share one board. Unlike LiteX's ``RemoteClient``, a reply
that does not come is an error, never a read of zeros.

Packet: an 8-byte header (magic 0x4e6f, version 1, 32-bit addresses and data), then one record:
flags, byte enables, write count, read count; writes carry a base address and the words, reads
a return address and one address per word. All big-endian.
"""

from __future__ import annotations

import socket
import struct
import time

from .transport import Transport, TransportError

__all__ = ["EtherboneTransport", "EtherboneBus", "packet"]

MAGIC = 0x4E6F
HEADER = struct.pack(">HBB4x", MAGIC, 0x10, 0x44)      # version 1; 32-bit addresses and ports
MAX_WORDS = 255


def packet(writes: tuple[int, list[int]] | None = None, reads: list[int] | None = None) -> bytes:
    """One Etherbone packet of one record: ``writes`` = (base address, words), ``reads`` = the
    byte address of every word to read."""
    wcount = len(writes[1]) if writes else 0
    rcount = len(reads) if reads else 0
    if wcount > MAX_WORDS or rcount > MAX_WORDS:
        raise ValueError(f"an Etherbone record carries at most {MAX_WORDS} words")
    out = HEADER + struct.pack(">BBBB", 0, 0x0F, wcount, rcount)
    if writes:
        out += struct.pack(f">I{wcount}I", writes[0], *writes[1])
    if reads:
        out += struct.pack(f">I{rcount}I", 0, *reads)
    return out


class EtherboneBus:
    """Word reads and writes as Etherbone packets (the interface of
    :class:`~accelsmith.sw_driver.bridge.UARTBone`)."""

    def __init__(self, link: "EtherboneTransport", burst_words: int = MAX_WORDS,
                 timeout: float = 5.0):
        self.link = link
        self.burst_words = max(1, min(MAX_WORDS, burst_words))
        self.timeout = timeout
        self.bytes_sent = self.bytes_received = 0

    def write(self, byte_address: int, words, fixed: bool = False):
        words = [int(w) & 0xFFFFFFFF for w in words]
        step = 1 if fixed else self.burst_words
        for start in range(0, len(words), step):
            addr = byte_address if fixed else byte_address + 4 * start
            data = packet(writes=(addr, words[start:start + step]))
            self.link.write(data)
            self.bytes_sent += len(data)

    def read(self, byte_address: int, count: int = 1, fixed: bool = False) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            n = min(self.burst_words, count - len(out))
            base = byte_address + (0 if fixed else 4 * len(out))
            data = packet(reads=[base + (0 if fixed else 4 * i) for i in range(n)])
            self.link.write(data)
            self.bytes_sent += len(data)
            # The reply: packet header, a record header, then the words as writes.
            head = self.link.read(12, self.timeout)
            magic, wcount = struct.unpack(">H", head[:2])[0], head[10]
            if magic != MAGIC or wcount != n:
                raise TransportError(f"Etherbone reply with magic {magic:#06x} and {wcount} "
                                     f"words, {n} expected")
            body = self.link.read(4 + 4 * n, self.timeout)
            self.bytes_received += 16 + 4 * n
            out += struct.unpack(f">{n}I", body[4:])
        return out


class EtherboneTransport(Transport):
    """A TCP connection to ``litex_server`` (TCP_NODELAY on); ``url`` is
    ``etherbone://HOST:PORT``."""

    bytes_per_second = None

    def __init__(self, url: str, open_timeout: float = 5.0):
        self.url = self.name = url
        host, _, port = url.removeprefix("etherbone://").rpartition(":")
        if not port.isdigit():
            raise TransportError(f"{url}: not etherbone://HOST:PORT")
        self.address = (host or "127.0.0.1", int(port))
        self._sock = None
        self._connect(open_timeout)

    def _connect(self, timeout: float):
        try:
            self._sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as exc:
            raise TransportError(f"cannot open {self.url}: {exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # litex_server greets each client with a line of server information: drop it.
        self._sock.settimeout(0.5)
        try:
            self._sock.recv(1024)
        except (TimeoutError, socket.timeout):
            pass
        except OSError as exc:
            raise TransportError(f"{self.url}: {exc}") from None

    def frames(self, burst_words: int, timeout: float):
        return EtherboneBus(self, burst_words, timeout)

    def write(self, data: bytes):
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise TransportError(f"{self.url}: write failed: {exc}") from None

    def read(self, n: int, timeout: float) -> bytes:
        def receive(count, left):
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(count)
            except (TimeoutError, socket.timeout):
                return b""
            except OSError as exc:
                raise TransportError(f"{self.url}: read failed: {exc}") from None
            if not chunk:
                raise TransportError(f"{self.url}: the server closed the connection")
            return chunk

        return self._gather(n, timeout, receive)

    def recover(self, watchdog_seconds: float, watchdog_cycles: int):
        # A lost packet leaves the stream unaligned: start a new connection.
        self.close()
        time.sleep(watchdog_seconds * 1.2 + 0.01)
        self._connect(5.0)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
