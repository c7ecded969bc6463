"""cocotb against the golden model: every architecture, both simulators, 2,000 tiles each."""

import json

import pytest

from accelsmith.config import load, validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate
from accelsmith.registry import reference_configs

from .conftest import CONFIGS

SIM_CONFIGS = ["os_4x4_int8", "ws_4x4_int8", "matrix2d_4x4_int8", "tree_4x4_int8", "cube_4_int8",
               "os_4x4_u4xs8", "os_4x4_int8_acc12", "os_4x4_int8_opt1", "matrix2d_4x4_int8_opt4c",
               "sparse_nm2of4_4x4_int8", "sparse_bitmap_4x4_tile8_int8"]
STANDARD_SIZES = ["os_16x16_int8", "ws_16x16_int8", "matrix2d_16x16_int8", "tree_16x16_int8",
                  "cube_8_int8"]
SPLIT_CPP = "os_8x8_int8"
# Board reference configs (docs/boards.md): the small one simulated by default, the 8x8 slow.
BOARD_CONFIGS = {"board_icebreaker_os_2x2_int8": (), "board_ulx3s_os_8x8_int8": pytest.mark.slow}


def test_every_reference_config_is_simulated():
    """A shipped config nobody simulates is a config nobody knows works."""
    from .test_gaussian_sim import REFERENCE as GAUSSIAN

    shipped = {p.stem for p in reference_configs()}
    assert shipped == (set(SIM_CONFIGS) | set(STANDARD_SIZES) | {SPLIT_CPP} | set(BOARD_CONFIGS)
                       | set(GAUSSIAN))


@pytest.mark.parametrize("name", [pytest.param(n, marks=m) for n, m in BOARD_CONFIGS.items()])
def test_sim_board_configs(name, tmp_path):
    result = simulate(load(CONFIGS / f"{name}.yaml"), "verilator", seed=11, vectors=400,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


# Reference configs whose engines Icarus also runs by default elsewhere (the opt1 and opt4c
# PEs in test_sim_mac, both sparse formats in test_sparse_sim): on Icarus in the slow tier.
ICARUS_SLOW_REFERENCE = {"os_4x4_int8_opt1", "matrix2d_4x4_int8_opt4c", "sparse_nm2of4_4x4_int8",
                         "sparse_bitmap_4x4_tile8_int8"}


# Reference configs whose engines test_sim_mac runs on Verilator by default (3x4 opt1 OS and
# 4x4 opt4c 2D-Matrix, the same PEs): their own Verilator runs are in the slow tier.
VERILATOR_SLOW_REFERENCE = {"os_4x4_int8_opt1", "matrix2d_4x4_int8_opt4c"}


@pytest.mark.parametrize("name,simulator", [
    pytest.param(n, sim, marks=pytest.mark.slow if n in (ICARUS_SLOW_REFERENCE if sim == "icarus"
                                                         else VERILATOR_SLOW_REFERENCE)
                 else (), id=f"{n}-{sim}") for n in SIM_CONFIGS for sim in ("verilator", "icarus")])
def test_sim(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    config = load(CONFIGS / f"{name}.yaml")
    # Bit-level carry-save netlists (mac other than baseline) build and run slowly, on Icarus
    # (event-driven, glitching) 20-50x slower than on Verilator: fewer tiles, as in test_sim_mac.
    bit_level = config.values.get("mac", "baseline") != "baseline"
    vectors = (60 if simulator == "icarus" else 300) if bit_level else (
        1000 if simulator == "icarus" else 2000)
    result = simulate(config, simulator, seed=1234, vectors=vectors, workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


# Every (architecture, optimised mac) pair, plus 4- and 16-bit operands; small arrays.
MAC_CONFIGS = {
    "systolic_os-opt1": {"architecture": "systolic_os", "mac": "opt1", "rows": 3, "cols": 4},
    "systolic_ws-opt1": {"architecture": "systolic_ws", "mac": "opt1", "rows": 4, "cols": 3},
    "matrix2d-opt1": {"architecture": "matrix2d", "mac": "opt1", "rows": 3, "cols": 3},
    "tree-opt2": {"architecture": "tree", "mac": "opt2", "units": 3, "tree_k": 4},
    "cube-opt1": {"architecture": "cube", "mac": "opt1", "cube_n": 3},
    "matrix2d-opt3": {"architecture": "matrix2d", "mac": "opt3", "rows": 3, "cols": 2},
    "matrix2d-opt4c": {"architecture": "matrix2d", "mac": "opt4c", "rows": 3, "cols": 3},
    "matrix2d-opt4e": {"architecture": "matrix2d", "mac": "opt4e", "rows": 3, "cols": 3},
    "matrix2d-bitslice": {"architecture": "matrix2d", "mac": "bitslice", "rows": 3, "cols": 3},
    "opt4c-booth-u4xs4": {"architecture": "matrix2d", "mac": "opt4c", "encoding": "booth",
                          "a_bits": 4, "a_signed": False, "b_bits": 4, "rows": 2, "cols": 3},
    "tree-opt2-ent-s4xu4": {"architecture": "tree", "mac": "opt2", "encoding": "ent", "a_bits": 4,
                            "b_bits": 4, "b_signed": False, "units": 2, "tree_k": 3},
    "opt1-s16xs16": {"architecture": "systolic_os", "mac": "opt1", "a_bits": 16, "b_bits": 16,
                     "rows": 2, "cols": 2, "max_k": 64},
    "bitslice-u16xs16": {"architecture": "matrix2d", "mac": "bitslice", "a_bits": 16,
                         "a_signed": False, "b_bits": 16, "rows": 2, "cols": 2, "max_k": 64},
    # Result buffer: several tiles per job, readout overlapping the next tile (skewed tokens in
    # the systolic array, carry-save result registers with opt1).
    "systolic_os-opt1-rbuf": {"architecture": "systolic_os", "mac": "opt1", "rows": 3, "cols": 4,
                              "result_buffer": True},
    "matrix2d-rbuf": {"architecture": "matrix2d", "rows": 4, "cols": 2, "result_buffer": True},
    "cube-rbuf": {"architecture": "cube", "cube_n": 3, "result_buffer": True},
    # Carry-save tree schedules other than the default Dadda.
    "tree-opt2-c42": {"architecture": "tree", "mac": "opt2", "compressor": "4:2", "units": 2,
                      "tree_k": 3},
    "systolic_os-opt1-wallace": {"architecture": "systolic_os", "mac": "opt1",
                                 "compressor": "wallace", "rows": 2, "cols": 3},
    # Weight-stationary buffer with one and two rows: the row read ahead of each output must
    # never be the row still being written.
    "tree-m1": {"architecture": "tree", "units": 2, "tree_k": 3, "m_tile": 1},
    "systolic_ws-opt1-m2": {"architecture": "systolic_ws", "mac": "opt1", "rows": 2, "cols": 3,
                            "m_tile": 2},
    # Pipelined MACs: registered products, the split accumulate with its carry a tick behind
    # (wrapping too), registered partial products, tile tokens delayed to match every stage.
    "systolic_os-p2-rbuf": {"architecture": "systolic_os", "rows": 3, "cols": 4, "pipeline": 2,
                            "result_buffer": True},
    "cube-p2-wraps": {"architecture": "cube", "cube_n": 2, "pipeline": 2, "acc_bits": 13,
                      "acc_wraps": True},
    "matrix2d-opt1-p2-rbuf": {"architecture": "matrix2d", "mac": "opt1", "rows": 3, "cols": 3,
                              "pipeline": 2, "result_buffer": True},
    "systolic_ws-opt1-p1": {"architecture": "systolic_ws", "mac": "opt1", "rows": 2, "cols": 3,
                            "m_tile": 2, "pipeline": 1},
    "systolic_os-opt1-p1": {"architecture": "systolic_os", "mac": "opt1", "rows": 2, "cols": 3,
                            "pipeline": 1},
    "tree-opt2-p1": {"architecture": "tree", "mac": "opt2", "units": 2, "tree_k": 3, "pipeline": 1},
    "systolic_os-opt1-p3-rbuf": {"architecture": "systolic_os", "mac": "opt1", "rows": 2, "cols": 3,
                                 "pipeline": 3, "result_buffer": True},
    # ECP5 DSP blocks (their simulation model) with signed and unsigned operands.
    "matrix2d-ecp5dsp-rbuf": {"architecture": "matrix2d", "rows": 3, "cols": 3, "pipeline": 2,
                              "dsp": "ecp5", "result_buffer": True},
    "systolic_os-ecp5dsp-p3-u4xs8": {"architecture": "systolic_os", "rows": 2, "cols": 3, "pipeline": 3,
                                  "dsp": "ecp5", "a_bits": 4, "a_signed": False},
    "tree-ecp5dsp-p2-m1": {"architecture": "tree", "units": 2, "tree_k": 3, "m_tile": 1, "pipeline": 2,
                           "dsp": "ecp5"},
    "tree-opt2-p2": {"architecture": "tree", "mac": "opt2", "units": 2, "tree_k": 3, "pipeline": 2},
}


# The 3x4 tree-opt2 netlist takes Icarus about 4 minutes even at 40 tiles: slow tier (the
# 2x3 tree-opt2 config runs on Icarus by default, and so does the 3x3 bitslice one). Pipelined engines: Verilator by default,
# Icarus slow (their unpipelined forms run on both), but for one with the ECP5 DSP model.
ICARUS_SLOW = {"tree-opt2", "tree-opt2-c42", "bitslice-u16xs16", "matrix2d-opt1-p2-rbuf", "systolic_ws-opt1-p1", "tree-opt2-p1",
               "systolic_os-opt1-p1", "systolic_os-p2-rbuf", "cube-p2-wraps",
               "systolic_os-ecp5dsp-p3-u4xs8", "systolic_os-opt1-p3-rbuf", "tree-opt2-p2",
               "tree-ecp5dsp-p2-m1"}
# A Verilator build takes ~50 s whatever the vector count, so configs that run on Icarus by
# default run on Verilator in slow (both simulators there); systolic_os-opt1 keeps both.
VERILATOR_SLOW = {"systolic_ws-opt1", "matrix2d-opt1", "cube-opt1", "matrix2d-opt3",
                  "matrix2d-opt4c", "matrix2d-opt4e", "matrix2d-bitslice", "opt4c-booth-u4xs4",
                  "tree-opt2-ent-s4xu4", "opt1-s16xs16", "systolic_os-opt1-rbuf",
                  "systolic_os-opt1-wallace", "systolic_ws-opt1-m2", "matrix2d-ecp5dsp-rbuf"}
assert not VERILATOR_SLOW & ICARUS_SLOW          # every config runs on one simulator by default
MAC_CASES = [pytest.param(name, sim, marks=pytest.mark.slow if name in {
                 "icarus": ICARUS_SLOW, "verilator": VERILATOR_SLOW}[sim] else (),
                          id=f"{name}-{sim}")
             for name in MAC_CONFIGS for sim in ("verilator", "icarus")]


@pytest.mark.parametrize("name,simulator", MAC_CASES)
def test_sim_mac(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    config = validate({"family": "bitweight", **MAC_CONFIGS[name]}, f"<{name}>")
    # Icarus is event-driven: the bit-level carry-save netlists glitch a lot and run 20-50x
    # slower than on Verilator, so it gets fewer tiles (corner cases always included).
    vectors = 300 if simulator == "verilator" else 40
    result = simulate(config, simulator, seed=4321, vectors=vectors, workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name", STANDARD_SIZES)
def test_sim_standard_sizes(name, tmp_path):
    result = simulate(load(CONFIGS / f"{name}.yaml"), "verilator", seed=99, vectors=5000,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


def test_sim_large_enough_for_split_cpp(tmp_path):
    """An 8x8 array makes Verilator split its C++ output (precompiled headers in play)."""
    result = simulate(load(CONFIGS / f"{SPLIT_CPP}.yaml"), "verilator", seed=8, vectors=200,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_waves(simulator, tmp_path):
    """The README's --waves example: FST where the simulator can write it (Verilator needs the lz4
    headers, else VCD), and a size estimate (for the warning) that is not below the real size."""
    from accelsmith.flows.sim import waves_estimate_mb

    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    config = load(CONFIGS / "ws_4x4_int8.yaml")
    result = simulate(config, simulator, seed=1, vectors=40, waves=True, workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()
    fst = simulator == "icarus" or tools.verilator_fst()
    assert result.waves is not None and result.waves.suffix == (".fst" if fst else ".vcd")
    head = result.waves.read_bytes()[:8]
    assert head[0] == 0 if fst else head.startswith(b"$"), head    # FST header block / VCD keyword
    size_mb = result.waves.stat().st_size / 1e6
    estimate = waves_estimate_mb((tmp_path / result.top / f"{result.top}.v").read_text(), 40, "fst" if fst else "vcd")
    assert size_mb > 0.05 and size_mb <= estimate < 20 * size_mb, (size_mb, estimate)
    # The progress the flow prints while simulating: every tile job counted, its cycles too.
    from accelsmith.flows.sim import _progress_line

    progress = result.waves.parent / "progress.json"
    done = json.loads(progress.read_text())
    assert done["jobs"] == done["total"] >= 40 and done["cycles"] > 1000
    assert _progress_line(progress, 0.0).startswith(f"{done['jobs']}/{done['total']} tile jobs, ")
