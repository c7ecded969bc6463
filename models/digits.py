"""Radix-4 signed-digit encodings of integers (the bit-weight dimension of a multiplier).

An operand ``a`` is written as ``sum(d[bw] * 4**bw)`` with digits ``d[bw]`` in {-2, -1, 0, 1, 2}.
Two encodings are modelled, both exact for every value of an :class:`IntFormat`:

* **Booth** (radix-4 modified Booth): ``d[bw] = -2*x[2bw+1] + x[2bw] + x[2bw-1]`` over the two's
  complement bits (``x[-1] = 0``; unsigned formats get a zero sign bit first).
* **EN-T** (ICCD 2024): sign-magnitude, then the magnitude's bit pairs from the least
  significant end with a carry: ``v = pair + c_in``, digit = ``v mod 4`` read as 0, 1, 2, -1,
  ``c_out = v >= 3``; the operand's sign flips every digit. Fewer non-zero digits than Booth on average (not for every value).

A zero digit is never negative in either encoding (the hardware encoders agree bit for bit).
Arrays of any shape are encoded at once: the digit axis is appended last.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .intformat import IntFormat

ENCODINGS = ("booth", "ent")


def booth_digit_count(fmt: IntFormat) -> int:
    """Digits the Booth encoding of ``fmt`` needs (one more for unsigned: a zero sign bit)."""
    width = fmt.bits + (0 if fmt.signed else 1)
    return (width + 1) // 2


def ent_digit_count(fmt: IntFormat) -> int:
    """Digits the EN-T encoding of ``fmt`` needs: the magnitude's bit pairs, plus one when the
    final carry can be set (for example unsigned 8-bit 255 = 4**4 - 1)."""
    groups = (_magnitude_bits(fmt) + 1) // 2
    final_carry = _ent_magnitude(np.arange(_max_magnitude(fmt) + 1), groups + 1)[:, -1]
    return groups + int(np.any(final_carry != 0))


def digit_count(fmt: IntFormat, encoding: str) -> int:
    return {"booth": booth_digit_count, "ent": ent_digit_count}[encoding](fmt)


def booth_digits(values, fmt: IntFormat) -> np.ndarray:
    """Radix-4 Booth digits of ``values`` (least significant first), shape ``values.shape + (n,)``."""
    values = _checked(values, fmt)
    n = booth_digit_count(fmt)
    bits = (values[..., None] >> np.arange(2 * n)) & 1      # two's complement, sign-extended
    below = np.concatenate([np.zeros_like(bits[..., :1]), bits[..., 1::2][..., :-1]], axis=-1)
    return (-2 * bits[..., 1::2] + bits[..., 0::2] + below).astype(np.int8)


def ent_digits(values, fmt: IntFormat) -> np.ndarray:
    """EN-T digits of ``values`` (least significant first), shape ``values.shape + (n,)``."""
    values = _checked(values, fmt)
    digits = _ent_magnitude(np.abs(values), ent_digit_count(fmt))
    return np.where(values[..., None] < 0, -digits, digits).astype(np.int8)


def digits(values, fmt: IntFormat, encoding: str) -> np.ndarray:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    return (booth_digits if encoding == "booth" else ent_digits)(values, fmt)


def from_digits(d) -> np.ndarray:
    """The integer a digit vector stands for: ``sum(d[..., bw] * 4**bw)``."""
    d = np.asarray(d, dtype=np.int64)
    return (d * 4 ** np.arange(d.shape[-1], dtype=np.int64)).sum(axis=-1)


def nonzero_digits(values, fmt: IntFormat, encoding: str) -> np.ndarray:
    """Non-zero digits per value (the terms a digit-serial datapath has to process)."""
    return np.count_nonzero(digits(values, fmt, encoding), axis=-1)


@lru_cache(maxsize=None)
def _ent_table(groups: int, top: int) -> np.ndarray:
    mags = np.arange(top + 1, dtype=np.int64)
    out = np.zeros((top + 1, groups), dtype=np.int8)
    carry = np.zeros_like(mags)
    for g in range(groups):
        v = ((mags >> (2 * g)) & 3) + carry
        out[:, g] = np.choose(v & 3, [0, 1, 2, -1])
        carry = (v >= 3).astype(np.int64)
    return out


def _ent_magnitude(mags, groups: int) -> np.ndarray:
    mags = np.asarray(mags, dtype=np.int64)
    top = int(mags.max()) if mags.size else 0
    return _ent_table(groups, max(top, 1))[mags]


def _magnitude_bits(fmt: IntFormat) -> int:
    return _max_magnitude(fmt).bit_length()


def _max_magnitude(fmt: IntFormat) -> int:
    return max(-fmt.min, fmt.max)


def _checked(values, fmt: IntFormat) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    if not fmt.contains(values):
        raise ValueError(f"values outside {fmt} [{fmt.min}, {fmt.max}]")
    return values
