"""The rasteriser's stream beats as integers: field widths, packing and the range checks.

One definition serves the hardware (``hdl/gaussian.py`` builds its ``StructLayout`` from these
lists, fields in order from the least significant bit) and the host (testbench and driver pack
with :func:`pack_fields`). Widths follow :mod:`.fixed`:

* tile beat: tile column ``tx`` and row ``ty`` (11 bits: a Q.8 mean of +-2^23 reaches tile
  2047), ``count`` entries that follow on the record stream (0 for an empty tile, at most
  65,535, which also keeps every per-pixel sum inside its register), the background per channel
  (Q.12, 16 bits);
* record beat: mean x, y (signed Q.8, 24 bits), conic a, c (unsigned Q.24, 26 bits: at most
  1/0.3 after the dilation), b (signed Q.24, 27 bits: |b| <= sqrt(a c)), opacity (Q.16, 16 bits),
  colour per channel (Q.12, 14 bits: [0, 4)), weight w (Q.16, 17 bits: up to 1.0);
* pixel beat: the three channels (Q.12, 16 bits each).
"""

from __future__ import annotations

import numpy as np

TILE_FIELDS = (("tx", 11, False), ("ty", 11, False), ("count", 16, False),
               ("bg_r", 16, False), ("bg_g", 16, False), ("bg_b", 16, False))
RECORD_FIELDS = (("mean_x", 24, True), ("mean_y", 24, True), ("conic_a", 26, False),
                 ("conic_b", 27, True), ("conic_c", 26, False), ("opacity", 16, False),
                 ("colour_r", 14, False), ("colour_g", 14, False), ("colour_b", 14, False),
                 ("weight", 17, False))
PIXEL_FIELDS = (("r", 16, False), ("g", 16, False), ("b", 16, False))
# With a Gaussian buffer, a record beat is an entry beat: a header in the low 16 bits (fetch:
# the record follows and goes into slot; else the slot's resident record is used and the record
# bits are ignored, so a host sends only the beat's first word) and then the record.
ENTRY_HEADER = (("fetch", 1, False), ("slot", 15, False))
ENTRY_FIELDS = ENTRY_HEADER + RECORD_FIELDS
MAX_BUFFER = 1 << 15
MAX_COUNT = (1 << 16) - 1

# The sorter network's mode: a feature beat per Gaussian in, its weight (Q.16) out.
FEATURE_FIELDS = tuple((f"x{i}", 16, True) for i in range(5))
WEIGHT_FIELDS = (("w", 17, False),)

# The network the hardware runs (5-8-4-1, int8 weights): its parameters as one bit vector, the
# layout of the engine's NET_PARAMS registers. Weights in multiplier-slot order: layer l's
# product (input i, neuron j) is slot offset_l + j * fan_in + i; biases int32; per-layer scale
# exponents (weight_frac) 0..NET_FRAC_MAX.
NET_SIZES = (5, 8, 4, 1)
NET_WEIGHT_BITS = 8
NET_BIAS_BITS = 32
NET_FRAC_BITS = 5
NET_FRAC_MAX = 24
NET_WEIGHTS = sum(i * o for i, o in zip(NET_SIZES, NET_SIZES[1:]))      # 76
NET_BIASES = sum(NET_SIZES[1:])                                         # 13
NET_LAYERS = len(NET_SIZES) - 1
NET_PARAM_BITS = (NET_WEIGHTS * NET_WEIGHT_BITS + NET_BIASES * NET_BIAS_BITS
                  + NET_LAYERS * NET_FRAC_BITS)


class RecordRangeError(ValueError):
    """A value that does not fit its beat field (names the field, the value and the range)."""


def field_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def pack_fields(fields, values: dict, what: str = "beat") -> int:
    """One beat as an unsigned integer (first field in the least significant bits); refuses a
    value outside its field's range rather than truncating it."""
    word, shift = 0, 0
    for name, bits, signed in fields:
        value = int(values[name])
        lo, hi = field_range(bits, signed)
        if not lo <= value <= hi:
            raise RecordRangeError(f"{what}: field '{name}' has value {value}, outside its "
                                   f"{bits}-bit {'signed' if signed else 'unsigned'} range "
                                   f"[{lo}, {hi}]")
        word |= (value & ((1 << bits) - 1)) << shift
        shift += bits
    return word


def unpack_fields(fields, word: int) -> dict:
    out, shift = {}, 0
    for name, bits, signed in fields:
        value = (word >> shift) & ((1 << bits) - 1)
        if signed and value >> (bits - 1):
            value -= 1 << bits
        out[name] = value
        shift += bits
    return out


def width(fields) -> int:
    return sum(bits for _, bits, _ in fields)


def tile_beat(tx: int, ty: int, count: int, background_q=(0, 0, 0)) -> int:
    if count > MAX_COUNT:
        raise RecordRangeError(f"tile ({tx}, {ty}) has {count} entries; a tile holds at most "
                               f"{MAX_COUNT} (split the tile's list over two passes)")
    r, g, b = (int(x) for x in background_q)
    return pack_fields(TILE_FIELDS, {"tx": tx, "ty": ty, "count": count, "bg_r": r, "bg_g": g,
                                     "bg_b": b}, f"tile ({tx}, {ty})")


def record_beats(fv, rows: np.ndarray, w_q: np.ndarray) -> list[int]:
    """The record beats of projection rows ``rows`` of a :class:`~.fixed.FixedView` with weights
    ``w_q`` (Q.16)."""
    out = []
    for g in np.asarray(rows, np.int64).tolist():
        values = {"mean_x": fv.mean[g, 0], "mean_y": fv.mean[g, 1], "conic_a": fv.conic[g, 0],
                  "conic_b": fv.conic[g, 1], "conic_c": fv.conic[g, 2],
                  "opacity": fv.opacity[g], "colour_r": fv.colour[g, 0],
                  "colour_g": fv.colour[g, 1], "colour_b": fv.colour[g, 2], "weight": w_q[g]}
        out.append(pack_fields(RECORD_FIELDS, values, f"Gaussian {g}"))
    return out


def pack_words(fields, columns: dict, words_per_beat: int, what: str = "beat") -> np.ndarray:
    """Many beats at once as 32-bit words ``(n, words_per_beat)``, least significant word first
    (the SoC buffers' layout); ``columns`` maps each field to an (n,) integer array. Refuses a
    value outside its field, naming the first beat that has one."""
    n = len(next(iter(columns.values())))
    if width(fields) > 32 * words_per_beat:
        raise ValueError(f"{width(fields)} bits do not fit {words_per_beat} words")
    words = np.zeros((n, words_per_beat + 1), np.uint64)
    shift = 0
    for name, bits, signed in fields:
        value = np.asarray(columns[name], np.int64)
        lo, hi = field_range(bits, signed)
        bad = np.flatnonzero((value < lo) | (value > hi))
        if len(bad):
            raise RecordRangeError(f"{what} {bad[0]}: field '{name}' has value {value[bad[0]]}, "
                                   f"outside its {bits}-bit {'signed' if signed else 'unsigned'} "
                                   f"range [{lo}, {hi}]")
        field = (value & ((1 << bits) - 1)).astype(np.uint64) << np.uint64(shift % 32)
        words[:, shift // 32] |= field & np.uint64(0xFFFFFFFF)
        words[:, shift // 32 + 1] |= field >> np.uint64(32)     # bits <= 32: two words at most
        shift += bits
    return words[:, :words_per_beat].astype(np.uint32)


def unpack_words(fields, words: np.ndarray) -> dict:
    """The inverse of :func:`pack_words`: each field of beats ``(n, words_per_beat)`` as an (n,)
    integer array."""
    words = np.asarray(words, np.uint64)
    out, shift = {}, 0
    for name, bits, signed in fields:
        w, o = shift // 32, shift % 32
        value = words[:, w] >> np.uint64(o)
        if o + bits > 32:
            value |= words[:, w + 1] << np.uint64(32 - o)
        value = (value & np.uint64((1 << bits) - 1)).astype(np.int64)
        out[name] = np.where(value >> (bits - 1), value - (1 << bits), value) if signed else value
        shift += bits
    return out


def record_words(fv, w_q: np.ndarray, words_per_beat: int, entries: bool = False) -> np.ndarray:
    """The record beat of every Gaussian of a :class:`~.fixed.FixedView` (weights ``w_q``, Q.16)
    as words ``(M, words_per_beat)``: the rows a tile's beats are gathered from. ``entries``:
    laid out as :data:`ENTRY_FIELDS` (header zero; :func:`entry_words` sets it)."""
    columns = {"mean_x": fv.mean[:, 0], "mean_y": fv.mean[:, 1], "conic_a": fv.conic[:, 0],
               "conic_b": fv.conic[:, 1], "conic_c": fv.conic[:, 2], "opacity": fv.opacity,
               "colour_r": fv.colour[:, 0], "colour_g": fv.colour[:, 1],
               "colour_b": fv.colour[:, 2], "weight": w_q}
    if entries:
        zero = np.zeros(len(w_q), np.int64)
        return pack_words(ENTRY_FIELDS, {"fetch": zero, "slot": zero, **columns}, words_per_beat,
                          "Gaussian")
    return pack_words(RECORD_FIELDS, columns, words_per_beat, "Gaussian")


def entry_words(records: np.ndarray, fetch: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """Entry beats from record beats packed with :data:`ENTRY_FIELDS` (header zero): the header
    of each set from ``fetch`` and ``slot``. Returns a copy."""
    out = np.array(records, np.uint32, copy=True)
    out[:, 0] = (out[:, 0] & np.uint32(0xFFFF0000)) | (np.asarray(fetch, np.uint32)
                                                      | (np.asarray(slot, np.uint32) << 1))
    return out


def unpack_pixel(word: int) -> tuple[int, int, int]:
    p = unpack_fields(PIXEL_FIELDS, word)
    return p["r"], p["g"], p["b"]
PIXELS_PER_TILE = 256


class NetworkError(ValueError):
    """A sorter network the hardware's network mode cannot run (says what and what is allowed)."""


def net_params(q) -> int:
    """A :class:`~.fixed.QuantMLP` as the NET_PARAMS bit vector (weights, then biases, then
    scale exponents, each field from the least significant bit); refuses networks of another
    shape, weight width, scale or bias range."""
    sizes = (q.w[0].shape[0],) + tuple(w.shape[1] for w in q.w)
    if sizes != NET_SIZES:
        raise NetworkError(f"the network is {'-'.join(map(str, sizes))}; the hardware runs "
                           f"{'-'.join(map(str, NET_SIZES))}")
    if q.bits != NET_WEIGHT_BITS:
        raise NetworkError(f"the network's weights are {q.bits}-bit; the hardware takes "
                           f"{NET_WEIGHT_BITS}-bit weights (quantise_mlp(mlp, bits=8))")
    fields = []
    for w in q.w:
        fields += [(int(v), NET_WEIGHT_BITS, True) for v in np.asarray(w).T.reshape(-1)]
    for layer, b in enumerate(q.b):
        lo, hi = field_range(NET_BIAS_BITS, True)
        if not all(lo <= int(v) <= hi for v in np.asarray(b)):
            raise NetworkError(f"layer {layer}: a bias does not fit {NET_BIAS_BITS} bits at its "
                               f"scale 2^{8 + q.w_frac[layer]}")
        fields += [(int(v), NET_BIAS_BITS, True) for v in np.asarray(b)]
    for layer, frac in enumerate(q.w_frac):
        if not 0 <= frac <= NET_FRAC_MAX:
            raise NetworkError(f"layer {layer}: weight scale 2^{frac}; the hardware supports "
                               f"scales 2^0 .. 2^{NET_FRAC_MAX} (weights of magnitude "
                               f"{2.0 ** -NET_FRAC_MAX * 127:.2g} to 127)")
        fields.append((int(frac), NET_FRAC_BITS, False))
    word, shift = 0, 0
    for value, bits, _ in fields:
        word |= (value & ((1 << bits) - 1)) << shift
        shift += bits
    assert shift == NET_PARAM_BITS
    return word


def feature_words(x_q: np.ndarray, words_per_beat: int) -> np.ndarray:
    """Network inputs (M, 5), Q.8 int16, as beats of ``words_per_beat`` words."""
    x_q = np.asarray(x_q, np.int64)
    return pack_words(FEATURE_FIELDS, {f"x{i}": x_q[:, i] for i in range(5)}, words_per_beat,
                      "Gaussian")
