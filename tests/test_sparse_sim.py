"""The sparse family's engines against the golden model on both simulators."""

import json

import pytest

from accelsmith.config import validate
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate
from accelsmith.registry import generator
from accelsmith.generators import write_design

# N:M: every pattern of the evidence table, dense mode, odd shapes and widths, opt1 PEs.
# Dual-side: grid smaller than, equal to and not dividing the tile; 4- and 16-bit operands.
CONFIGS = {
    "nm-2of4": {"format": "nm", "n": 2, "m": 4, "rows": 3, "cols": 2},
    "nm-1of4": {"format": "nm", "n": 1, "m": 4, "rows": 2, "cols": 3},
    "nm-2of8-g2": {"format": "nm", "n": 2, "m": 8, "groups": 2, "rows": 2, "cols": 2},
    "nm-1of8": {"format": "nm", "n": 1, "m": 8, "rows": 2, "cols": 2},
    "nm-4of8": {"format": "nm", "n": 4, "m": 8, "rows": 2, "cols": 2},
    "nm-3of16-u4xs4": {"format": "nm", "n": 3, "m": 16, "rows": 2, "cols": 2, "a_bits": 4,
                       "a_signed": False, "b_bits": 4},
    "nm-dense-4of4": {"format": "nm", "n": 4, "m": 4, "rows": 2, "cols": 3},
    "nm-1of2-s16xu16": {"format": "nm", "n": 1, "m": 2, "rows": 2, "cols": 2, "a_bits": 16,
                        "b_bits": 16, "b_signed": False, "max_k": 64},
    "nm-2of4-opt1": {"format": "nm", "n": 2, "m": 4, "rows": 2, "cols": 2, "mac": "opt1"},
    "bitmap-2x2-tile4": {"format": "bitmap", "rows": 2, "cols": 2, "m_tile": 4, "n_tile": 4},
    "bitmap-3x2-tile5x7": {"format": "bitmap", "rows": 3, "cols": 2, "m_tile": 5, "n_tile": 7},
    "bitmap-2x2-tile2": {"format": "bitmap", "rows": 2, "cols": 2, "m_tile": 2, "n_tile": 2},
    "bitmap-1x4-tile6x8-u4xs4": {"format": "bitmap", "rows": 1, "cols": 4, "m_tile": 6,
                                 "n_tile": 8, "a_bits": 4, "a_signed": False, "b_bits": 4},
    "bitmap-2x2-tile4-s16": {"format": "bitmap", "rows": 2, "cols": 2, "m_tile": 4, "n_tile": 3,
                             "a_bits": 16, "b_bits": 16, "max_k": 64},
}


# Icarus runs these in the default tier (two of each format, the widest and narrowest operands);
# the rest run on Icarus in the `slow` tier. Verilator runs every config by default.
ICARUS_DEFAULT = {"nm-2of4", "nm-3of16-u4xs4", "nm-1of2-s16xu16", "nm-dense-4of4",
                  "bitmap-3x2-tile5x7", "bitmap-1x4-tile6x8-u4xs4", "bitmap-2x2-tile4-s16"}
SIM_CASES = [pytest.param(name, sim, marks=() if sim == "verilator" or name in ICARUS_DEFAULT
                          else pytest.mark.slow, id=f"{name}-{sim}")
             for name in CONFIGS for sim in ("verilator", "icarus")]


def config(name):
    return validate({"family": "sparse", **CONFIGS[name]}, f"<{name}>")


@pytest.mark.parametrize("name,simulator", SIM_CASES)
def test_sim(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    vectors = 900 if simulator == "verilator" else 180
    result = simulate(config(name), simulator, seed=2468, vectors=vectors, workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


@pytest.mark.parametrize("name", CONFIGS)
def test_lint(name, tmp_path):
    design = generator("sparse").build(config(name))
    v_path, _ = write_design(design, tmp_path)
    ok, output = tools.verilator_lint(v_path, design.top)
    assert ok, output[-3000:]


def test_nm_manifest_states_speedup_and_error_flag(tmp_path):
    design = generator("sparse").build(config("nm-2of8-g2"))
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
