"""The sparse family's engines against the golden model on both simulators."""

import json

import pytest

from accelsmith.config import validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate
from accelsmith.registry import generator
from accelsmith.generators import write_design

# Every N:M pattern of the evidence table, dense mode, odd shapes and widths, opt1 PEs.
NM_CONFIGS = {
    "2of4": {"n": 2, "m": 4, "rows": 3, "cols": 2},
    "1of4": {"n": 1, "m": 4, "rows": 2, "cols": 3},
    "2of8-g2": {"n": 2, "m": 8, "groups": 2, "rows": 2, "cols": 2},
    "1of8": {"n": 1, "m": 8, "rows": 2, "cols": 2},
    "4of8": {"n": 4, "m": 8, "rows": 2, "cols": 2},
    "3of16-u4xs4": {"n": 3, "m": 16, "rows": 2, "cols": 2, "a_bits": 4, "a_signed": False,
                    "b_bits": 4},
    "dense-4of4": {"n": 4, "m": 4, "rows": 2, "cols": 3},
    "1of2-s16xu16": {"n": 1, "m": 2, "rows": 2, "cols": 2, "a_bits": 16, "b_bits": 16,
                     "b_signed": False, "max_k": 64},
    "2of4-opt1": {"n": 2, "m": 4, "rows": 2, "cols": 2, "mac": "opt1"},
}


# Dual-side engines: grid smaller than, equal to and not dividing the tile; 4- and 16-bit.
BITMAP_CONFIGS = {
    "2x2-tile4": {"rows": 2, "cols": 2, "m_tile": 4, "n_tile": 4},
    "3x2-tile5x7": {"rows": 3, "cols": 2, "m_tile": 5, "n_tile": 7},
    "2x2-tile2": {"rows": 2, "cols": 2, "m_tile": 2, "n_tile": 2},
    "1x4-tile6x8-u4xs4": {"rows": 1, "cols": 4, "m_tile": 6, "n_tile": 8, "a_bits": 4,
                          "a_signed": False, "b_bits": 4},
    "2x2-tile4-s16": {"rows": 2, "cols": 2, "m_tile": 4, "n_tile": 3, "a_bits": 16, "b_bits": 16,
                      "max_k": 64},
}


def bitmap_config(name):
    return validate({"family": "sparse", "format": "bitmap", **BITMAP_CONFIGS[name]}, f"<{name}>")


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name", BITMAP_CONFIGS)
def test_sim_bitmap(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    vectors = 900 if simulator == "verilator" else 180
    result = simulate(bitmap_config(name), simulator, seed=1357, vectors=vectors, workdir=tmp_path,
                      quiet=True)
    assert result.passed, result.summary()


@pytest.mark.parametrize("name", BITMAP_CONFIGS)
def test_lint_bitmap(name, tmp_path):
    design = generator("sparse").build(bitmap_config(name))
    v_path, _ = write_design(design, tmp_path)
    ok, output = tools.verilator_lint(v_path, design.top)
    assert ok, output[-3000:]


def nm_config(name):
    return validate({"family": "sparse", "format": "nm", **NM_CONFIGS[name]}, f"<{name}>")


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name", NM_CONFIGS)
def test_sim_nm(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    vectors = 900 if simulator == "verilator" else 180
    result = simulate(nm_config(name), simulator, seed=2468, vectors=vectors, workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


@pytest.mark.parametrize("name", NM_CONFIGS)
def test_lint_nm(name, tmp_path):
    design = generator("sparse").build(nm_config(name))
    v_path, _ = write_design(design, tmp_path)
    ok, output = tools.verilator_lint(v_path, design.top)
    assert ok, output[-3000:]


def test_nm_manifest_states_speedup_and_error_flag(tmp_path):
    design = generator("sparse").build(nm_config("2of8-g2"))
    manifest = json.loads(write_design(design, tmp_path)[1].read_text())
    perf = manifest["performance"]
    assert perf["multipliers"] == 2 * 2 * 4 and perf["macs_per_cycle"] == 2 * 2 * 16
    assert perf["speedup_over_dense_same_multipliers"] == 4.0
    status = next(r for r in manifest["registers"] if r["name"] == "STATUS")
    assert [f["name"] for f in status["fields"]] == ["BUSY", "DONE", "ERROR"]
    geometry = manifest["geometry"]
    assert (geometry["n"], geometry["m"], geometry["k_per_step"], geometry["kept_per_step"]) == (2, 8, 16, 4)
    ports = {p["name"]: p["width"] for p in manifest["ports"]}
    assert ports["a__payload"] == 2 * 4 * (8 + 3)     # rows x kept x (value + 3-bit index)
    assert ports["b__payload"] == 16 * 2 * 8
