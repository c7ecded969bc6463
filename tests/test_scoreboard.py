"""The scoreboard names lost, duplicated, reordered and wrong rows (no simulator needed)."""

from collections import deque

import numpy as np
import pytest

from accelsmith.models.bitweight import EngineGeometry
from accelsmith.models.intformat import IntFormat
from accelsmith.testbench.tiles import Job, Scoreboard
from accelsmith.testbench.streams import MismatchError

G = EngineGeometry("output_stationary", 3, 2, 1, 1, IntFormat(8, True), IntFormat(8, True),
                   IntFormat(16, True))


def _board():
    board = Scoreboard(G)
    for j in range(2):
        board.expect(Job(f"j{j}", [], [], 1, np.arange(6).reshape(3, 2) + 10 * j, 1))
    rows = [w for _, _, w in board.expected]
    return board, rows


def test_in_order_passes():
    board, rows = _board()
    assert [w >> 32 for w in rows] == [0, 0, 1, 0, 0, 1]     # last row of each 3-row tile
    board.check(deque(rows))
    assert board.pending == 0 and board.checked == 6


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r[:2] + r[3:], "lost or reordered"),
    (lambda r: r[:2] + [r[1]] + r[2:], "duplicated"),
    (lambda r: [r[1], r[0]] + r[2:], "lost or reordered"),
    (lambda r: [r[0] ^ 1] + r[1:], "wrong value"),
    (lambda r: r + [r[-1]], "extra result row"),
    # The last flag sits above the data: 2 columns of 16 bits.
    (lambda r: [r[0] | 1 << 32] + r[1:], "the last flag is wrong"),
    (lambda r: r[:2] + [r[2] & ~(1 << 32)] + r[3:], "the last flag is wrong"),
])
def test_detects(mutate, message):
    board, rows = _board()
    with pytest.raises(MismatchError, match=message):
        board.check(deque(mutate(rows)))


def test_lost_tail_is_pending():
    board, rows = _board()
    board.check(deque(rows[:-1]))
    assert board.pending == 1
