"""Arithmetic helpers shared by the tensor cores."""

from __future__ import annotations

from amaranth import *

__all__ = ["adder_tree"]


def adder_tree(terms):
    """Sum of ``terms`` as a balanced binary tree of adders (depth ceil(log2 n)), combinational.

    Each level widens by one bit (Amaranth's ``+`` does), so the sum is exact; callers truncate
    to their accumulator width.
    """
    terms = list(terms)
    if not terms:
        return Const(0)
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]
