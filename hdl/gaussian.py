"""The ``gaussian`` family's hardware: a 16x16-tile rasteriser with axis-oriented evaluation and
order-independent blending, bit-exact with :mod:`accelsmith.models.gaussian.fixed`.

Dataflow (each box a pipelined unit; beats as in :mod:`accelsmith.models.gaussian.records`)::

    tiles, records --> AxisSetup --(entry terms, two banks)--> lanes x PairEvaluator
                                                                   |  (sums per pixel, RMW)
                      pixels <-- PixelNormaliser <-- drain --------+  accumulator memories

* :class:`AxisSetup` computes a tile entry's axis terms once, one entry per cycle: A_i, B_i,
  R_i (i = 0..15 along the columns) and C_j with the rows' saturation flags, by differences
  from ten products per entry.
* ``lanes`` :class:`PairEvaluator` lanes take a ``sqrt(lanes)``-square block of pixels per cycle;
  each lane picks its column's terms and its row's, so a pixel-Gaussian pair's exponent costs
  no multiply: A_i + C_j + R_i - B_i j (B_i j as shift-adds of the row's 4 bits).
* The per-pixel sums live in one memory per lane, read-modified-written in one cycle.
* After a tile's last entry, :class:`PixelNormaliser` reads the 256 sums out in raster order
  (a slot not written since its last read-out reads as zero), divides, blends and streams
  the pixels.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from accelsmith.models.gaussian import fixed, hardware
from .arith import carry_chain_sum, const_product, multiples, quadratic_series
from .csr import Field, Register, RegisterBusSignature, RegisterFile
from .formal import engine_properties
from accelsmith.models.gaussian.records import (ENTRY_FIELDS, NET_BIASES, NET_FRAC_BITS,
                                                NET_LAYERS, NET_SIZES, NET_WEIGHTS, PIXEL_FIELDS,
                                                RECORD_FIELDS, TILE_FIELDS)

__all__ = ["TILE_LAYOUT", "RECORD_LAYOUT", "PIXEL_LAYOUT", "Exp2Table", "NegLog2Table",
           "SubtileTest", "AxisSetup", "PairEvaluator", "PixelNormaliser", "SorterNetwork",
           "GaussianBuffer",
           "TileRasteriser", "RasteriserEngine"]

TILE = fixed.TILE
D_BITS = 22            # d_0: the first column's (row's) offset saturated to +-(2^20 + 2^12) (Q.8)
QUAD_BITS = 40         # A, C: -(a dx^2) / 2 in Q.12, a < 2^26 and dx^2 < 2^41 before the shift
B_BITS = 30            # B = -b dx in Q.12: |b| < 2^26, |dx| <= 2^20, shifted by 20
R_BITS = 41            # R = round(B dy_0 / 2^8): |B| <= 2^26, |dy_0| <= 2^20 + 2^12
SUM_BITS = {"s_w": 32, "s_cw": 48, "s_log": 32}
DIVIDER_BITS = 14      # the normalised colour is a weighted mean of 14-bit colours
# 255 v < 2^16 (v below 1/255) exactly when v < 258: a compare instead of a product.
VISIBLE_MIN = -(-fixed.ONE16 // 255)


def _layout(fields):
    return data.StructLayout({n: signed(b) if s else unsigned(b) for n, b, s in fields})


TILE_LAYOUT = _layout(TILE_FIELDS)
RECORD_LAYOUT = _layout(RECORD_FIELDS)
ENTRY_LAYOUT_IN = _layout(ENTRY_FIELDS)
PIXEL_LAYOUT = _layout(PIXEL_FIELDS)
SUMS_LAYOUT = data.StructLayout({"s_w": SUM_BITS["s_w"],
                                 "s_cw": data.ArrayLayout(SUM_BITS["s_cw"], 3),
                                 "s_log": SUM_BITS["s_log"]})
MAX_SUBTILES = 16
LEAKY_SHIFT = 3        # the network's LeakyReLU: negative sums times 1/8
MUL_BITS = 18          # a shared multiplier: signed 18 x 18 bits, one DSP block
NET_SLOTS = NET_WEIGHTS + 1    # the network's products, then the sigmoid's interpolation
FEATURES_LAYOUT = data.ArrayLayout(signed(16), NET_SIZES[0])
NET_PARAMS_LAYOUT = data.StructLayout({"w": data.ArrayLayout(signed(8), NET_WEIGHTS),
                                       "b": data.ArrayLayout(signed(32), NET_BIASES),
                                       "frac": data.ArrayLayout(NET_FRAC_BITS, NET_LAYERS)})
ENTRY_LAYOUT = data.StructLayout({"opacity": 16, "weight": 17, "colour": data.ArrayLayout(14, 3),
                                  "has_entry": 1, "last": 1, "bg": data.ArrayLayout(16, 3),
                                  "keep": MAX_SUBTILES})
TERM_SHAPES = {"a": signed(QUAD_BITS), "b": signed(B_BITS), "c": signed(QUAD_BITS),
               "r": signed(R_BITS), "hi": unsigned(1), "lo": unsigned(1)}
TERMS_LAYOUT = data.StructLayout({**{k: data.ArrayLayout(v, TILE) for k, v in TERM_SHAPES.items()},
                                  "entry": ENTRY_LAYOUT})


def _rshift_round(x, s):
    return (x + (1 << (s - 1))) >> s


def _below(x, lo: int):
    """x < lo; for lo = -2^k or 0 as bit tests (x's bits from k up not all ones, with x
    negative), which Yosys otherwise maps to a carry chain."""
    x = Value.cast(x)
    signed_x = x.shape().signed
    if lo <= 0 and (-lo) & (-lo - 1) == 0:
        if not signed_x:
            return C(0)
        if lo == 0:
            return x[-1]
        k = (-lo).bit_length() - 1
        return x[-1] & ~x[k:].all() if k < len(x) - 1 else C(0)
    return x < lo


def _above(x, hi: int):
    """x > hi; for hi = 2^k - 1 (0 included) as bit tests (x non-negative with a bit from k up)."""
    x = Value.cast(x)
    if hi >= 0 and (hi + 1) & hi == 0:
        k, stop = hi.bit_length(), len(x) - x.shape().signed
        if k >= stop:
            return C(0)
        return (~x[-1] if x.shape().signed else C(1)) & x[k:stop].any()
    return x > hi


def _clamp(x, lo, hi):
    return Mux(_below(x, lo), lo, Mux(_above(x, hi), hi, x))


def _exp_argument(neg_power):
    """y = -power log2(e) in Q.12, from -power (0..16 in Q.12), rounded."""
    # A `*` by the constant: one DSP block per lane, fewer LUTs than const_product's adders.
    return _rshift_round(neg_power * fixed.LOG2E_Q15, 15)[:17]


def _visibility(opacity, e, product=None):
    """v = min(0.999, opacity e) in Q.16, 0 below 1/255 (``product``: opacity e computed
    elsewhere, on a shared multiplier)."""
    v_raw = _rshift_round(opacity * e if product is None else product, 16)
    v = Mux(v_raw > fixed.V_MAX_Q, fixed.V_MAX_Q, v_raw)
    return Mux(v < VISIBLE_MIN, 0, v)[:16]


def _rshift_round_by(x, shift):
    """x / 2^shift rounded half up, for a run-time ``shift`` (0 leaves x as it is)."""
    # 2^(shift - 1) kept to the width it needs: Amaranth widens a variable shift left by the
    # largest shift, which made the sum and the barrel shifter twice as wide as x.
    width = max(len(x), (1 << len(shift)) - 1)
    half = ((C(1, width) << shift) >> 1)[:width]
    return (x + half) >> shift


def _cycles_to_leave(valids):
    """For the valid bits of a pipeline's stages in order (the last one's beat on offer), the
    cycles until the rearmost beat is on offer when nothing stalls (0 with none inside)."""
    left = C(0)
    for k, v in reversed(list(enumerate(valids))):
        left = Mux(v, len(valids) - 1 - k, left)
    return left


class Exp2Table(wiring.Component):
    """2^(-y) for y >= 0 in Q.12, Q.16 out (:func:`~accelsmith.models.gaussian.fixed.exp2_neg`):
    the 257-entry table of 2^(-k/256) at the rounded fraction, shifted by the integer part; 0
    beyond a shift of 16. ``result`` is 2^(-y) for the ``y`` of the last cycle with ``en`` high:
    a synchronous ROM read (a block RAM on FPGAs) and a shifter after it."""

    def __init__(self, y_bits: int):
        super().__init__({"y": In(y_bits), "en": In(1), "result": Out(17)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=17, depth=len(fixed.EXP_TABLE),
                                               init=[int(x) for x in fixed.EXP_TABLE])
        port = rom.read_port()
        frac = fixed.POWER_FRAC
        n = Signal(len(self.y) - frac, reset_less=True)
        with m.If(self.en):
            m.d.sync += n.eq(self.y >> frac)
        m.d.comb += [port.addr.eq(_rshift_round(self.y[:frac], frac - 8)), port.en.eq(self.en),
                     self.result.eq(Mux(n > 16, 0, port.data >> n[:5]))]
        return m


class NegLog2Table(wiring.Component):
    """-log2(1 - v) for v in Q.16, Q.12 out
    (:func:`~accelsmith.models.gaussian.fixed.neg_log2_one_minus`): the leading one of u = 1 - v
    gives the integer part, the next 8 bits index a 256-entry table. ``result`` is for the ``v``
    of the previous cycle (a synchronous ROM read, a block RAM on FPGAs)."""

    def __init__(self):
        super().__init__({"v": In(16), "result": Out(17)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=fixed.LOG_FRAC + 1, depth=len(fixed.LOG_TABLE),
                                               init=[int(x) for x in fixed.LOG_TABLE])
        port = rom.read_port()
        u = Signal(17)
        lz = Signal(range(17))     # 16 - position of u's leading one
        m.d.comb += u.eq(fixed.ONE16 - self.v)
        for bit in range(17):      # lowest first, so the highest set bit wins
            with m.If(u[bit]):
                m.d.comb += lz.eq(16 - bit)
        normal = Signal(17)
        lz_read = Signal.like(lz, reset_less=True)
        m.d.sync += lz_read.eq(lz)
        m.d.comb += [normal.eq(u << lz), port.addr.eq(normal[8:16]),
                     self.result.eq((lz_read << fixed.LOG_FRAC) - port.data)]
        return m


def _cross(m, b, r, j, hi, lo):
    """round(B_i dy_j / 2^8) (:func:`~accelsmith.models.gaussian.hardware.cross_terms`): R_i - B_i j
    inside the saturation (B_i j as shifts and adds over the bits of ``j``, constant bits
    folded), +-(B_i << 12) in rows saturated high / low."""
    if isinstance(j, int):
        bj = const_product(b, j, m, "bj")
    else:
        bj = carry_chain_sum(m, [Mux(j[k], b << k, 0) for k in range(len(j))], "bj")
    edge = b << (fixed.DX_LIMIT.bit_length() - 1 - fixed.MEAN_FRAC)
    return Mux(hi, edge, Mux(lo, -edge, r - bj))


class SubtileTest(wiring.Component):
    """The pair-skipping test of :func:`~accelsmith.models.gaussian.fixed.subtile_keep_fixed`:
    per ``size`` x ``size`` sub-tile (row-major), ``keep`` is low when no pixel of it can have
    v > 0 for this entry. The bound max A_i + max C_j + the largest corner round(B dy / 2^8) is
    computed as :func:`~accelsmith.models.gaussian.hardware.subtile_bounds_by_selection` does:
    the largest A_i (C_j) of a range is the one at the index nearest the mean (``nx``, ``ny``)
    clamped to it, and of a column's two row corners the sign of B_i picks the larger, so each
    sub-tile compares two corners (:func:`_cross`, no product). The bound, saturated like the
    lanes' power, is compared with the opacity's visibility threshold
    (:func:`~accelsmith.models.gaussian.hardware.visible_power_thresholds`, a 65,536-entry ROM:
    v is monotone in the power, so this is the lanes' exp and visibility test without an exp
    table or a product per sub-tile). Pipelined: ``keep`` is the verdict on the terms presented
    ``LATENCY`` cycles with ``en`` high before (stages: the selections, corners and the
    threshold's read; the bounds; the compares)."""

    LATENCY = hardware.SUBTILE_LATENCY

    def __init__(self, size: int):
        self.size = size
        self.count = (TILE // size) ** 2
        super().__init__({**{k: In(data.ArrayLayout(v, TILE)) for k, v in TERM_SHAPES.items()},
                          "nx": In(4), "ny": In(4), "opacity": In(16), "en": In(1),
                          "keep": Out(self.count)})

    def elaborate(self, platform):
        m = Module()
        size, n = self.size, TILE // self.size

        def register(value, name):
            reg = Signal(value.shape(), name=name, reset_less=True)
            with m.If(self.en):
                m.d.sync += reg.eq(value)
            return reg

        def nearest(terms, near, k):
            """terms[clamp(near, first, last)] over sub-tile range k."""
            first, last = k * size, (k + 1) * size - 1
            pick = terms[last]
            for i in reversed(range(first, last)):
                pick = Mux(near <= i, terms[i], pick)
            return pick

        max_a = [register(nearest(self.a, self.nx, k), f"max_a{k}") for k in range(n)]
        max_c = [register(nearest(self.c, self.ny, k), f"max_c{k}") for k in range(n)]
        corner = {}
        for sc in range(n):
            for i in (sc * size, (sc + 1) * size - 1):
                b, falling = self.b[i], self.b[i][-1]          # B_i < 0: the last row is larger
                # R_i - B_i j at j = j0 + (size - 1) [B_i < 0]: the row offset folded into R_i
                r = self.r[i] - Mux(falling, const_product(b, size - 1, m, "bspan"), 0)
                for sr in range(n):
                    j0, j1 = sr * size, (sr + 1) * size - 1
                    hi = Mux(falling, self.hi[j1], self.hi[j0])
                    lo = Mux(falling, self.lo[j1], self.lo[j0])
                    corner[i, sr] = register(_cross(m, b, r, j0, hi, lo), f"corner{i}_{sr}")
        m.submodules.thresholds = rom = memory.Memory(
            shape=signed(18), depth=fixed.ONE16,
            init=[int(x) for x in hardware.visible_power_thresholds()])
        port = rom.read_port()
        m.d.comb += [port.addr.eq(self.opacity), port.en.eq(self.en)]
        threshold = register(port.data, "threshold")
        for sr in range(n):
            for sc in range(n):
                left, right = corner[sc * size, sr], corner[(sc + 1) * size - 1, sr]
                bound = register(max_a[sc] + max_c[sr] + Mux(right > left, right, left),
                                 f"bound{sr}_{sc}")
                with m.If(self.en):
                    m.d.sync += self.keep[sr * n + sc].eq(
                        _clamp(bound, fixed.POWER_MIN, 0) >= threshold)
        return m


class AxisSetup(wiring.Component):
    """Per tile entry, the axis terms of :func:`~accelsmith.models.gaussian.fixed.axis_terms_fixed`
    in the product-free form of :func:`~accelsmith.models.gaussian.hardware.axis_terms_by_differences`:
    the 16 column terms A_i, B_i, R_i and the 16 row terms C_j with the rows' saturation flags,
    from ten products per entry and constant shift-adds per index.

    Takes a tile beat, then its ``count`` record beats, one record per cycle, and offers each
    record's terms with its opacity, weight and colour as one ``terms`` beat. An empty tile gives
    one beat with ``has_entry`` low; the tile's final beat has ``last`` high and carries its
    background. With ``subtile`` set, ``keep`` holds :class:`SubtileTest`'s verdict per sub-tile
    (else all ones).

    Timing: a pipeline of ``LATENCY`` stages (offsets; products; second products and the
    borrows; per-index sums; roundings; with ``subtile`` the test's stages) and the offered bank:
    with ``terms`` accepted as offered, one record per cycle. Backpressure on ``terms`` stalls
    the pipeline (nothing is lost).

    For proofs (:func:`rasteriser_properties`), not ports: ``tile_ends`` counts the tiles taken
    whose final beat has not left yet, ``stray`` is high while a stage holds a beat that is
    neither an entry nor a tile's final beat, while a tile's records are awaited with none to
    come, a record is held outside a tile or the state register holds no state (never);
    ``unissued`` counts the records of the tile being taken not yet issued; ``partial`` is high
    while a stage holds an entry that is not its tile's final beat (never with tiles of at most
    one record); ``offer_in`` is the cycles until the last beat inside is offered on ``terms``
    (0 while it is, or with nothing inside) when records arrive in every cycle and nothing
    stalls the pipeline, as with a tile of at most one record.
    """

    def __init__(self, subtile: int = 0):
        self.subtile = subtile
        self.LATENCY = hardware.setup_latency(subtile)
        super().__init__({"tiles": In(stream.Signature(TILE_LAYOUT)),
                          "records": In(stream.Signature(RECORD_LAYOUT)),
                          "terms": Out(stream.Signature(TERMS_LAYOUT)),
                          "busy": Out(1)})
        self.tile_ends = Signal(range(self.LATENCY + 3))
        self.stray = Signal()
        self.unissued = Signal(17)
        self.partial = Signal()
        self.offer_in = Signal(range(self.LATENCY + 2 + (1 << 16)))

    def elaborate(self, platform):
        m = Module()
        # Datapath registers have no reset (valid bits and counters do): less logic, and
        # simulators do not re-evaluate them whenever an input such as rst changes.
        tile = Signal(TILE_LAYOUT, reset_less=True)
        rec = Signal(RECORD_LAYOUT, reset_less=True)
        left = Signal(16)             # records of the tile still to come
        transfer = Signal()
        en = Signal()                 # the pipeline advances
        last_full = Signal()          # the pipeline's last stage holds an entry
        m.d.comb += [transfer.eq(last_full & (~self.terms.valid | self.terms.ready)),
                     en.eq(~last_full | transfer)]
        with m.If(self.terms.valid & self.terms.ready):
            m.d.sync += self.terms.valid.eq(0)

        # Issue: the held record enters the pipeline (the next one is taken in the same cycle,
        # so records follow back to back); an empty tile enters as a token.
        issue, issue_entry, issue_last = Signal(), Signal(), Signal()
        holding = Signal()            # rec is a record not yet issued
        with m.FSM(name="setup") as fsm:
            with m.State("TILE"):
                m.d.comb += self.tiles.ready.eq(en)
                with m.If(self.tiles.valid & en):
                    m.d.sync += [tile.eq(self.tiles.payload), left.eq(self.tiles.payload.count)]
                    m.next = "RECORD"
                    with m.If(self.tiles.payload.count == 0):
                        m.next = "EMPTY"
            with m.State("EMPTY"):
                with m.If(en):
                    m.d.comb += [issue.eq(1), issue_last.eq(1)]
                    m.next = "TILE"
            with m.State("RECORD"):
                with m.If(holding & en):
                    m.d.comb += [issue.eq(1), issue_entry.eq(1), issue_last.eq(left == 0)]
                    m.d.sync += holding.eq(0)
                    with m.If(left == 0):
                        m.next = "TILE"
                m.d.comb += self.records.ready.eq(en & (left != 0))
                with m.If(self.records.valid & self.records.ready):
                    m.d.sync += [rec.eq(self.records.payload), holding.eq(1), left.eq(left - 1)]

        valids = []
        beats = [(self.terms.valid, self.terms.payload.entry.has_entry, self.terms.payload.entry.last)]

        def stage(name, valid, **values):
            """Registers of one pipeline stage (advancing with ``en``), and its valid bit."""
            regs = {}
            for key, value in values.items():
                if not isinstance(value, data.View):
                    value = Value.cast(value)
                regs[key] = Signal(value.shape(), name=f"{name}_{key}", reset_less=True)
                with m.If(en):
                    m.d.sync += regs[key].eq(value)
            v = Signal(name=f"{name}_valid")
            with m.If(en):
                m.d.sync += v.eq(valid)
            valids.append(v)
            entry = regs["terms"].entry if "terms" in regs else None
            beats.append((v, *((entry.has_entry, entry.last) if entry is not None else
                               (regs["entry"], regs["last"]))))
            return v, regs

        frac, shift = fixed.MEAN_FRAC, fixed.CONIC_FRAC + fixed.MEAN_FRAC - fixed.POWER_FRAC
        half = 1 << (frac - 1)
        k_bits = shift - frac          # 2^8 b = kb 2^20 + f
        entry = dict(entry=issue_entry, last=issue_last, opacity=rec.opacity, weight=rec.weight,
                     colour=Cat(rec.colour_r, rec.colour_g, rec.colour_b),
                     bg=Cat(tile.bg_r, tile.bg_g, tile.bg_b))
        d0 = {axis: _clamp(mean - (t << (4 + frac)) - half, -hardware.D0_LIMIT, hardware.D0_LIMIT)
              for axis, mean, t in (("x", rec.mean_x, tile.tx), ("y", rec.mean_y, tile.ty))}
        # the column (row) nearest the mean, for the sub-tile test's maxima
        entry.update({f"n{axis}": _clamp((d + half) >> frac, 0, TILE - 1)[:4]
                      for axis, d in d0.items()})
        v1, s1 = stage("s1", issue, **entry, a=rec.conic_a, b=rec.conic_b, c=rec.conic_c,
                       dx0=d0["x"][:D_BITS].as_signed(), dy0=d0["y"][:D_BITS].as_signed())
        dx0, dy0, b = s1["dx0"], s1["dy0"], s1["b"]
        flags = {}
        for axis, d in (("x", dx0), ("y", dy0)):
            for k in range(TILE):
                flags[f"{axis}hi{k}"] = (d - (k << frac)) > fixed.DX_LIMIT
                flags[f"{axis}lo{k}"] = (d - (k << frac)) < -fixed.DX_LIMIT
        v2, s2 = stage("s2", v1, **{n: s1[n] for n in entry}, a=s1["a"], b=b, c=s1["c"],
                       dy0=dy0, sqx=dx0 * dx0, sqy=dy0 * dy0, adx=s1["a"] * dx0,
                       cdy=s1["c"] * dy0, bdx=b * dx0, bdy=b * dy0, kbdy=(b >> k_bits) * dy0,
                       f=Cat(C(0, frac), b[:k_bits]), **flags)
        h = s2["bdx"] + (1 << (shift - 1))
        rem = Cat(h[:shift], C(0, 1)).as_signed()
        # m_i <= i (f < 2^20), so it has i's bit length
        m_i = {f"m{k}": (-((rem - const_product(s2["f"], k, m, "kf")) >> shift))[:k.bit_length()]
               for k in range(1, TILE)}
        # The index series by differences: k^2 (2^8 a) - k (2 a d_0) for A (C likewise), k b and
        # k (k_b dy_0) for B and R.
        series = {}
        for t, d in (("a", "adx"), ("c", "cdy")):
            series.update({f"p{t}{k}": p for k, p in enumerate(quadratic_series(
                m, s2[d] << 1, s2[t] << frac, TILE, name=f"p{t}"))})
        series.update({f"kb{k}": p for k, p in enumerate(multiples(m, s2["b"], TILE, "kb"))})
        series.update({f"kr{k}": p for k, p in enumerate(multiples(m, s2["kbdy"], TILE, "kr"))})
        v3, s3 = stage("s3", v2, **{n: s2[n] for n in (*entry, *flags)}, a=s2["a"], b=s2["b"],
                       c=s2["c"], dy0=s2["dy0"], bdx=s2["bdx"], bdy=s2["bdy"],
                       as0=s2["a"] * _rshift_round(s2["sqx"], frac),
                       cs0=s2["c"] * _rshift_round(s2["sqy"], frac),
                       q0dy=(h >> shift).as_signed() * s2["dy0"], **m_i, **series)
        # Per index one sum, its rounding and negation folded into a base shared by the indices:
        # -round(x / 2^s) = ((2^(s-1) - 1) - x) >> s, round(x / 2^s) = (x + 2^(s-1)) >> s.
        base = {t: carry_chain_sum(m, [C(c), -s3[x]], f"base_{t}")
                for t, c, x in (("a", (1 << shift) - 1, "as0"), ("c", (1 << shift) - 1, "cs0"),
                                ("b", (1 << (shift - 1)) - 1, "bdx"), ("r", half, "q0dy"))}
        sums = {}
        for k in range(TILE):
            for t in ("a", "c"):
                sums[f"p{t}{k}"] = carry_chain_sum(m, [base[t], -s3[f"p{t}{k}"]], f"p{t}") >> (shift + 1)
            sums[f"pb{k}"] = carry_chain_sum(m, [base["b"], s3[f"kb{k}"] << frac], "pb") >> shift
            m_dy0 = [Mux(s3[f"m{k}"][n], s3["dy0"] << n, 0) for n in range(k.bit_length())]
            sums[f"pr{k}"] = carry_chain_sum(m, [base["r"], s3[f"kr{k}"], *m_dy0], "pr") >> frac
        edge_r = {t: (half + v) >> frac for t, v in (("hi", -s3["bdy"]), ("lo", s3["bdy"]))}
        v4, s4 = stage("s4", v3, **{n: s3[n] for n in (*entry, *flags)}, a=s3["a"], b=s3["b"],
                       c=s3["c"], **{f"r{t}": v for t, v in edge_r.items()}, **sums)
        terms = {}
        for k in range(TILE):
            xsat, ysat = s4[f"xhi{k}"] | s4[f"xlo{k}"], s4[f"yhi{k}"] | s4[f"ylo{k}"]
            terms[f"a{k}"] = Mux(xsat, -(s4["a"] << 11), s4[f"pa{k}"])
            terms[f"c{k}"] = Mux(ysat, -(s4["c"] << 11), s4[f"pc{k}"])
            terms[f"b{k}"] = Mux(s4[f"xhi{k}"], -s4["b"], Mux(s4[f"xlo{k}"], s4["b"], s4[f"pb{k}"]))
            terms[f"r{k}"] = Mux(s4[f"xhi{k}"], s4["rhi"], Mux(s4[f"xlo{k}"], s4["rlo"], s4[f"pr{k}"]))
        out = Signal(TERMS_LAYOUT)
        for k in range(TILE):
            m.d.comb += [out.a[k].eq(terms[f"a{k}"]), out.b[k].eq(terms[f"b{k}"]),
                         out.c[k].eq(terms[f"c{k}"]), out.r[k].eq(terms[f"r{k}"]),
                         out.hi[k].eq(s4[f"yhi{k}"]), out.lo[k].eq(s4[f"ylo{k}"])]
        e = out.entry
        m.d.comb += [e.opacity.eq(s4["opacity"]), e.weight.eq(s4["weight"]),
                     e.colour.as_value().eq(s4["colour"]), e.has_entry.eq(s4["entry"]),
                     e.last.eq(s4["last"]), e.bg.as_value().eq(s4["bg"]), e.keep.eq(-1)]
        v5, s5 = stage("s5", v4, terms=out, nx=s4["nx"], ny=s4["ny"])
        last = s5["terms"]
        if self.subtile:
            m.submodules.skip = skip = SubtileTest(self.subtile)
            for name in TERM_SHAPES:
                m.d.comb += [getattr(skip, name)[k].eq(last[name][k]) for k in range(TILE)]
            m.d.comb += [skip.opacity.eq(last.entry.opacity), skip.nx.eq(s5["nx"]),
                         skip.ny.eq(s5["ny"]), skip.en.eq(en)]
            v, regs = v5, last
            for n in range(SubtileTest.LATENCY - 1):
                v, carried = stage(f"t{n + 1}", v, terms=regs)
                regs = carried["terms"]
            vlast, carried = stage(f"t{SubtileTest.LATENCY}", v, terms=regs)
            last = Signal(TERMS_LAYOUT)
            m.d.comb += [last.eq(carried["terms"]), last.entry.keep.eq(skip.keep)]
        m.d.comb += last_full.eq(valids[-1])
        offer = Signal(TERMS_LAYOUT, reset_less=True)
        m.d.comb += self.terms.payload.eq(offer)
        with m.If(transfer):
            m.d.sync += [offer.eq(last), self.terms.valid.eq(1)]
        assert len(valids) == self.LATENCY
        m.d.comb += self.busy.eq(~fsm.ongoing("TILE") | Cat(*valids).any() | self.terms.valid)
        m.d.comb += [self.tile_ends.eq(sum((v & last for v, _, last in beats),
                                                 fsm.ongoing("RECORD") | fsm.ongoing("EMPTY"))),
                     self.stray.eq(Cat(*(v & ~e & ~last for v, e, last in beats)).any()
                                   | Mux(fsm.ongoing("RECORD"), (left == 0) & ~holding, holding)
                                   | ~(fsm.ongoing("TILE") | fsm.ongoing("EMPTY") | fsm.ongoing("RECORD"))),
                     self.unissued.eq(Mux(fsm.ongoing("RECORD"), left + holding, 0)),
                     self.partial.eq(Cat(*(v & ~last for v, _, last in beats)).any())]
        # a record is issued the cycle after it is taken, then crosses the stages one per cycle
        offer_in = Mux(fsm.ongoing("EMPTY"), self.LATENCY + 1,
                       _cycles_to_leave([*valids, self.terms.valid]))
        m.d.comb += self.offer_in.eq(Mux(fsm.ongoing("RECORD"), self.LATENCY + 1 + left, offer_in))
        return m


class PairEvaluator(wiring.Component):
    """One pixel lane: from a pair's axis terms to its three summands.

    In: A_i, B_i, R_i, C_j, the pixel's row j in the tile and that row's saturation flags, and
    the Gaussian's opacity, weight and colour, with ``valid``. Out, ``LATENCY`` cycles later:
    vw = v w (Q.16), vw * colour (Q.28 per channel) and -log2(1 - v) (Q.12, 0 where v = 0),
    where power = sat(A + C + round(B dy / 2^8), -16, 0) with the cross term from :func:`_cross`
    (no product),
    v = min(0.999, opacity exp(power)), 0 below 1/255, and w clamped to 1.0. One pair per cycle,
    no stalls.
    """

    LATENCY = hardware.PAIR_LATENCY
    #: multipliers a lane lends to :class:`SorterNetwork` (``shared``)
    SHARED = 5

    def __init__(self, shared: bool = False):
        self.shared = shared
        members = {
            "valid": In(1), "a": In(signed(QUAD_BITS)), "b": In(signed(B_BITS)),
            "r": In(signed(R_BITS)), "c": In(signed(QUAD_BITS)), "j": In(4), "hi": In(1),
            "lo": In(1), "opacity": In(16),
            "weight": In(17), "colour": In(data.ArrayLayout(14, 3)),
            "out_valid": Out(1), "vw": Out(17), "cw": Out(data.ArrayLayout(31, 3)),
            "nlog": Out(17)}
        if shared:
            # With ``mlp`` high the lane's five small multipliers (opacity e, v w, vw colour x 3,
            # signed 18 x 18 bits: one DSP block each) multiply mlp_x by mlp_y instead,
            # combinationally; the lane must have no pair in flight.
            members.update({"mlp": In(1), "mlp_x": In(data.ArrayLayout(signed(MUL_BITS), 5)),
                            "mlp_y": In(data.ArrayLayout(signed(MUL_BITS), 5)),
                            "mlp_p": Out(data.ArrayLayout(signed(2 * MUL_BITS), 5))})
        super().__init__(members)

    def _product(self, m, k, x, y):
        """x y (unsigned, at most 17 bits each), on multiplier ``k`` when it is shared."""
        if not self.shared:
            return x * y
        xs, ys = Signal(signed(MUL_BITS), name=f"mul{k}_x"), Signal(signed(MUL_BITS), name=f"mul{k}_y")
        p = Signal(signed(2 * MUL_BITS), name=f"mul{k}_p")
        m.d.comb += [xs.eq(Mux(self.mlp, self.mlp_x[k], x)), ys.eq(Mux(self.mlp, self.mlp_y[k], y)),
                     p.eq(xs * ys), self.mlp_p[k].eq(p)]
        return p[:len(x) + len(y)]

    def elaborate(self, platform):
        m = Module()
        m.submodules.exp = exp = Exp2Table(17)
        m.submodules.log = log = NegLog2Table()
        stages = []

        def stage(**fields):
            """Register ``fields`` (and the Gaussian's opacity, weight, colour) one cycle on."""
            prev = stages[-1] if stages else {"valid": self.valid, "opacity": self.opacity,
                                              "weight": self.weight, "colour": self.colour}
            regs = {}
            for name, value in {**{k: prev[k] for k in ("valid", "opacity", "weight", "colour")},
                                **fields}.items():
                reg = Signal(value.shape(), name=f"s{len(stages) + 1}_{name}",   # layouts kept
                             reset_less=name != "valid")
                m.d.sync += reg.eq(value)
                regs[name] = reg
            stages.append(regs)
            return regs

        s1 = stage(cross=_cross(m, self.b, self.r, self.j, self.hi, self.lo), ac=self.a + self.c)
        power = _clamp(s1["ac"] + s1["cross"], fixed.POWER_MIN, 0)
        s2 = stage(neg_power=(-power)[:17])
        s3 = stage(y=_exp_argument(s2["neg_power"]))
        m.d.comb += [exp.y.eq(s3["y"]), exp.en.eq(1)]
        stage()                                   # the exp table's read
        s5 = stage(e=exp.result)
        s6 = stage(v=_visibility(s5["opacity"], s5["e"],
                                 self._product(m, 0, s5["opacity"], s5["e"])))
        m.d.comb += log.v.eq(s6["v"])
        weight = Signal(17)
        m.d.comb += weight.eq(Mux(s6["weight"] > fixed.ONE16, fixed.ONE16, s6["weight"]))
        s7 = stage(vw=_rshift_round(self._product(m, 1, s6["v"], weight), 16)[:17], v=s6["v"])
        s8 = stage(**{f"cw{c}": self._product(m, 2 + c, s7["vw"], s7["colour"][c]) for c in range(3)},
                   vw=s7["vw"], nlog=Mux(s7["v"] == 0, 0, log.result))
        assert len(stages) == self.LATENCY
        m.d.comb += [self.out_valid.eq(s8["valid"]), self.vw.eq(s8["vw"]), self.nlog.eq(s8["nlog"])]
        m.d.comb += [self.cw[c].eq(s8[f"cw{c}"]) for c in range(3)]
        return m


class PixelNormaliser(wiring.Component):
    """A pixel from its three sums: colour = round(s_cw / s_w) per channel (0 where s_w = 0) by a
    pipelined restoring divider of 14 quotient bits, then for ``coverage`` the blend
    colour (1 - T) + T background with T = 2^(-s_log), rounded and saturated
    (:func:`~accelsmith.models.gaussian.fixed.blend_fixed`).

    ``sums`` is accepted whenever ``pixels`` can move on; ``LATENCY`` stages in between, one pixel
    per cycle, backpressure on ``pixels`` stalls every stage. For proofs, not ports:
    ``occupancy`` counts the pixels inside, the one on offer included; ``drain`` is the cycles
    until the last of them is offered (0 while it is, or with none inside) if ``pixels`` accepts
    in every cycle."""

    LATENCY = hardware.NORMALISER_LATENCY

    def __init__(self, blend: str):
        self.blend = blend
        super().__init__({"sums": In(stream.Signature(data.StructLayout({
                              "sums": SUMS_LAYOUT, "bg": data.ArrayLayout(16, 3)}))),
                          "pixels": Out(stream.Signature(PIXEL_LAYOUT))})
        self.occupancy = Signal(range(self.LATENCY + 1))
        self.drain = Signal(range(self.LATENCY))

    def elaborate(self, platform):
        m = Module()
        assert self.LATENCY == DIVIDER_BITS + 2    # first stage, one per quotient bit, output
        m.submodules.exp = exp = Exp2Table(SUM_BITS["s_log"])
        adv = Signal()
        m.d.comb += [adv.eq(~self.pixels.valid | self.pixels.ready), self.sums.ready.eq(adv)]
        num_bits = SUM_BITS["s_cw"] + 2
        lay = data.StructLayout({"zero": 1, "t": 17, "bg": data.ArrayLayout(16, 3),
                                 "den": SUM_BITS["s_w"] + 1,
                                 "rem": data.ArrayLayout(num_bits, 3),
                                 "q": data.ArrayLayout(DIVIDER_BITS, 3)})
        first = Signal(lay, reset_less=True)
        first_valid = Signal()
        s = self.sums.payload.sums
        m.d.comb += [exp.y.eq(s.s_log), exp.en.eq(adv)]      # T is read while ``first`` holds
        with m.If(adv):
            m.d.sync += [first_valid.eq(self.sums.valid), first.zero.eq(s.s_w == 0),
                         first.bg.eq(self.sums.payload.bg),
                         first.den.eq(s.s_w << 1), first.q.eq(0)]
            m.d.sync += [first.rem[c].eq((s.s_cw[c] << 1) + s.s_w) for c in range(3)]
        prev, prev_valid, prev_t = first, first_valid, exp.result
        valids = [first_valid, self.pixels.valid]
        for k in reversed(range(DIVIDER_BITS)):
            nxt = Signal(lay, name=f"div{k}", reset_less=True)
            nxt_valid = Signal(name=f"div{k}_valid")
            valids.append(nxt_valid)
            with m.If(adv):
                m.d.sync += [nxt_valid.eq(prev_valid), nxt.zero.eq(prev.zero), nxt.t.eq(prev_t),
                             nxt.bg.eq(prev.bg), nxt.den.eq(prev.den)]
                for c in range(3):
                    # rem < den 2^(k+1) here (the quotient has 14 bits), so the trial subtraction
                    # needs only the remainder's bits k .. k + 33
                    rem_hi = prev.rem[c][k:k + len(prev.den) + 1]
                    trial = rem_hi - prev.den
                    fits = ~trial[-1]
                    m.d.sync += [nxt.rem[c].eq(Cat(prev.rem[c][:k], Mux(fits, trial[:len(rem_hi)],
                                                                         rem_hi))),
                                 nxt.q[c].eq(prev.q[c] | (fits << k))]
            prev, prev_valid, prev_t = nxt, nxt_valid, nxt.t
        out = self.pixels.payload
        with m.If(adv):
            m.d.sync += self.pixels.valid.eq(prev_valid)
            for c, name in enumerate(("r", "g", "b")):
                colour = Mux(prev.zero, 0, prev.q[c])
                if self.blend == "coverage":
                    mixed = _rshift_round(colour * (fixed.ONE16 - prev.t) + prev.t * prev.bg[c], 16)
                    value = Mux(mixed > fixed.ONE16 - 1, fixed.ONE16 - 1, mixed)
                else:
                    value = colour
                m.d.sync += out[name].eq(value)
        assert len(valids) == self.LATENCY
        m.d.comb += [self.occupancy.eq(sum(valids)),
                     self.drain.eq(_cycles_to_leave([valids[0], *valids[2:], valids[1]]))]
        return m


class SorterNetwork(wiring.Component):
    """The sorter network of :func:`~accelsmith.models.gaussian.fixed.mlp_fixed` (5-8-4-1, int8
    weights) on multipliers it borrows: product slot ``s`` is ``mul_x[s] * mul_y[s]``, returned
    combinationally on ``mul_p[s]`` (the rasteriser wires lane ``s // 5``'s shared multiplier
    ``s % 5`` there). Slots: layer l's (input i, neuron j) at ``offset_l + j * fan_in + i`` (76),
    then the sigmoid's interpolation.

    ``features`` (5 x int16, Q.8) in, ``weights`` (Q.16) out, ``params`` the network
    (``NET_PARAMS`` of :func:`~accelsmith.models.gaussian.records.net_params`), held during a job.
    Per layer: exact sums of products plus bias; hidden layers LeakyReLU (an arithmetic shift by
    3 for negatives), a rounding shift by the layer's scale, saturation to int16; the output
    saturated to [-8, 8) in Q.8 and the 257-entry sigmoid table interpolated.

    Timing: one Gaussian per cycle; its weight is offered ``LATENCY`` cycles after its feature
    beat is accepted; backpressure on ``weights`` stalls every stage. ``busy`` while any
    Gaussian is in flight; for proofs, not ports: ``occupancy`` counts them, ``drain`` is the
    cycles until the last of them is offered (0 while it is, or with none inside) if ``weights``
    accepts in every cycle.
    """

    LATENCY = hardware.NETWORK_LATENCY

    def __init__(self):
        super().__init__({"features": In(stream.Signature(FEATURES_LAYOUT)),
                          "weights": Out(stream.Signature(17)),
                          "params": In(NET_PARAMS_LAYOUT),
                          "mul_x": Out(data.ArrayLayout(signed(MUL_BITS), NET_SLOTS)),
                          "mul_y": Out(data.ArrayLayout(signed(MUL_BITS), NET_SLOTS)),
                          "mul_p": In(data.ArrayLayout(signed(2 * MUL_BITS), NET_SLOTS)),
                          "busy": Out(1)})
        self.occupancy = Signal(range(self.LATENCY + 1))
        self.drain = Signal(range(self.LATENCY))

    def elaborate(self, platform):
        m = Module()
        prm = self.params
        adv = Signal()
        m.d.comb += [adv.eq(~self.weights.valid | self.weights.ready), self.features.ready.eq(adv)]
        valids = []

        def register(value, name, shape=None):
            reg = Signal(shape or value.shape(), name=name, reset_less=True)
            with m.If(adv):
                m.d.sync += reg.eq(value)
            return reg

        def advance(valid, name):
            reg = Signal(name=f"{name}_valid")
            with m.If(adv):
                m.d.sync += reg.eq(valid)
            valids.append(reg)
            return reg

        h = [register(self.features.payload[i], f"x{i}") for i in range(NET_SIZES[0])]
        valid = advance(self.features.valid, "x")
        slot, bias = 0, 0
        for layer, (fan_in, fan_out) in enumerate(zip(NET_SIZES, NET_SIZES[1:])):
            acc = []
            for j in range(fan_out):
                terms = []
                for i in range(fan_in):
                    m.d.comb += [self.mul_x[slot].eq(h[i]), self.mul_y[slot].eq(prm.w[slot])]
                    terms.append(self.mul_p[slot])
                    slot += 1
                acc.append(register(carry_chain_sum(m, terms + [prm.b[bias]], f"sum{layer}_{j}"),
                                    f"acc{layer}_{j}", signed(34)))
                bias += 1
            valid = advance(valid, f"acc{layer}")
            frac = prm.frac[layer]
            if layer < NET_LAYERS - 1:
                leaky = [Mux(a >= 0, a, a >> LEAKY_SHIFT) for a in acc]
                h = [register(_clamp(_rshift_round_by(a, frac), -(1 << 15), (1 << 15) - 1),
                              f"h{layer}_{j}", signed(16)) for j, a in enumerate(leaky)]
                valid = advance(valid, f"h{layer}")
        limit = 8 << fixed.ACT_FRAC
        z = _clamp(_rshift_round_by(acc[0], prm.frac[NET_LAYERS - 1]), -limit, limit - 1)
        pos_next = Signal(12)
        m.d.comb += pos_next.eq(z + limit)
        pos = register(pos_next, "pos")
        valid = advance(valid, "pos")

        # The sigmoid table is read as ``pos`` is registered (a block RAM's two read ports).
        m.submodules.sigmoid = table = memory.Memory(
            shape=16, depth=len(fixed.SIG_TABLE), init=[int(x) for x in fixed.SIG_TABLE])
        lo_port, hi_port = table.read_port(), table.read_port()
        m.d.comb += [lo_port.addr.eq(pos_next[4:]), hi_port.addr.eq(pos_next[4:] + 1),
                     lo_port.en.eq(adv), hi_port.en.eq(adv),
                     self.mul_x[slot].eq(hi_port.data - lo_port.data), self.mul_y[slot].eq(pos[:4])]
        weight = lo_port.data + _rshift_round(self.mul_p[slot], 4)
        with m.If(adv):
            m.d.sync += [self.weights.payload.eq(weight), self.weights.valid.eq(valid)]
        assert len(valids) + 1 == self.LATENCY
        m.d.comb += [self.busy.eq(Cat(*valids, self.weights.valid).any()),
                     self.occupancy.eq(sum(valids, self.weights.valid)),
                     self.drain.eq(_cycles_to_leave([*valids, self.weights.valid]))]
        return m


class GaussianBuffer(wiring.Component):
    """The on-chip Gaussian buffer: ``depth`` record slots between the record stream and the
    set-up. An ``entries`` beat with ``fetch`` set carries a record, which is stored in ``slot``
    and passed on; without, the record resident in ``slot`` is passed on (the beat's record bits
    are ignored). The host chooses the slots (least recently used replaced:
    :func:`~accelsmith.models.gaussian.schedule.buffer_slots`), so a Gaussian shared by
    neighbouring tiles crosses the record stream's source once while it stays resident.
    ``fetches`` counts the fetch beats taken.

    Timing: one beat per cycle, one cycle from an entry accepted to its record offered (the
    slot's memory read, or a register); backpressure on ``records`` holds both."""

    def __init__(self, depth: int):
        self.depth = depth
        super().__init__({"entries": In(stream.Signature(ENTRY_LAYOUT_IN)),
                          "records": Out(stream.Signature(RECORD_LAYOUT)),
                          "fetches": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.slots = mem = memory.Memory(shape=RECORD_LAYOUT, depth=self.depth, init=[])
        wr, rd = mem.write_port(), mem.read_port(transparent_for=())
        entry = self.entries.payload
        record = Signal(RECORD_LAYOUT)
        m.d.comb += record.as_value().eq(entry.as_value()[-RECORD_LAYOUT.size:])
        adv = Signal()
        m.d.comb += [adv.eq(~self.records.valid | self.records.ready), self.entries.ready.eq(adv)]
        take = self.entries.valid & adv
        slot = entry.slot[:max(1, (self.depth - 1).bit_length())]
        fetched = Signal(RECORD_LAYOUT, reset_less=True)     # the record of a fetch beat
        resident = Signal()                                  # the offer is the slot's read
        m.d.comb += [wr.addr.eq(slot), wr.data.eq(record), wr.en.eq(take & entry.fetch),
                     rd.addr.eq(slot), rd.en.eq(adv)]
        with m.If(adv):
            m.d.sync += [self.records.valid.eq(self.entries.valid), fetched.eq(record),
                         resident.eq(~entry.fetch)]
        with m.If(take & entry.fetch):
            m.d.sync += self.fetches.eq(self.fetches + 1)
        m.d.comb += self.records.payload.eq(Mux(resident, rd.data, fetched))
        return m


class TileRasteriser(wiring.Component):
    """The rasteriser of one 16x16 tile at a time, bit-exact with
    :func:`~accelsmith.models.gaussian.fixed.tile_sums_fixed` and
    :func:`~accelsmith.models.gaussian.fixed.blend_fixed`.

    Streams: ``tiles`` (a tile beat), ``records`` (the tile's ``count`` Gaussians, any order),
    ``pixels`` (its 256 pixels in raster order within the tile, out-of-image pixels included).
    ``cycles`` counts the cycles in which any tile (or the network) is in progress. With
    ``buffer`` slots, ``records`` carries entry beats through a :class:`GaussianBuffer`
    (``fetches`` counts its fetches); with ``network``, ``mode`` selects the
    :class:`SorterNetwork` on ``features`` / ``weights`` instead of the tiles.

    Timing: ``lanes`` pixel-Gaussian pairs per cycle, so an entry takes ``256 / lanes`` cycles
    (with skipping, its kept sub-tiles' blocks). The sums are in two banks: after a tile's last
    entry the next tile starts (a take cycle later) in the other bank, while the finished tile's
    256 sums are read out once its last writes have landed (``PairEvaluator.LATENCY + 1``
    cycles), one per cycle (backpressure on ``pixels`` slows the read-out); a tile waits for its
    bank while the tile two before it is still being read out. The pixels leave
    ``PixelNormaliser.LATENCY + 1`` cycles after their read. The set-up of the next entries
    overlaps all of this; :meth:`accelsmith.models.gaussian.hardware.RasteriserTiming.run_cycles`
    is the exact count.

    For proofs (:func:`rasteriser_properties`), not ports: ``pixels_owed`` counts the pixels of
    the tiles taken that have not yet been accepted on ``pixels``, ``weights_owed`` the
    Gaussians in the network; ``stray`` is :class:`AxisSetup`'s or high while the evaluator's
    state register holds no state or its sub-tile index lies outside the tile (never);
    ``unissued`` is the set-up's; ``partial`` is high while the set-up or the evaluator holds an
    entry that is not its tile's last (never with tiles of at most one record). ``tile_left``:
    with one tile of at most one record inside and the streams flowing, the cycles until its
    last pixel is offered (0 while it is), by where its work is furthest back (the set-up, an
    entry's blocks, the wait for its last writes, the read-out, the normaliser), each counted
    as if nothing were skipped, so one cycle takes at least one off.
    """

    def __init__(self, lanes: int = 16, blend: str = "coverage", subtile: int = 0,
                 network: bool = False, buffer: int = 0):
        side = int(round(lanes ** 0.5))
        if side * side != lanes or TILE % side:
            raise ValueError(f"lanes = {lanes}: must be 16, 64 or 256 (a square block dividing "
                             "the 16x16 tile)")
        if subtile and (subtile < side or TILE % subtile):
            raise ValueError(f"subtile = {subtile}: must be 0 (no skipping) or 4, 8, 16 and at "
                             f"least the lanes' block side {side}")
        self.lanes, self.side, self.blend, self.subtile = lanes, side, blend, subtile
        self.network, self.buffer = network, buffer
        self.blocks_per_row = TILE // side
        self.cycles_per_entry = self.blocks_per_row ** 2
        members = {"tiles": In(stream.Signature(TILE_LAYOUT)),
                   "records": In(stream.Signature(ENTRY_LAYOUT_IN if buffer else RECORD_LAYOUT)),
                   "pixels": Out(stream.Signature(PIXEL_LAYOUT)),
                   "cycles": Out(32)}
        if buffer:
            members["fetches"] = Out(32)
        if network:
            members.update({"mode": In(1), "net_params": In(NET_PARAMS_LAYOUT),
                            "features": In(stream.Signature(FEATURES_LAYOUT)),
                            "weights": Out(stream.Signature(17))})
        super().__init__(members)
        # tiles: in the set-up (its stages, the offered beat, the one being taken), issued,
        # held, pending; then a read-out and the normaliser's stages
        most = TILE * TILE * (hardware.setup_latency(subtile) + 6) + PixelNormaliser.LATENCY
        self.pixels_owed = Signal(range(most + 1))
        self.weights_owed = Signal(range(SorterNetwork.LATENCY + 1))
        self.stray = Signal()
        self.unissued = Signal(17)
        self.partial = Signal()
        self.tile_left = Signal(range(most + (1 << 16)))
        self.weights_drain = Signal(range(SorterNetwork.LATENCY))

    def _phase_cycles(self):
        """Cycles to a tile's last pixel offered from the first cycle of each phase of a tile of
        one record, nothing stalled: the read-out, the wait for the last writes, the entry's
        blocks."""
        read_0 = TILE * TILE - 1 + PixelNormaliser.LATENCY
        pend_0 = PairEvaluator.LATENCY + 1 + read_0
        return read_0, pend_0, self.cycles_per_entry + pend_0

    def tile_span(self, records: int) -> int:
        """``tile_left`` in the cycle after a tile of ``records`` (at most one) is taken: its
        records are taken, issued, cross the set-up and are offered, then its phases."""
        return hardware.setup_latency(self.subtile) + 1 + records + self._phase_cycles()[2] + 1

    def elaborate(self, platform):
        m = Module()
        q, nb, E = self.side, self.blocks_per_row, self.cycles_per_entry
        m.submodules.setup = setup = AxisSetup(self.subtile)
        size = self.subtile or TILE
        n_sub_side, bps_side = TILE // size, size // q
        n_sub, bps = n_sub_side ** 2, bps_side ** 2
        m.submodules.norm = norm = PixelNormaliser(self.blend)
        wiring.connect(m, norm.pixels, wiring.flipped(self.pixels))
        # In network mode (``mode`` high, changed only while idle) tiles and records wait.
        raster = ~self.mode if self.network else C(1)
        records = setup.records
        if self.buffer:
            m.submodules.buffer = buf = GaussianBuffer(self.buffer)
            wiring.connect(m, buf.records, setup.records)
            m.d.comb += self.fetches.eq(buf.fetches)
            records = buf.entries
        for outer, inner in ((self.tiles, setup.tiles), (self.records, records)):
            m.d.comb += [inner.payload.eq(outer.payload), inner.valid.eq(outer.valid & raster),
                         outer.ready.eq(inner.ready & raster)]

        cur = Signal(TERMS_LAYOUT, reset_less=True)
        # The block being issued: sub-tile ``st`` (kept ones only, row-major), block ``bs``
        # within it (row-major); ``empty``: every sub-tile of the entry is skipped.
        st = Signal(range(max(n_sub, 2)))
        bs = Signal(range(max(bps, 2)))
        empty = Signal()

        def kept_after(mask, after):
            """(found, index) of the first set bit of ``mask`` above ``after``."""
            found, index = Signal(name="kept_found"), Signal(range(max(n_sub, 2)), name="kept_index")
            for idx in reversed(range(n_sub)):
                if idx == 0 and not after.shape().signed:
                    continue          # no unsigned index lies below sub-tile 0
                with m.If(mask[idx] & (after < idx)):
                    m.d.comb += [found.eq(1), index.eq(idx)]
            return found, index

        first_found, first_index = kept_after(setup.terms.payload.entry.keep[:n_sub], C(-1, signed(6)))
        next_found, next_index = kept_after(cur.entry.keep[:n_sub], st)
        issue = Signal()
        take = Signal()
        m.d.comb += setup.terms.ready.eq(take)
        with m.If(take):
            m.d.sync += cur.eq(setup.terms.payload)

        # Two banks of sums: a tile accumulates into ``wbank`` while the tile before it is read
        # out of the other. A finished tile waits in ``pend`` until its last writes have landed
        # (PairEvaluator.LATENCY + 1 cycles after its last issue) and the read-out is free; the
        # tile after the next one waits until its bank has been read out.
        wbank = Signal()
        pend_valid, pend_bank = Signal(), Signal()
        pend_wait = Signal(range(PairEvaluator.LATENCY + 1))
        pend_bg = Signal(data.ArrayLayout(16, 3), reset_less=True)
        d_active, d_bank = Signal(), Signal()
        pixel = Signal(8)
        bg = Signal(data.ArrayLayout(16, 3), reset_less=True)
        hold_bg = Signal(data.ArrayLayout(16, 3), reset_less=True)
        wfree = ~((d_active & (d_bank == wbank)) | (pend_valid & (pend_bank == wbank)))

        def finish_tile(tile_bg):
            """The tile's last entry is issued: into ``pend``, the other bank takes the next."""
            m.d.sync += [pend_valid.eq(1), pend_bank.eq(wbank), pend_wait.eq(0),
                         pend_bg.eq(tile_bg), wbank.eq(~wbank)]

        def start_entry():
            with m.If(setup.terms.payload.entry.has_entry):
                m.d.sync += [st.eq(first_index), bs.eq(0), empty.eq(~first_found)]
                m.next = "RUN"
            with m.Elif(pend_valid):
                m.d.sync += hold_bg.eq(setup.terms.payload.entry.bg)
                m.next = "HOLD"
            with m.Else():
                finish_tile(setup.terms.payload.entry.bg)
                m.next = "IDLE"

        with m.FSM(name="eval") as eval_fsm:
            with m.State("IDLE"):
                m.d.comb += take.eq(setup.terms.valid)
                with m.If(setup.terms.valid):
                    start_entry()
            with m.State("RUN"):
                done = empty | ((bs == bps - 1) & ~next_found)
                with m.If(wfree):           # else the bank is still being read out: wait
                    m.d.comb += issue.eq(~empty)
                    with m.If(bs == bps - 1):
                        m.d.sync += [st.eq(next_index), bs.eq(0)]
                    with m.Else():
                        m.d.sync += bs.eq(bs + 1)
                    with m.If(done & cur.entry.last):
                        # The next tile's first entry is taken from IDLE: a tile ends at most
                        # once per cycle (an empty next tile ends as soon as it is taken).
                        with m.If(pend_valid):
                            m.d.sync += hold_bg.eq(cur.entry.bg)
                            m.next = "HOLD"
                        with m.Else():
                            finish_tile(cur.entry.bg)
                            m.next = "IDLE"
                    with m.Elif(done):
                        m.d.comb += take.eq(setup.terms.valid)
                        with m.If(setup.terms.valid):
                            start_entry()
                        with m.Else():
                            m.next = "IDLE"
            with m.State("HOLD"):
                with m.If(~pend_valid):
                    finish_tile(hold_bg)
                    m.next = "IDLE"

        # The read-out: a pending tile starts when its writes have landed and the last read-out
        # is over; 256 sums, one per cycle as the normaliser takes them.
        with m.If(pend_valid & (pend_wait != PairEvaluator.LATENCY)):
            m.d.sync += pend_wait.eq(pend_wait + 1)
        with m.If(pend_valid & (pend_wait == PairEvaluator.LATENCY) & ~d_active):
            m.d.sync += [pend_valid.eq(0), d_active.eq(1), d_bank.eq(pend_bank), pixel.eq(0),
                         bg.eq(pend_bg)]
        m.d.comb += norm.sums.valid.eq(d_active)
        with m.If(d_active & norm.sums.ready):
            m.d.sync += pixel.eq(pixel + 1)
            with m.If(pixel == TILE * TILE - 1):
                m.d.sync += d_active.eq(0)

        # Issue register: the block's position, shared by every lane.
        i_valid = Signal()
        i_slot = Signal(range(max(E, 2)), reset_less=True)
        br = Signal(range(max(nb, 2)))
        bc = Signal(range(max(nb, 2)))
        m.d.comb += [br.eq((st // n_sub_side) * bps_side + bs // bps_side),
                     bc.eq((st % n_sub_side) * bps_side + bs % bps_side)]
        i_bank = Signal()
        i_br = Signal.like(br, reset_less=True)
        m.d.sync += [i_valid.eq(issue), i_slot.eq(br * nb + bc), i_bank.eq(wbank), i_br.eq(br)]
        lanes = []
        shared = -(-NET_SLOTS // PairEvaluator.SHARED) if self.network else 0
        assert shared <= self.lanes
        for r in range(q):
            for c in range(q):
                lane = PairEvaluator(shared=len(lanes) < shared)
                m.submodules[f"lane_{r}_{c}"] = lane
                regs = {}
                for name, terms, index in (("a", cur.a, lambda b: b * q + c),
                                           ("b", cur.b, lambda b: b * q + c),
                                           ("r", cur.r, lambda b: b * q + c),
                                           ("c", cur.c, lambda b: b * q + r),
                                           ("hi", cur.hi, lambda b: b * q + r),
                                           ("lo", cur.lo, lambda b: b * q + r)):
                    sel = bc if name in ("a", "b", "r") else br
                    reg = Signal(terms.shape().elem_shape, name=f"l{r}_{c}_{name}", reset_less=True)
                    with m.Switch(sel):
                        for b in range(nb):
                            with m.Case(b):
                                m.d.sync += reg.eq(terms[index(b)])
                    regs[name] = reg
                op, w, col = (Signal(16, name=f"l{r}_{c}_op", reset_less=True),
                              Signal(17, name=f"l{r}_{c}_w", reset_less=True),
                              Signal(data.ArrayLayout(14, 3), name=f"l{r}_{c}_col", reset_less=True))
                m.d.sync += [op.eq(cur.entry.opacity), w.eq(cur.entry.weight),
                             col.eq(cur.entry.colour)]
                m.d.comb += [lane.valid.eq(i_valid), lane.a.eq(regs["a"]), lane.b.eq(regs["b"]),
                             lane.r.eq(regs["r"]), lane.c.eq(regs["c"]), lane.hi.eq(regs["hi"]),
                             lane.lo.eq(regs["lo"]),
                             lane.j.eq(Cat(C(r, (q - 1).bit_length()), i_br)[:4]),
                             lane.opacity.eq(op),
                             lane.weight.eq(w), lane.colour.eq(col)]
                lanes.append(lane)

        busy_network = C(0)
        if self.network:
            m.submodules.network = net = SorterNetwork()
            wiring.connect(m, net.weights, wiring.flipped(self.weights))
            m.d.comb += [net.params.eq(self.net_params), net.features.payload.eq(self.features.payload),
                         net.features.valid.eq(self.features.valid & self.mode),
                         self.features.ready.eq(net.features.ready & self.mode)]
            for n, lane in enumerate(lanes[:shared]):
                m.d.comb += lane.mlp.eq(self.mode)
                for k in range(PairEvaluator.SHARED):
                    s_ = n * PairEvaluator.SHARED + k
                    if s_ < NET_SLOTS:
                        m.d.comb += [lane.mlp_x[k].eq(net.mul_x[s_]), lane.mlp_y[k].eq(net.mul_y[s_]),
                                     net.mul_p[s_].eq(lane.mlp_p[k])]
            busy_network = net.busy
            m.d.comb += [self.weights_owed.eq(net.occupancy), self.weights_drain.eq(net.drain)]

        # The slot travels beside the lanes to the accumulate stage.
        slot, slot_bank = i_slot, i_bank
        for n in range(PairEvaluator.LATENCY):
            nxt = Signal.like(i_slot, name=f"slot{n + 1}", reset_less=True)
            nxt_bank = Signal(name=f"slot{n + 1}_bank", reset_less=True)
            m.d.sync += [nxt.eq(slot), nxt_bank.eq(slot_bank)]
            slot, slot_bank = nxt, nxt_bank

        # Accumulators: two memories (banks) per lane; the read-out reads pixel (j, i) from lane
        # (j % q, i % q) at slot (j // q) * nb + i // q of its bank. Nothing is cleared as it is
        # read: ``fresh`` holds a bit per slot and bank (one set for all lanes, which write in
        # lockstep), set as the bank's read-out ends and cleared by the slot's first write, and a
        # fresh slot reads as zero. A clearing write port would cost a gate per stored bit and lane.
        j, i = pixel[4:8], pixel[0:4]
        drain_lane = (j % q) * q + (i % q) if q < TILE else pixel
        drain_slot = (j // q) * nb + (i // q) if q < TILE else C(0)
        draining = Signal()
        m.d.comb += draining.eq(norm.sums.valid & norm.sums.ready)
        depth = max(E, 2)
        fresh = [Signal(depth, init=(1 << depth) - 1, name=f"fresh{b}") for b in range(2)]
        for b in range(2):
            with m.If(draining & (pixel == TILE * TILE - 1) & (d_bank == b)):
                m.d.sync += fresh[b].eq((1 << depth) - 1)
            with m.If(lanes[0].out_valid & (slot_bank == b)):
                m.d.sync += fresh[b].bit_select(slot, 1).eq(0)
        slot_fresh = Mux(slot_bank, fresh[1], fresh[0]).bit_select(slot, 1)
        drain_fresh = Mux(d_bank, fresh[1], fresh[0]).bit_select(drain_slot, 1)
        read_data = []
        for n, lane in enumerate(lanes):
            add = Signal(SUMS_LAYOUT, name=f"add{n}")
            banks = []
            for b in range(2):
                mem = memory.Memory(shape=SUMS_LAYOUT, depth=depth, init=[])
                m.submodules[f"acc{n}_{b}"] = mem
                rd = mem.read_port(domain="comb")
                wr = mem.write_port()
                reading = d_active & (d_bank == b)
                m.d.comb += [rd.addr.eq(Mux(reading, drain_slot, slot)), wr.addr.eq(rd.addr),
                             wr.en.eq(lane.out_valid & (slot_bank == b)), wr.data.eq(add)]
                banks.append(rd.data)
            acc = Signal(SUMS_LAYOUT, name=f"acc{n}")
            m.d.comb += [acc.eq(Mux(slot_fresh, 0, Mux(slot_bank, banks[1], banks[0]))),
                         add.s_w.eq(acc.s_w + lane.vw), add.s_log.eq(acc.s_log + lane.nlog),
                         *[add.s_cw[c].eq(acc.s_cw[c] + lane.cw[c]) for c in range(3)]]
            read_data.append(Mux(d_bank, banks[1], banks[0]))
        drained_sums = Signal(SUMS_LAYOUT)
        with m.Switch(drain_lane):
            for n, rd in enumerate(read_data):
                with m.Case(n):
                    m.d.comb += drained_sums.eq(rd)
        m.d.comb += norm.sums.payload.sums.eq(Mux(drain_fresh, 0, drained_sums))
        m.d.comb += norm.sums.payload.bg.eq(bg)

        tiles = setup.tile_ends + (eval_fsm.ongoing("RUN") & cur.entry.last) + eval_fsm.ongoing("HOLD") \
            + pend_valid
        m.d.comb += [self.pixels_owed.eq(tiles * (TILE * TILE) + Mux(d_active, TILE * TILE - pixel, 0)
                                         + norm.occupancy),
                     self.stray.eq(setup.stray | ~(eval_fsm.ongoing("IDLE") | eval_fsm.ongoing("RUN")
                                                   | eval_fsm.ongoing("HOLD")) | (st >= n_sub)),
                     self.unissued.eq(setup.unissued),
                     self.partial.eq(setup.partial | (eval_fsm.ongoing("RUN") & ~cur.entry.last))]
        read_0, pend_0, run_0 = self._phase_cycles()
        m.d.comb += self.tile_left.eq(
            Mux(setup.busy, setup.offer_in + run_0 + 1,
                Mux(eval_fsm.ongoing("RUN"), run_0 - (st * bps + bs),
                    Mux(eval_fsm.ongoing("HOLD"), pend_0 + 1,
                        Mux(pend_valid, pend_0 - pend_wait,
                            Mux(d_active, read_0 - pixel, norm.drain))))))
        # Pixels read out but not yet accepted on ``pixels`` (at most the normaliser's depth).
        in_flight = Signal(range(PixelNormaliser.LATENCY + 2))
        out = self.pixels.valid & self.pixels.ready
        m.d.sync += in_flight.eq(in_flight + draining - out)
        m.d.sync += self.cycles.eq(self.cycles + (setup.busy | ~eval_fsm.ongoing("IDLE")
                                                  | pend_valid | d_active | (in_flight != 0)
                                                  | busy_network))
        return m


class RasteriserEngine(wiring.Component):
    """A :class:`TileRasteriser` (``core``) behind the engine interface every family's SoC
    drives: operand streams ``a`` and ``b``, result stream ``c``, and a register bus with
    CTRL.START, STATUS.BUSY / DONE, COUNT, CYCLES and (cores with the sorter network) MODE and
    NET_PARAMS.

    START (ignored while BUSY) runs a job of COUNT items in the mode MODE held at START:

    * MODE 0, rasterise: exactly COUNT tile beats are taken from ``b``, each followed on ``a``
      by its ``count`` record beats, and the job ends when its ``256 * COUNT``-th pixel is
      accepted on ``c``;
    * MODE 1, network: COUNT feature beats (the low 80 bits of ``a`` beats) go through
      :class:`SorterNetwork` with the network in NET_PARAMS, and the job ends when the COUNT-th
      weight (the low 17 bits of a ``c`` beat) is accepted.

    COUNT = 0 ends at once. A job whose tile beats announce more records than ``a`` delivers stays
    BUSY (the host aborts it; the SoC's ABORT resets the engine). Switching modes costs no
    cycles: the next job's START takes the new MODE, the pipelines being empty between jobs.

    Timing: the core's; one cycle from START to the first beat taken. CYCLES counts the job's
    BUSY cycles.
    """

    #: the register the SoC's sequencer writes each job word to
    JOB_REGISTER = "COUNT"

    def __init__(self, core: TileRasteriser):
        self.core = core
        net_words = -(-NET_PARAMS_LAYOUT.size // 32)
        regs = [
            Register("CTRL", "wo", "Command register.",
                     (Field("START", 0, 1, "Write 1 to start a job of COUNT items; ignored while "
                            "BUSY."),)),
            Register("STATUS", "ro", "Engine status.", (
                Field("BUSY", 0, 1, "A job is running (from START until its last result is "
                      "accepted)."),
                Field("DONE", 1, 1, "The last job finished; cleared by START."))),
            Register("COUNT", "rw", "Items of the next job: tiles (MODE 0) or Gaussians "
                     "(MODE 1)."),
            Register("CYCLES", "ro", "Clock cycles the current or last job has been BUSY "
                     "(wraps at 2**32)."),
        ]
        if core.buffer:
            regs.append(Register("FETCHES", "ro", "Entry beats of the current or last job that "
                                 "fetched a record into the Gaussian buffer (the others reused "
                                 "a resident one)."))
        if core.network:
            regs.append(Register("MODE", "rw", "Job mode, taken at START.", (
                Field("NETWORK", 0, 1, "0: rasterise tiles; 1: run the sorter network on "
                      "feature beats."),)))
            regs += [Register(f"NET_PARAMS_{i}", "rw", f"Sorter network parameters, bits "
                              f"{32 * i}..{32 * i + 31} (records.net_params).")
                     for i in range(net_words)]
        self.regs = RegisterFile(regs)
        super().__init__({"a": In(stream.Signature(core.records.payload.shape())),
                          "b": In(stream.Signature(TILE_LAYOUT)),
                          "c": Out(stream.Signature(PIXEL_LAYOUT)),
                          "csr": In(RegisterBusSignature(self.regs.addr_width))})
        # The job's state (not ports; :func:`rasteriser_properties` relates it to the core's)
        self.items_in = Signal(32)     # tile or feature beats still to pass in
        self.items_out = Signal(32)    # tiles or weights still to leave
        self.pixel = Signal(8)         # pixels of the current tile sent
        self.job_network = Signal()    # the job's mode (MODE at its START)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = self.regs
        m.submodules.core = core = self.core
        wiring.connect(m, wiring.flipped(self.csr), regs.bus)
        busy, done, cycles = Signal(), Signal(), Signal(32)
        network, items_in, items_out, pixel = self.job_network, self.items_in, self.items_out, self.pixel
        start = regs.ctrl_stb & regs.ctrl[0] & ~busy
        m.d.comb += [regs.status.eq(Cat(busy, done)), regs.cycles.eq(cycles)]
        # Beats reach the core only inside a job and in its mode: the Gaussian buffer takes a
        # record beat as soon as it can, so a beat of a network job must never be on offer to it.
        feeding = busy & (items_in != 0)
        raster = busy & ~network
        m.d.comb += [core.records.payload.eq(self.a.payload), core.tiles.payload.eq(self.b.payload),
                     core.tiles.valid.eq(self.b.valid & feeding & ~network),
                     self.b.ready.eq(core.tiles.ready & feeding & ~network),
                     core.pixels.ready.eq(self.c.ready & ~network)]
        taken = self.b.valid & self.b.ready
        result = core.pixels.valid & core.pixels.ready
        last = pixel == 255
        if core.network:
            m.d.comb += [core.mode.eq(network), core.net_params.as_value().eq(
                             Cat(*(getattr(regs, f"net_params_{i}") for i in range(
                                 -(-NET_PARAMS_LAYOUT.size // 32))))[:NET_PARAMS_LAYOUT.size]),
                         core.features.payload.as_value().eq(self.a.payload.as_value()[:FEATURES_LAYOUT.size]),
                         core.features.valid.eq(self.a.valid & feeding & network),
                         core.records.valid.eq(self.a.valid & raster),
                         self.a.ready.eq(Mux(network, core.features.ready & feeding,
                                             core.records.ready & raster)),
                         core.weights.ready.eq(self.c.ready & network)]
            with m.If(network):
                m.d.comb += [self.c.valid.eq(core.weights.valid),
                             self.c.payload.as_value().eq(core.weights.payload)]
            with m.Else():
                m.d.comb += [self.c.valid.eq(core.pixels.valid), self.c.payload.eq(core.pixels.payload)]
            taken = Mux(network, self.a.valid & self.a.ready, taken)
            result = Mux(network, core.weights.valid & core.weights.ready, result)
            last = network | last
        else:
            m.d.comb += [core.records.valid.eq(self.a.valid & raster),
                         self.a.ready.eq(core.records.ready & raster),
                         self.c.valid.eq(core.pixels.valid), self.c.payload.eq(core.pixels.payload)]
        with m.If(taken):
            m.d.sync += items_in.eq(items_in - 1)
        if core.buffer:
            first = Signal(32)          # the core's fetch count at the job's START
            with m.If(start):
                m.d.sync += first.eq(core.fetches)
            m.d.comb += regs.fetches.eq(core.fetches - first)
        with m.If(start):
            m.d.sync += [items_in.eq(regs.count), items_out.eq(regs.count), pixel.eq(0),
                         cycles.eq(0), done.eq(0), busy.eq(1)]
            if core.network:
                m.d.sync += network.eq(regs.mode[0])
            with m.If(regs.count == 0):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.Elif(busy):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(result):
                m.d.sync += pixel.eq(pixel + 1)
                with m.If(last):
                    m.d.sync += items_out.eq(items_out - 1)
                    with m.If(items_out == 1):
                        m.d.sync += [busy.eq(0), done.eq(1)]
        return m


def rasteriser_properties(check, engine, max_tiles: int = 1, max_records: int = 1,
                          max_features: int = 3):
    """The formal properties of a :class:`RasteriserEngine` (:mod:`accelsmith.hdl.formal`), for
    ``check``:

    - ``streams`` and ``start``: those of every engine (:func:`~accelsmith.hdl.formal.engine_properties`;
      a job of COUNT 0 is empty), for ``c`` its ``valid``: its payload is the
      :class:`PixelNormaliser`'s in a raster job and the :class:`SorterNetwork`'s in a network
      job (the mode changes only at START, and ``c`` is valid only inside a job: ``results``),
      whose own stream rules :func:`unit_properties` proves;
    - ``results``: no beat is taken on ``a`` or ``b`` nor offered on ``c`` outside a job; a raster
      job never takes more than COUNT tile beats, and when it ends it has taken COUNT and sent
      ``256 * COUNT`` pixels; a network job takes no tile beat, and when it ends it has taken
      COUNT feature beats and sent COUNT weights. With them (and with ``streams``) the job's
      accounting, the invariants that let k-induction close instead of a bounded check to the
      end of a ~310-cycle raster job: the engine's counters agree with the harness's counts of
      the beats in and out, the core owes exactly the pixels of the tiles taken and not yet
      sent (``TileRasteriser.pixels_owed``) and the network holds exactly the features taken
      and not yet sent, both nothing outside a job of their mode;
    - ``liveness``: while ``a`` and ``b`` offer a beat in every cycle and ``c`` accepts in every
      cycle (assumed), a raster job of up to ``max_tiles`` tiles of up to ``max_records`` records
      is BUSY for fewer than :meth:`~accelsmith.models.gaussian.hardware.RasteriserTiming.job_cycles`
      of its tiles with every record counted and nothing skipped (the worst case over all record
      data), and a network job of up to ``max_features`` Gaussians for fewer than
      :meth:`~accelsmith.models.gaussian.hardware.RasteriserTiming.network_cycles` + 1. With
      one tile of at most one record the bound is proved by induction over a ranking: the
      cycles so far plus the cycles the job's work has left (``TileRasteriser.tile_left``, the
      network's ``drain``; the design's own latencies) stay below the bound, beside the
      accounting of ``results`` and the invariants the ranking rests on (no record after a
      tile's last, the job's COUNT and bound as latched).
    """
    m, regs, core = check.m, engine.regs, engine.core
    busy = regs.status[0]
    mode = regs.mode[0] if core.network else C(0)
    engine_properties(check, engine, empty_job=regs.count == 0, result_payload=False)
    start = regs.ctrl_stb & regs.ctrl[0] & ~busy
    network = Signal(name="f_network")           # the job's mode, latched at its START
    with m.If(start):
        m.d.sync += network.eq(mode)
    ended = check.started & check.past(busy, "f_busy_before") & ~busy
    # The accounting that makes the properties about a job's beats provable by induction
    # (instead of a ~310-cycle bounded check for a raster job's end): the engine's counters
    # match the harness's, the pixels the core owes are those of the tiles taken less those
    # sent, and the network holds the features taken less the weights sent. Asserted for
    # ``results`` and, with the network (whose c switches source with the mode), as the
    # invariants c's valid rule rests on, for ``streams``.
    accounting = "results" if check.proving("results") else \
        "streams" if check.proving("streams") and core.network else \
        "liveness" if check.proving("liveness") else None
    if accounting:
        count = Signal(32, name="f_count")       # latched at START
        tiles_in, items_in, items_out = (Signal(16, name=f"f_{n}") for n in ("tiles_in", "items_in", "items_out"))
        b_taken, a_taken = engine.b.valid & engine.b.ready, engine.a.valid & engine.a.ready
        c_sent = engine.c.valid & engine.c.ready
        with m.If(start):
            m.d.sync += [count.eq(regs.count), tiles_in.eq(0), items_in.eq(0),
                         items_out.eq(0)]
        with m.Else():
            m.d.sync += [tiles_in.eq(tiles_in + b_taken), items_in.eq(items_in + a_taken),
                         items_out.eq(items_out + c_sent)]
        owed = core.pixels_owed
        check.require(accounting, "the set-up holds no stray beat", ~core.stray)
        check.require(accounting, "the engine holds the job's mode", network == engine.job_network)
        check.require(accounting, "the engine's counts of a job stay within COUNT",
                      (engine.items_in <= engine.items_out) & (engine.items_out <= count))
        check.require(accounting, "the engine counts the tiles (features) taken",
                      Mux(network, (items_in == (count - engine.items_in)[:16]) & (tiles_in == 0),
                          tiles_in == (count - engine.items_in)[:16]))
        check.require(accounting, "the engine counts the pixels (weights) sent",
                      items_out == Mux(network, count - engine.items_out,
                                       (count - engine.items_out) * TILE * TILE + engine.pixel)[:16])
        check.require(accounting, "the core owes the pixels of the job's tiles taken and not sent",
                      Mux(busy & ~network,
                          owed == (engine.items_out - engine.items_in) * (TILE * TILE) - engine.pixel,
                          owed == 0))
        check.require(accounting, "the network holds the job's features taken and not sent",
                      Mux(busy & network, core.weights_owed == engine.items_out - engine.items_in,
                          core.weights_owed == 0))
    if check.proving("results"):
        check.require("results", "no result outside a job", ~engine.c.valid | busy)
        check.require("results", "no beat taken outside a job", ~(a_taken | b_taken) | busy)
        check.require("results", "a raster job takes at most COUNT tile beats, a network job none",
                      ~b_taken | (~network & (tiles_in < count)))
        check.require("results", "a raster job ends with COUNT tiles taken and 256 pixels each sent",
                      ~(ended & ~network) | ((tiles_in == count[:16]) & (items_out == (count * TILE * TILE)[:16])))
        check.require("results", "a network job ends with COUNT features taken and COUNT weights sent",
                      ~(ended & network) | ((items_in == count[:16]) & (items_out == count[:16])))
        check.cover("results", "a raster job takes its tile", ~network & b_taken)
        if core.network:
            check.cover("results", "a network job of two Gaussians ends", ended & network & (count == 2))
    if check.proving("liveness"):
        timing = hardware.RasteriserTiming(core.lanes, core.subtile)
        check.assume(engine.a.valid & engine.b.valid & engine.c.ready)
        check.assume(engine.b.payload.count <= max_records)
        check.assume(regs.count <= Mux(mode, max_features, max_tiles))
        limit = Signal(16, name="f_cycle_limit")      # the job's bound, latched at its START
        bounds = {n: timing.job_cycles([max_records] * n) for n in range(max_tiles + 1)}
        if core.network:
            bounds.update({n | 1 << 8: timing.network_cycles(n) + 1 for n in range(max_features + 1)})
        with m.If(start):
            with m.Switch(Cat(regs.count[:8], mode)):
                for key, bound in bounds.items():
                    with m.Case(key):
                        m.d.sync += limit.eq(bound)
        check.require("liveness", "a job whose streams keep flowing ends within the model's bound",
                      ~busy | (regs.cycles < limit))
        # A ranking that makes the bound provable by induction instead of a bounded check to
        # the end of a ~310-cycle raster job: the cycles the job has left by where its work is,
        # which the design's own latencies give; at its first cycle the job has as many left as
        # the model's bound allows, and each cycle takes at least one off.
        check.require("liveness", "a job's COUNT is within the bounds checked",
                      ~busy | (count <= Mux(network, max_features, max_tiles)))
        check.require("liveness", "a job's bound is the model's for its COUNT",
                      ~busy | Cat(*((Cat(count[:8], network) == key) & (limit == bound)
                                    for key, bound in bounds.items())).any())
        check.require("liveness", "a job has a tile or feature to finish", ~busy | (engine.items_out != 0))
        if max_tiles <= 1 and max_records <= 1:
            # before the tile (a feature) is taken: the cycles from its take on, and the take
            left = Mux(network, Mux(engine.items_in != 0, engine.items_in - 1 + SorterNetwork.LATENCY,
                                    core.weights_drain),
                       Mux(engine.items_in != 0, 1 + core.tile_span(max_records), core.tile_left))
            check.require("liveness", "a tile holds no record after its last",
                          ~core.partial & (core.unissued <= max_records))
            check.require("liveness", "a job's cycles so far and the cycles its work has left are within its bound",
                          ~busy | (regs.cycles + left < limit))
        check.cover("liveness", "a job starts with its full bound ahead",
                    busy & (regs.cycles == 0) & (network == core.network))
        if core.network:
            check.cover("liveness", "the longest network job ends at its bound",
                        ended & network & (check.past(regs.cycles, "f_live_cycles") == limit - 1))


def unit_properties(check, unit):
    """The ``pixel-stream`` (a :class:`PixelNormaliser`) or ``weight-stream`` (a
    :class:`SorterNetwork`, its products free) property group: the unit's output stream keeps
    the stream rules, payload included, while its input does, and no beat is lost or made up
    (:meth:`~accelsmith.hdl.formal.Checker.pipeline` with the unit's ``LATENCY``)."""
    if isinstance(unit, PixelNormaliser):
        check.pipeline("pixel-stream", unit.sums, unit.pixels, unit.LATENCY)
    else:
        check.pipeline("weight-stream", unit.features, unit.weights, unit.LATENCY)
