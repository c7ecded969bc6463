"""Fixed-width integer formats: ranges, wrap-around and the accumulator width a reduction needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntFormat:
    """A two's complement (``signed``) or plain binary integer of ``bits`` bits."""

    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}"

    def contains(self, values) -> bool:
        values = np.asarray(values)
        return bool(values.size == 0 or (values.min() >= self.min and values.max() <= self.max))

    def wrap(self, values):
        """Reduce integers modulo 2**bits into this format's range (what a register of this width holds)."""
        values = np.asarray(values, dtype=object if self.bits > 62 else np.int64)
        mask = (1 << self.bits) - 1
        wrapped = values & mask
        if self.signed:
            wrapped = np.where(wrapped > self.max, wrapped - (1 << self.bits), wrapped)
        return wrapped.astype(np.int64) if self.bits <= 63 else wrapped

    @classmethod
    def fitting(cls, lo: int, hi: int, signed: bool) -> "IntFormat":
        """The narrowest format of the given signedness that holds every integer in [lo, hi]."""
        bits = 1
        while True:
            fmt = cls(bits, signed)
            if fmt.min <= lo and hi <= fmt.max:
                return fmt
            bits += 1


def product_range(a: IntFormat, b: IntFormat) -> tuple[int, int]:
    """Smallest and largest value of a*b for a in ``a``, b in ``b``."""
    corners = [x * y for x in (a.min, a.max) for y in (b.min, b.max)]
    return min(corners), max(corners)


def accumulator_format(a: IntFormat, b: IntFormat, terms: int) -> IntFormat:
    """The narrowest accumulator that never overflows for a sum of ``terms`` products a*b."""
    lo, hi = product_range(a, b)
    return IntFormat.fitting(min(0, lo * terms), max(0, hi * terms), a.signed or b.signed)
