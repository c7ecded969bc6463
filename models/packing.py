"""Packing of integer vectors into the flat bit vectors of stream payloads and registers.

Element ``i`` of a vector occupies bits ``[i*bits, (i+1)*bits)`` in two's complement, which is
how ``amaranth.lib.data.ArrayLayout`` lays out its elements in the generated Verilog.
"""

from __future__ import annotations

from typing import Iterable

from .intformat import IntFormat


def pack(values: Iterable[int], bits: int) -> int:
    """Concatenate integers (element 0 in the least significant bits) into one unsigned integer."""
    mask = (1 << bits) - 1
    word = 0
    for i, value in enumerate(values):
        word |= (int(value) & mask) << (i * bits)
    return word


def unpack(word: int, fmt: IntFormat, count: int) -> list[int]:
    """Split an unsigned integer into ``count`` elements of format ``fmt``."""
    mask = (1 << fmt.bits) - 1
    out = []
    for i in range(count):
        value = (word >> (i * fmt.bits)) & mask
        if fmt.signed and value > fmt.max:
            value -= 1 << fmt.bits
        out.append(value)
    return out
