"""`accelsmith prove`: SymbiYosys proofs of the stream, register and job properties of small
engines of every GEMM family, of the UART receiver, the host bridge and the buffer readers, and for each
property group a deliberately broken design (a mutation, patched in for the test) that the
prover must catch with a trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth import Signal

from accelsmith.cli import main
from accelsmith.config import validate
from accelsmith.flows.prove import GROUPS, Proof, prove, verdict
from accelsmith.hdl import csr, tensor_engine

SMALL = {
    "os": {"family": "bitweight", "architecture": "systolic_os", "rows": 2, "cols": 2, "a_bits": 4,
           "b_bits": 4, "max_k": 4},
    "ws": {"family": "bitweight", "architecture": "systolic_ws", "rows": 2, "cols": 2, "m_tile": 2,
           "a_bits": 4, "b_bits": 4, "max_k": 4},
    "nm": {"family": "sparse", "format": "nm", "n": 2, "m": 4, "groups": 1, "rows": 2, "cols": 2,
           "a_bits": 4, "b_bits": 4, "max_k": 8},
    "bitmap": {"family": "sparse", "format": "bitmap", "rows": 2, "cols": 2, "m_tile": 4,
               "n_tile": 4, "a_bits": 4, "b_bits": 4, "max_k": 4},
}
DEPTH = 16


def _config(name):
    return validate(SMALL[name], f"<{name}>")


@pytest.mark.parametrize("name", list(SMALL))
def test_small_engines_hold_every_property(name, tmp_path):
    results = prove(_config(name), tmp_path, DEPTH, GROUPS["shell"], say=lambda line: None)
    assert [r.group for r in results] == list(GROUPS["shell"])
    for r in results:
        assert r.status in ("proved", "bounded"), (r.group, r.status, r.where, r.log)
        assert r.properties
    by_group = {r.group: r for r in results}
    # the register file closes by induction (a proof for every depth), and so do the stream
    # rules of the dense engines
    assert by_group["registers"].status == "proved"
    if name in ("os", "ws"):
        assert by_group["streams"].status == "proved"


def test_the_host_bridge_keeps_the_stream_rules_and_never_wedges(tmp_path):
    results = prove(_config("os"), tmp_path, DEPTH, GROUPS["bridge"], say=lambda line: None)
    assert [(r.group, r.status) for r in results] == [("bridge-stream", "proved"),
                                                      ("bridge-watchdog", "proved")], results


def test_the_buffer_reader_streams_its_words_in_order(tmp_path):
    (result,) = prove(_config("os"), tmp_path, DEPTH, GROUPS["reader"], say=lambda line: None)
    assert result.status in ("proved", "bounded"), (result.status, result.where, result.log)
    assert len(result.properties) == 4


def test_the_uart_receiver_keeps_the_stream_rules_and_recovers(tmp_path):
    results = prove(_config("os"), tmp_path, DEPTH, GROUPS["uart"], say=lambda line: None)
    stream, recovery, glitch, transmit = results
    for proof in (stream, glitch, transmit):
        assert proof.status == "proved", (proof.group, proof.status, proof.where, proof.log)
    # bounded: 11 bit times of noise, 11 idle, the frame and its deadline, all within the depth
    assert recovery.status == "bounded" and recovery.depth >= 140, (recovery.status, recovery.where)


# Isolation needs two engines side by side for two jobs: the dual-side bitmap engine with a
# 2x2 tile keeps its proof short.
ISOLATION = {"os": SMALL["os"], "nm": SMALL["nm"], "bitmap": dict(SMALL["bitmap"], m_tile=2, n_tile=2),
             "ws": SMALL["ws"]}


@pytest.mark.parametrize("name", [n if n != "ws" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ISOLATION])
def test_a_job_never_leaks_into_the_next(name, tmp_path):
    config = validate(ISOLATION[name], f"<{name}>")
    results = prove(config, tmp_path, DEPTH, GROUPS["isolation"], say=lambda line: None)
    for r in results:
        # bounded over two whole jobs (the depth raised to hold them); not vacuous: the second
        # job, of a step, ends (for the sparse engines after one that received bad metadata)
        assert r.status == "bounded", (r.group, r.status, r.where, r.log)


def test_the_job_sequencer_runs_every_job_and_stores_every_row(tmp_path):
    results = prove(_config("os"), tmp_path, DEPTH, GROUPS["sequencer"], say=lambda line: None)
    assert [r.group for r in results] == list(GROUPS["sequencer"])
    for r in results:
        assert r.status in ("proved", "bounded"), (r.group, r.status, r.where, r.log)


def _start_while_busy(monkeypatch):
    monkeypatch.setattr(tensor_engine._Shell, "_takes_start",
                        staticmethod(lambda regs, busy: regs.ctrl_stb & regs.ctrl[0]))


def _valid_dropped(monkeypatch):
    readout = tensor_engine._Shell._readout

    def dropping(self, m, value, row, done):
        readout(self, m, value, row, done)
        blink = Signal(name="blink")
        m.d.sync += blink.eq(~blink)
        m.d.comb += self.c.valid.eq(blink)          # offered, then withdrawn before ready
    monkeypatch.setattr(tensor_engine._Shell, "_readout", dropping)


def _last_early(monkeypatch):
    readout = tensor_engine._Shell._readout

    def early(self, m, value, row, done):
        readout(self, m, value, row, done)
        m.d.comb += self.c.payload.last.eq(row == self.m_tile - 2)
    monkeypatch.setattr(tensor_engine._Shell, "_readout", early)


def _after_elaborate(monkeypatch, cls, mutation):
    """Patch ``cls`` so ``mutation(self, m)`` adds to the module its ``elaborate`` returns."""
    elaborate = cls.elaborate

    def mutated(self, platform):
        m = elaborate(self, platform)
        mutation(self, m)
        return m
    monkeypatch.setattr(cls, "elaborate", mutated)


def _register_clobbered(monkeypatch):
    def clobber(self, m):
        addr, reg = next((a, r) for a, r in enumerate(self.registers) if r.access == "rw")
        with m.If(self.bus.w_en & (self.bus.addr != addr)):   # a write elsewhere lands here too
            m.d.sync += getattr(self, reg.name.lower()).eq(self.bus.w_data)
    _after_elaborate(monkeypatch, csr.RegisterFile, clobber)


def _never_reads_out(monkeypatch):
    monkeypatch.setattr(tensor_engine._Shell, "_readout",
                        lambda self, m, value, row, done: m.d.comb.__iadd__(self.c.valid.eq(0)))


def _bound_one_less(monkeypatch):
    """Not a broken design: a bound one cycle tighter than the model's, which must not hold
    (the proven bound is exact, not loose)."""
    from accelsmith.models.bitweight import EngineGeometry

    bound = EngineGeometry.job_cycle_bound
    monkeypatch.setattr(EngineGeometry, "job_cycle_bound",
                        lambda self, steps, tiles=1: bound(self, steps, tiles) - 1)


def _receiver_dead_after_framing_error(monkeypatch):
    from accelsmith.hdl import uart

    def dead(self, m):
        with m.If(self.framing_errors != 0):
            m.d.sync += self.data.valid.eq(0)      # no byte is offered after a framing error
    _after_elaborate(monkeypatch, uart.UARTReceiver, dead)


def _receiver_valid_one_cycle(monkeypatch):
    from accelsmith.hdl import uart

    def brief(self, m):
        with m.If(self.data.valid):
            m.d.sync += self.data.valid.eq(0)        # withdrawn whether taken or not
    _after_elaborate(monkeypatch, uart.UARTReceiver, brief)


def _receiver_without_vote(monkeypatch):
    from accelsmith.hdl import uart

    monkeypatch.setattr(uart.UARTReceiver, "_vote", lambda self, samples: samples[1])


def _transmitter_takes_mid_frame(monkeypatch):
    from accelsmith.hdl import uart

    _after_elaborate(monkeypatch, uart.UARTTransmitter,
                     lambda self, m: m.d.comb.__iadd__(self.data.ready.eq(1)))


def _bridge_watchdog_slow(monkeypatch):
    from accelsmith.hdl import soc

    elaborate = soc.UARTBoneBridge.elaborate

    def slow(self, platform):
        # the hardware's watchdog ten times the one it is specified with
        specified, self.watchdog_cycles = self.watchdog_cycles, 10 * self.watchdog_cycles
        try:
            return elaborate(self, platform)
        finally:
            self.watchdog_cycles = specified
    monkeypatch.setattr(soc.UARTBoneBridge, "elaborate", slow)


def _bridge_reply_withdrawn(monkeypatch):
    from accelsmith.hdl import soc

    def withdrawing(self, m):
        blink = Signal(name="blink")
        m.d.sync += blink.eq(~blink)
        with m.If(blink):
            m.d.comb += self.tx.valid.eq(0)
    _after_elaborate(monkeypatch, soc.UARTBoneBridge, withdrawing)


def _reader_word_replaced(monkeypatch):
    from accelsmith.hdl import soc

    def replacing(self, m):
        with m.If(self.rd_data == 2):
            m.d.comb += self.out.payload.eq(3)       # word 2 goes out as word 3
    _after_elaborate(monkeypatch, soc.BufferReader, replacing)


def _error_not_cleared(monkeypatch):
    control = tensor_engine._Shell._control

    def sticky(self, m, accepted=None):
        out = control(self, m, accepted)
        kept = Signal(name="kept_error")
        with m.If(accepted & self.core.error):
            m.d.sync += kept.eq(1)
        m.d.comb += self.regs.status[2].eq(kept)        # STATUS.ERROR never cleared by START
        return out
    monkeypatch.setattr(tensor_engine._Shell, "_control", sticky)


def _accumulators_not_cleared(monkeypatch):
    _after_elaborate(monkeypatch, tensor_engine.OutputStationaryEngine,
                     lambda self, m: m.d.comb.__iadd__(self.core.clear.eq(0)))


def _sequencer_drops_a_row(monkeypatch):
    from accelsmith.hdl import soc

    def dropping(self, m):
        with m.If(self.c_count == 1):
            m.d.comb += self.c_en.eq(0)               # the second row is not written
    _after_elaborate(monkeypatch, soc.JobSequencer, dropping)


def _sequencer_overhead_one_less(monkeypatch):
    """Not a broken design: a run bound one cycle per job tighter, which must not hold."""
    from accelsmith.hdl import soc

    monkeypatch.setattr(soc, "JOB_OVERHEAD_CYCLES", soc.JOB_OVERHEAD_CYCLES - 1)


@pytest.mark.parametrize("name, group, mutate, words", [
    ("nm", "isolation", _error_not_cleared, "BUSY, DONE and ERROR as if the earlier job had not run"),
    ("os", "isolation-data", _accumulators_not_cleared, "result rows' values as if"),
    ("os", "sequencer", _sequencer_drops_a_row, "a row is stored at the next address"),
    ("os", "sequencer-liveness", _sequencer_overhead_one_less, "a run ends within"),
], ids=["error-not-cleared", "accumulators-not-cleared", "sequencer-drops-a-row",
        "sequencer-overhead-one-less"])
def test_each_mutation_of_jobs_and_runs_is_caught(name, group, mutate, words, monkeypatch, tmp_path):
    mutate(monkeypatch)
    (result,) = prove(_config(name), tmp_path, DEPTH, [group], say=lambda line: None)
    assert result.status == "failed", (result.status, result.where, result.log)
    assert words in result.where and ".py:" in result.where
    assert result.trace and Path(result.trace).stat().st_size > 0


@pytest.mark.parametrize("group, mutate, words", [
    ("start", _start_while_busy, "START while BUSY does not restart the job"),
    ("streams", _valid_dropped, "c: valid and payload held until ready"),
    ("results", _last_early, "last on each tile's final row"),
    ("registers", _register_clobbered, "holds the last word written"),
    ("liveness", _never_reads_out, "ends within the model's bound"),
    ("liveness", _bound_one_less, "ends within the model's bound"),
    ("uart-recovery", _receiver_dead_after_framing_error, "a frame is received as sent"),
    ("uart-stream", _receiver_valid_one_cycle, "data: valid and payload held until ready"),
    ("uart-glitch", _receiver_without_vote, "uart-glitch: "),
    ("uart-transmit", _transmitter_takes_mid_frame, "a byte is taken only between frames"),
    ("bridge-watchdog", _bridge_watchdog_slow, "idle within the watchdog time"),
    ("bridge-stream", _bridge_reply_withdrawn, "tx: valid and payload held until ready"),
    ("buffer-reader", _reader_word_replaced, "the i-th beat after a start carries word i"),
], ids=["start-while-busy", "valid-dropped", "last-early", "register-clobbered", "job-never-ends",
        "bound-one-less", "uart-dead-after-framing-error", "uart-valid-one-cycle",
        "uart-without-vote", "uart-transmitter-takes-mid-frame",
        "bridge-watchdog-slow", "bridge-reply-withdrawn", "reader-word-replaced"])
def test_each_mutation_is_caught_with_a_trace(group, mutate, words, monkeypatch, tmp_path):
    mutate(monkeypatch)
    (result,) = prove(_config("os"), tmp_path, DEPTH, [group], say=lambda line: None)
    assert result.status == "failed", (result.status, result.where, result.log)
    assert words in result.where and ".py:" in result.where
    assert result.trace and Path(result.trace).stat().st_size > 0


def test_prove_command_reports_and_fails_on_bad_input(tmp_path, capsys):
    cfg = tmp_path / "os.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in SMALL["os"].items()))
    assert main(["prove", str(cfg), "--group", "registers", "--depth", "8", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "registers" in out and "proved (k-induction)" in out and "1 of 1 groups hold" in out
    assert main(["prove", str(cfg), "--group", "liveliness"]) == 2
    assert "not a property group" in capsys.readouterr().err
    # isolation is a property of the GEMM shells (malformed sparse metadata), not the rasteriser's
    assert main(["prove", "gaussian_16lanes_coverage", "--group", "isolation"]) == 2
    assert "not a property group" in capsys.readouterr().err


def test_a_group_past_its_time_is_reported_as_timed_out(tmp_path, capsys):
    # the rasteriser's results take longer than 2 s (Yosys's preparation alone, on this machine)
    cfg = tmp_path / "g.yaml"
    cfg.write_text("family: gaussian\nlanes: 16\nsubtile: 0\nnetwork: false\n")
    assert main(["prove", str(cfg), "--group", "results", "--timeout", "2", "-o", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "TIMED OUT" in out and "did not finish in 2 s" in out and "timed out: results" in out
    with pytest.raises(SystemExit) as exc:
        main(["prove", str(cfg), "--timeout", "-1"])
    assert exc.value.code == 2
    assert "a whole number of 0 or more" in capsys.readouterr().err


# SymbiYosys's own lines (sby.log) for a prove task and a cover task that ran out of time
_BASE_HELD = ("SBY 1:00:00 [proof_prove] engine_0.basecase: Status returned by engine for "
              "basecase: pass\n")
_PROVE_TIMEOUT = "SBY 1:00:05 [proof_prove] DONE (TIMEOUT, rc=8)\n"
_COVER_PASS = "SBY 1:00:05 [proof_cover] DONE (PASS, rc=0)\n"
_COVER_TIMEOUT = ("SBY 1:00:01 [proof_cover] engine_0: ##   0:00:01  Reached cover statement in step "
                  "3 at harness: /x/formal.py:10 (_witness_.check_1)\n"
                  "SBY 1:00:05 [proof_cover] DONE (TIMEOUT, rc=8)\n")
_NAMES, _COVERS = [("a rule", "/x/formal.py:5")], [("first", "/x/formal.py:10"), ("second", "/x/formal.py:11")]


@pytest.mark.parametrize("log, status, where", [
    (_BASE_HELD + _PROVE_TIMEOUT + _COVER_PASS, "bounded", "k-induction did not close in 60 s"),
    (_PROVE_TIMEOUT + _COVER_PASS, "timeout", "the bounded check did not finish in 60 s"),
    (_BASE_HELD + "SBY 1:00:05 [proof_prove] DONE (UNKNOWN, rc=4)\n" + _COVER_TIMEOUT, "timeout",
     "cover statements not reached in 60 s: second"),
])
def test_a_timed_out_run_reports_what_it_established(log, status, where, tmp_path):
    proof = verdict(Proof("g", "error", 24, 60.0, ["a rule"], log=str(tmp_path / "sby.log")), log,
                    _NAMES, _COVERS, 60)
    assert proof.status == status and where in proof.where, (proof.status, proof.where)


# The rasteriser, 16 lanes without pair skipping: with and without the sorter network's mode.
GAUSSIAN = {"raster": {"family": "gaussian", "lanes": 16, "subtile": 0, "network": False},
            "network": {"family": "gaussian", "lanes": 16, "subtile": 0}}


def _gaussian(name):
    return validate(GAUSSIAN[name], f"<gaussian {name}>")


def test_the_rasteriser_without_the_network_holds_its_properties(tmp_path):
    groups = ["streams", "registers", "start", "results", "liveness", "pixel-stream"]
    results = prove(_gaussian("raster"), tmp_path, DEPTH, groups, say=lambda line: None)
    by_group = {r.group: r for r in results}
    assert list(by_group) == groups
    # c's valid rule, the register file, the job's results (a raster job's end: 256 pixels
    # per tile, COUNT tiles) and its bound (about 306 cycles) close by induction; the
    # normaliser's pixels keep the stream rules, payload included, through a full pipeline
    # (depth > its 16 stages)
    for group in ("streams", "registers", "results", "liveness"):
        assert by_group[group].status == "proved", (group, by_group[group].status, by_group[group].where)
    assert by_group["start"].status in ("proved", "bounded"), by_group["start"].where
    assert by_group["pixel-stream"].status in ("proved", "bounded"), by_group["pixel-stream"].where
    assert by_group["streams"].depth >= 41 and by_group["pixel-stream"].depth > 16
    (start,) = prove(_gaussian("network"), tmp_path / "network", DEPTH, ["start"], say=lambda line: None)
    assert start.status in ("proved", "bounded"), (start.status, start.where)


@pytest.mark.slow
def test_the_rasteriser_network_mode_holds_its_properties(tmp_path):
    """The network config's remaining groups at the default depth: minutes."""
    groups = ["streams", "registers", "results", "liveness", "weight-stream"]
    results = prove(_gaussian("network"), tmp_path, DEPTH, groups, say=lambda line: None)
    for r in results:
        assert r.status in ("proved", "bounded"), (r.group, r.status, r.where, r.log)
    by_group = {r.group: r for r in results}
    for group in ("results", "liveness"):       # raster and network jobs, for all time
        assert by_group[group].status == "proved", (group, by_group[group].where)


def test_a_rasteriser_ending_its_tiles_early_is_caught(monkeypatch, tmp_path):
    """The engine counts a pixel twice, so a tile's job would end after 255: the harness's own
    count of the pixels sent disagrees as the first pixel leaves, about 42 cycles from reset."""
    _rasteriser_counts_a_pixel_twice(monkeypatch)
    (result,) = prove(_gaussian("raster"), tmp_path, 44, ["results"], say=lambda line: None)
    assert result.status == "failed", (result.status, result.where, result.log)
    assert "counts the pixels" in result.where and result.trace


def _rasteriser_restarts_cycles(monkeypatch):
    from accelsmith.hdl.gaussian import RasteriserEngine

    def restart(self, m):
        with m.If(self.regs.ctrl_stb & self.regs.ctrl[0]):
            m.d.comb += self.regs.cycles.eq(0)        # CYCLES reads 0 after any START, busy or not
    _after_elaborate(monkeypatch, RasteriserEngine, restart)


def _rasteriser_takes_tiles_outside_a_job(monkeypatch):
    from accelsmith.hdl.gaussian import RasteriserEngine

    _after_elaborate(monkeypatch, RasteriserEngine,
                     lambda self, m: m.d.comb.__iadd__(self.b.ready.eq(1)))    # b not gated by the job


def _rasteriser_counts_a_pixel_twice(monkeypatch):
    from accelsmith.hdl.gaussian import RasteriserEngine

    def twice(self, m):
        with m.If(self.c.valid & self.c.ready & (self.pixel == 0)):
            m.d.sync += self.pixel.eq(2)              # a tile's job ends after 255 pixels
    _after_elaborate(monkeypatch, RasteriserEngine, twice)


def _raster_bound_one_less(monkeypatch):
    """Not a broken design: a raster job's bound one cycle tighter than the model's, which must
    not hold (the ranking is exact at the job's first cycle, so this fails there)."""
    from accelsmith.models.gaussian.hardware import RasteriserTiming

    bound = RasteriserTiming.job_cycles
    monkeypatch.setattr(RasteriserTiming, "job_cycles",
                        lambda self, tiles: bound(self, tiles) - 1 if tiles else 0)


def _rasteriser_takes_its_first_tile_late(monkeypatch):
    from accelsmith.hdl.gaussian import RasteriserEngine

    def late(self, m):
        with m.If(self.regs.cycles == 0):             # the job's first cycle takes nothing
            m.d.comb += [self.core.tiles.valid.eq(0), self.b.ready.eq(0)]
    _after_elaborate(monkeypatch, RasteriserEngine, late)


def _normaliser_payload_moves(monkeypatch):
    from accelsmith.hdl.gaussian import PixelNormaliser

    def moving(self, m):
        with m.If(self.pixels.valid & ~self.pixels.ready):
            m.d.sync += self.pixels.payload.r.eq(self.pixels.payload.r + 1)   # changes while held
    _after_elaborate(monkeypatch, PixelNormaliser, moving)


@pytest.mark.parametrize("group, mutate, words", [
    ("start", _rasteriser_restarts_cycles, "START while BUSY does not restart the job"),
    ("results", _rasteriser_takes_tiles_outside_a_job, "no beat taken outside a job"),
    ("pixel-stream", _normaliser_payload_moves, "valid and payload held until ready"),
    ("liveness", _raster_bound_one_less, "are within its bound"),
    ("liveness", _rasteriser_takes_its_first_tile_late, "are within its bound"),
], ids=["rasteriser-restarts-cycles", "rasteriser-takes-tiles-outside-a-job",
        "normaliser-payload-moves", "raster-bound-one-less", "rasteriser-takes-its-first-tile-late"])
def test_each_mutation_of_the_rasteriser_is_caught(group, mutate, words, monkeypatch, tmp_path):
    mutate(monkeypatch)
    (result,) = prove(_gaussian("raster"), tmp_path, DEPTH, [group], say=lambda line: None)
    assert result.status == "failed", (result.status, result.where, result.log)
    assert words in result.where and ".py:" in result.where
    assert result.trace and Path(result.trace).stat().st_size > 0
