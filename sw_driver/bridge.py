"""The host side of LiteX's UARTBone frames (see :class:`accelsmith.hdl.soc.UARTBoneBridge`)."""

from __future__ import annotations

import struct

from .transport import Transport, TransportError

__all__ = ["UARTBone", "frame"]

WRITE, READ, WRITE_FIXED, READ_FIXED = 0x01, 0x02, 0x03, 0x04
MAX_BURST = 255


def frame(cmd: int, byte_address: int, words: list[int] | int) -> bytes:
    """One frame: ``words`` is the data of a write, or the word count of a read."""
    count = words if isinstance(words, int) else len(words)
    if not 1 <= count <= MAX_BURST:
        raise ValueError(f"a UARTBone frame carries 1 to {MAX_BURST} words, not {count}")
    if byte_address % 4 or not 0 <= byte_address < 1 << 32:
        raise ValueError(f"address {byte_address:#x} is not a 32-bit word address")
    head = struct.pack(">BBI", cmd, count, byte_address >> 2)
    if isinstance(words, int):
        return head
    return head + struct.pack(f">{count}I", *[w & 0xFFFFFFFF for w in words])


class UARTBone:
    """Reads and writes 32-bit words over a :class:`Transport`, in bursts of at most
    ``burst_words`` words (sized by the caller so a frame fits the bridge's watchdog)."""

    def __init__(self, transport: Transport, burst_words: int = MAX_BURST, timeout: float = 5.0):
        self.transport = transport
        self.burst_words = max(1, min(MAX_BURST, burst_words))
        self.timeout = timeout
        self.bytes_sent = self.bytes_received = 0

    def write(self, byte_address: int, words, fixed: bool = False):
        words = [int(w) for w in words]
        for start in range(0, len(words), self.burst_words):
            chunk = words[start:start + self.burst_words]
            addr = byte_address if fixed else byte_address + 4 * start
            data = frame(WRITE_FIXED if fixed else WRITE, addr, chunk)
            self.transport.write(data)
            self.bytes_sent += len(data)

    def read(self, byte_address: int, count: int = 1, fixed: bool = False) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            n = min(self.burst_words, count - len(out))
            addr = byte_address if fixed else byte_address + 4 * len(out)
            data = frame(READ_FIXED if fixed else READ, addr, n)
            self.transport.write(data)
            self.bytes_sent += len(data)
            reply = self.transport.read(4 * n, self.timeout + n * 4 * self._byte_time())
            self.bytes_received += len(reply)
            if len(reply) != 4 * n:
                raise TransportError(f"{len(reply)} of {4 * n} reply bytes")
            out += struct.unpack(f">{n}I", reply)
        return out

    def _byte_time(self) -> float:
        rate = self.transport.bytes_per_second
        return 0.0 if rate is None else 1.0 / rate
