"""cocotb against the golden model: every architecture, both simulators, 2,000 tiles each."""

import pytest

from accelsmith.config import load
from accelsmith.flows import tools
from accelsmith.flows.sim import simulate

from .conftest import CONFIGS

SIM_CONFIGS = ["os_4x4_int8", "ws_4x4_int8", "matrix2d_4x4_int8", "tree_4x4_int8", "cube_4_int8",
               "os_4x4_u4xs8", "os_4x4_int8_acc12"]


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name", SIM_CONFIGS)
def test_sim(name, simulator, tmp_path):
    if simulator == "icarus" and tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    result = simulate(load(CONFIGS / f"{name}.yaml"), simulator, seed=1234, vectors=2000,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["os_16x16_int8", "ws_16x16_int8", "matrix2d_16x16_int8",
                                  "tree_16x16_int8", "cube_8_int8"])
def test_sim_standard_sizes(name, tmp_path):
    result = simulate(load(CONFIGS / f"{name}.yaml"), "verilator", seed=99, vectors=5000,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()


def test_sim_large_enough_for_split_cpp(tmp_path):
    """An 8x8 array makes Verilator split its C++ output (precompiled headers in play)."""
    result = simulate(load(CONFIGS / "os_8x8_int8.yaml"), "verilator", seed=8, vectors=200,
                      workdir=tmp_path, quiet=True)
    assert result.passed, result.summary()
