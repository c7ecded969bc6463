"""Cycle-level cocotb helpers shared by every family's testbench.

One coroutine (:class:`CycleLoop`) advances all endpoints together: each cycle it lets every
endpoint drive its inputs, waits until the design has settled (``ReadOnly``), lets every
endpoint sample, then waits for the clock edge. Driving and sampling in fixed phases keeps the
handshakes exact on any simulator and costs two triggers per cycle in all.
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge


class MismatchError(AssertionError):
    """A mismatch between the design and the model, or a protocol violation."""


class StreamSource:
    """Offers queued payloads on ``<name>__valid/payload``; each beat is held until accepted.

    ``stall`` is the probability that no beat is offered in a cycle where one could be.
    """

    def __init__(self, dut, name: str, rng: random.Random, stall: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rng, self.stall = rng, stall
        self.queue: deque[int] = deque()
        self.offering = False
        self.accepted = 0
        self.valid.value = 0

    def push(self, word: int):
        self.queue.append(word)

    def drive(self):
        if not self.offering and self.queue and self.rng.random() >= self.stall:
            self.offering = True
            self.payload.value = self.queue[0]
        self.valid.value = int(self.offering)

    def sample(self):
        if self.offering and int(self.ready.value):
            self.queue.popleft()
            self.offering = False
            self.accepted += 1


class StreamSink:
    """Accepts beats from ``<name>__valid/payload`` with ``ready`` low with probability
    ``stall``; records them and checks the source holds ``valid`` and the payload until taken."""

    def __init__(self, dut, name: str, rng: random.Random, stall: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rng, self.stall = rng, stall
        self.received: deque[int] = deque()
        self.name = name
        self._held = None
        self._ready = 0
        self.ready.value = 0

    def drive(self):
        self._ready = int(self.rng.random() >= self.stall)
        self.ready.value = self._ready

    def sample(self):
        valid = int(self.valid.value)
        if self._held is not None:
            if not valid or self.payload.value.to_unsigned() != self._held:
                raise MismatchError(f"stream '{self.name}': valid beat withdrawn or changed before "
                                  f"it was accepted")
        if valid:
            word = self.payload.value.to_unsigned()
            if self._ready:
                self.received.append(word)
                self._held = None
            else:
                self._held = word
        else:
            self._held = None


class RegisterPort:
    """Host access to a :class:`~accelsmith.hdl.csr.RegisterFile` bus (``<name>__addr`` ...).

    ``write`` takes one cycle; ``read`` returns the value seen in the cycle its address is set.
    """

    def __init__(self, dut, name: str = "csr"):
        self.addr = getattr(dut, f"{name}__addr")
        self.w_en = getattr(dut, f"{name}__w_en")
        self.w_data = getattr(dut, f"{name}__w_data")
        self.r_data = getattr(dut, f"{name}__r_data")
        self.ops: deque = deque()
        self.current = None
        self.addr.value = 0
        self.w_en.value = 0
        self.w_data.value = 0

    async def write(self, addr: int, value: int):
        await self._access("w", addr, value)

    async def read(self, addr: int) -> int:
        return await self._access("r", addr, 0)

    async def _access(self, kind: str, addr: int, value: int):
        op = {"kind": kind, "addr": addr, "value": value, "done": Event(), "result": None}
        self.ops.append(op)
        await op["done"].wait()
        return op["result"]

    def drive(self):
        self.current = self.ops.popleft() if self.ops else None
        if self.current is None:
            self.w_en.value = 0
            return
        self.addr.value = self.current["addr"]
        self.w_en.value = int(self.current["kind"] == "w")
        if self.current["kind"] == "w":
            self.w_data.value = self.current["value"]

    def sample(self):
        if self.current is not None and self.current["kind"] == "r":
            self.current["result"] = self.r_data.value.to_unsigned()

    def complete(self):
        if self.current is not None:
            self.current["done"].set()
            self.current = None


class CycleLoop:
    """Runs the endpoints every clock cycle and counts cycles; see the module docstring."""

    def __init__(self, clk, endpoints, registers: RegisterPort | None = None):
        self.clk = clk
        self.endpoints = list(endpoints)
        self.registers = registers
        self.cycle = 0

    async def run(self):
        parts = self.endpoints + ([self.registers] if self.registers else [])
        while True:
            for part in parts:
                part.drive()
            await ReadOnly()
            for part in parts:
                part.sample()
            await RisingEdge(self.clk)
            self.cycle += 1
            if self.registers:
                self.registers.complete()

    def start(self):
        return cocotb.start_soon(self.run())
