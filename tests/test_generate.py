"""Generation: every reference config gives deterministic Verilog that lints and compiles."""

import json
import subprocess

import pytest

from accelsmith.config import load, validate
from accelsmith.flows import tools
from accelsmith.generators import write_design
from accelsmith.hdl.dsp import sim_models_for
from accelsmith.registry import generator, reference_configs

from .test_sim import MAC_CONFIGS

CONFIGS = reference_configs()
# A config's tests share one worker (pytest-xdist --dist loadgroup), so it is generated once.
# The 64-lane rasteriser takes about a minute to generate and lint: its 16-lane sibling stands
# for the family in the default tier.
SLOW_GENERATION = {"gaussian_64lanes_authors"}
BY_CONFIG = [pytest.param(p, id=p.stem, marks=(pytest.mark.xdist_group(p.stem),)
                          + ((pytest.mark.slow,) if p.stem in SLOW_GENERATION else ()))
             for p in CONFIGS]


class _Generated(dict):
    """Each reference config's (Verilog, manifest) paths, generated on first use, so a test
    worker elaborates only the configs its tests ask for (the rasterisers take tens of seconds)."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, stem):
        config = load(next(p for p in CONFIGS if p.stem == stem))
        self[stem] = write_design(generator(config.family).build(config), self.root / stem)
        return self[stem]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return _Generated(tmp_path_factory.mktemp("gen"))


@pytest.mark.parametrize("path", BY_CONFIG)
def test_verilator_lint(generated, path):
    v_path, m_path = generated[path.stem]
    ok, output = tools.verilator_lint(v_path, json.loads(m_path.read_text())["top"])
    assert ok, output[-3000:]


@pytest.mark.parametrize("path", BY_CONFIG)
def test_icarus_compiles(generated, path, tmp_path):
    if tools.iverilog() is None:
        pytest.skip("iverilog not on PATH (optional; .ci/run installs it)")
    v_path, _ = generated[path.stem]
    models = [str(p) for p in sim_models_for(v_path.read_text())]     # ECP5 DSP blocks
    proc = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "a.vvp"), str(v_path), *models],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_deterministic(tmp_path):
    cfg = load(CONFIGS[0])
    first = write_design(generator("bitweight").build(cfg), tmp_path / "1")
    second = write_design(generator("bitweight").build(cfg), tmp_path / "2")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_manifest_contents(generated):
    _, m_path = generated["os_4x4_u4xs8"]
    manifest = json.loads(m_path.read_text())
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["a__payload"] == {"name": "a__payload", "direction": "input", "width": 16}
    assert ports["c__payload"]["width"] == 4 * 20 + 1    # u4 x s8, K <= 256 -> 20-bit sums + last
    assert ports["c__ready"]["direction"] == "input"
    assert [r["name"] for r in manifest["registers"]] == ["CTRL", "STATUS", "K_STEPS", "CYCLES"]
    assert manifest["geometry"]["acc"] == {"bits": 20, "signed": True}
    assert manifest["performance"]["macs_per_cycle"] == 16
    assert manifest["performance"]["pipeline_latency"] == 7
    assert manifest["config"]["a_signed"] is False


@pytest.mark.parametrize("arch,extra,macs,latency", [
    ("systolic_os", {"rows": 3, "cols": 5}, 15, 7),
    ("systolic_ws", {"rows": 3, "cols": 5, "m_tile": 2}, 15, 8),
    ("matrix2d", {"rows": 3, "cols": 5}, 15, 1),
    ("tree", {"units": 3, "tree_k": 5}, 15, 2),
    ("cube", {"cube_n": 3}, 27, 1),
    # Each pipeline stage adds one tick of latency and nothing to the throughput; pipelined
    # output-stationary cores add one more, their zeroing edge register.
    ("systolic_os", {"rows": 3, "cols": 5, "pipeline": 2}, 15, 10),
    ("systolic_ws", {"rows": 3, "cols": 5, "m_tile": 2, "pipeline": 1}, 15, 9),
    ("matrix2d", {"rows": 3, "cols": 5, "pipeline": 1}, 15, 3),
    ("tree", {"units": 3, "tree_k": 5, "pipeline": 1}, 15, 3),
    ("cube", {"cube_n": 3, "pipeline": 2}, 27, 4),
])
def test_architectures_report_throughput(arch, extra, macs, latency):
    design = generator("bitweight").build(validate({"family": "bitweight", "architecture": arch, **extra}))
    assert design.manifest["performance"]["macs_per_cycle"] == macs
    assert design.manifest["performance"]["pipeline_latency"] == latency
    assert design.component.core.__doc__


def test_narrow_accumulator_documented():
    design = generator("bitweight").build(validate({"family": "bitweight", "architecture": "matrix2d",
                                                    "acc_bits": 12, "acc_wraps": True}))
    assert design.manifest["geometry"]["acc"]["bits"] == 12
    assert "wrap modulo 2**12" in design.manifest["semantics"]["accumulator"]
    assert design.manifest["semantics"]["never_overflows_up_to_k"] == 0


@pytest.mark.parametrize("name", MAC_CONFIGS)
def test_verilator_lint_every_mac(name, tmp_path):
    """Every (architecture, mac) pair and operand width the simulations use also lints clean."""
    design = generator("bitweight").build(validate({"family": "bitweight", **MAC_CONFIGS[name]}))
    v_path, _ = write_design(design, tmp_path)
    ok, output = tools.verilator_lint(v_path, design.top)
    assert ok, output[-3000:]
