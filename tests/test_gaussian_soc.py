"""The rasteriser's SoC and the driver's frame path: garden tiles rendered through the native
Verilator model of the SoC, bit-exact with ``render_fixed`` and cycle-exact with the cycle
model; link faults survived; bad requests refused before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelsmith.config import load, validate
from accelsmith.flows.native import NativeSoC, SimTransport, build_native
from accelsmith.generators.soc import build_soc
from accelsmith.models.gaussian import fixed
from accelsmith.models.gaussian.schedule import buffer_slots, count_fetches, tile_order
from accelsmith.registry import generator
from accelsmith.sw_driver.accelerator import Accelerator, DriverError
from accelsmith.sw_driver.gaussian import tiles_in
from accelsmith.sw_driver.transport import Transport

from .test_soc import FaultyTransport

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_garden.npz"
CONFIG = "gaussian_16lanes_coverage"
needs_garden = pytest.mark.skipif(not GARDEN.is_file(), reason=f"garden scene not found at {GARDEN}")


@pytest.fixture(scope="module")
def soc():
    config = load(CONFIG)
    design = build_soc(generator(config.family).build(config))
    return design, build_native(design.verilog(), design.top, quiet=True)


@pytest.fixture(scope="module")
def view():
    """Garden camera 1 with depth weights, binned and quantised: (bins, fv, w_q)."""
    from accelsmith.models.gaussian.pipeline import fixed_view, load_scene

    scene, cams = load_scene(GARDEN)
    return fixed_view(scene, cams[1], depth_weight=(0.05, 1.0))


def _reference(bins, fv, w_q, region, blend, bg_q):
    x, y, w, h = region
    img = fixed.render_fixed(bins, fv, w_q, blend, bg_q, tiles=tiles_in(bins, region))
    return img[y:y + h, x:x + w]


@needs_garden
@pytest.mark.parametrize("region", [(290, 180, 40, 40), (600, 392, 48, 28)],
                         ids=["centre", "bottom-right-edge"])
def test_cropped_frame_is_bit_exact_and_cycle_exact(soc, view, region):
    """A region of a garden frame (the heavy centre; the image's edge, whose tiles hold pixels
    beyond it) through the SoC: the pixels equal render_fixed and the rasteriser's CYCLES equal
    the cycle model, run by run."""
    design, lib = soc
    bins, fv, w_q = view
    bg_q = (410, 2048, 3686)
    with Accelerator(design.manifest, SimTransport(NativeSoC(lib))) as acc:
        result = acc.rasterise(bins, fv, w_q, bg_q, region)
    assert result.image_q.shape == (region[3], region[2], 3)
    want = _reference(bins, fv, w_q, region, "coverage", bg_q)
    assert np.array_equal(result.image_q, want), np.argwhere(result.image_q != want)[:5]
    assert result.engine_cycles == result.model_cycles
    assert result.model_cycles < result.bound_cycles        # pair skipping took effect
    assert result.entries == sum(len(bins.tile(t)) for t in tiles_in(bins, region))
    # The Gaussian buffer: the hardware's fetch count is the LRU model's for the visit.
    inside = set(tiles_in(bins, region))
    visit = [t for t in tile_order("hilbert", bins.proj.tiles_x, bins.proj.tiles_y) if t in inside]
    assert result.order == "hilbert"
    assert result.fetches == count_fetches(bins, np.array(visit), 2048) < result.entries


@needs_garden
def test_buffer_slots_fetch_what_count_fetches_counts(view):
    """The driver's slot assignment over a whole garden frame: its misses are count_fetches's
    for every order and size, a resident Gaussian's slot is the one it was fetched into, and
    no two resident Gaussians share a slot."""
    bins, _, _ = view
    for order in ("hilbert", "pi"):
        visit = tile_order(order, bins.proj.tiles_x, bins.proj.tiles_y)
        for size in (64, 2048):
            where = {}          # slot -> Gaussian resident there
            fetches = 0
            for t, (fetch, slot) in zip(visit, buffer_slots(bins, visit, size)):
                for g, f, k in zip(bins.tile(int(t)).tolist(), fetch, slot):
                    assert 0 <= k < size
                    if f:
                        fetches += 1
                        where[k] = g
                    else:
                        assert where[k] == g
            assert fetches == count_fetches(bins, visit, size)


@needs_garden
def test_frame_survives_link_faults(soc, view):
    """A corrupted write and a corrupted reply byte cost retries, not a wrong pixel."""
    design, lib = soc
    bins, fv, w_q = view
    region = (300, 200, 20, 20)
    faulty = FaultyTransport(SimTransport(NativeSoC(lib)), flip_tx={20_000}, flip_rx={900})
    with Accelerator(design.manifest, faulty) as acc:
        result = acc.rasterise(bins, fv, w_q, (0, 0, 0), region)
    assert result.retries >= 2
    assert np.array_equal(result.image_q, _reference(bins, fv, w_q, region, "coverage", (0, 0, 0)))


@needs_garden
def test_network_mode_gives_mlp_fixed_weights(soc, view):
    """The garden view's network inputs through the SoC's network mode (more Gaussians than
    one run holds): the weights equal mlp_fixed, the cycles the cycle model; a frame region
    rendered with them right after (the mode switched back) is bit-exact."""
    from accelsmith.models.gaussian.sorter import SorterMLP

    design, lib = soc
    bins, fv, _ = view
    q = fixed.quantise_mlp(SorterMLP.load(Path(__file__).resolve().parents[1] / "docs" / "results"
                                          / "gaussian_sorter_coverage_mlp.npz"))
    features = fv.features[:9000]
    with Accelerator(design.manifest, SimTransport(NativeSoC(lib))) as acc:
        net = acc.network_weights(q, features)
        w_q = np.zeros(len(fv.features), np.int64)
        w_q[:len(features)] = net.w_q
        frame = acc.rasterise(bins, fv, w_q, (0, 0, 0), (300, 200, 16, 16))
    assert net.runs == 3
    assert np.array_equal(net.w_q, fixed.mlp_fixed(q, features))
    assert net.engine_cycles == net.model_cycles
    assert np.array_equal(frame.image_q, _reference(bins, fv, w_q, (300, 200, 16, 16), "coverage",
                                                    (0, 0, 0)))


class _Unused(Transport):
    """A link that must not be used: the request is refused before anything is sent."""

    name = "unused"

    def write(self, data):
        raise AssertionError("the driver sent bytes for a request it should refuse")

    def read(self, n, timeout):
        raise AssertionError("the driver read for a request it should refuse")


@needs_garden
def test_tile_larger_than_the_record_buffer_is_refused(view):
    bins, fv, w_q = view
    config = validate({"family": "gaussian", "soc_a_beats": 16}, "small.yaml")
    design = build_soc(generator("gaussian").build(config))
    acc = Accelerator(design.manifest, _Unused(), check_identity=False)
    with pytest.raises(DriverError, match=r"tile \(\d+, \d+\) has \d+ entries; the SoC's A "
                                          r"buffer holds 16 records \(config key soc_a_beats"):
        acc.rasterise(bins, fv, w_q, region=(300, 200, 16, 16))
    with pytest.raises(DriverError, match="not inside the 648x420 image"):
        acc.rasterise(bins, fv, w_q, region=(640, 0, 16, 16))


def test_families_refuse_each_others_workloads():
    gaussian = build_soc(generator("gaussian").build(load(CONFIG)))
    gemm = build_soc(generator("bitweight").build(load("os_4x4_int8")))
    with pytest.raises(DriverError, match="gaussian SoC: it renders tiles"):
        Accelerator(gaussian.manifest, _Unused(), check_identity=False).gemm(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(DriverError, match="bitweight SoC: it runs GEMMs"):
        Accelerator(gemm.manifest, _Unused(), check_identity=False).rasterise(None, None, None)


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "run", *args],
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@needs_garden
def test_run_renders_a_cropped_frame_from_the_command_line(soc, tmp_path):
    from PIL import Image

    out = tmp_path / "frame.png"
    sorter = Path(__file__).resolve().parents[1] / "docs" / "results" / "gaussian_sorter_coverage_mlp.npz"
    code, stdout, stderr = _cli(CONFIG, "--scene", str(GARDEN), "--camera", "2", "--crop",
                                "320,208,32,16", "--sorter", str(sorter), "-o", str(out))
    assert code == 0, stdout + stderr
    assert "check: the network's weights equal mlp_fixed (bit-exact)" in stdout
    assert "check: the frame equals render_fixed (bit-exact)" in stdout
    assert "PSNR against the sorted float render" in stdout
    assert Image.open(out).size == (32, 16)


@pytest.mark.parametrize("args, pattern", [
    ((CONFIG, "-o", "x.png"), "run needs --scene SCENE and -o frame.png"),
    ((CONFIG, "--scene", str(GARDEN), "--a", "A.npy", "-o", "x.png"), "--a, --b and --prune are for GEMM"),
    (("os_4x4_int8", "--scene", str(GARDEN)), "--scene and --crop are for gaussian configs"),
    ((CONFIG, "--scene", str(GARDEN), "--crop", "0,0,0,5", "-o", "x.png"), "expected X,Y,WIDTH,HEIGHT"),
    ((CONFIG, "--scene", str(GARDEN), "--crop", "640,400,32,32", "-o", "x.png"),
     "reaches beyond the 648x420 image"),
    ((CONFIG, "--scene", str(GARDEN), "--camera", "99", "-o", "x.png"), "camera 99 does not exist; allowed 0..2"),
    ((CONFIG, "--scene", str(GARDEN), "--sorter", "missing.npz", "-o", "x.png"), "missing.npz"),
], ids=["no-scene", "gemm-operands", "scene-on-gemm", "empty-crop", "crop-outside", "camera",
        "sorter-missing"])
def test_run_frame_bad_input_is_one_clear_error(args, pattern):
    if str(GARDEN) in args and not GARDEN.is_file():
        pytest.skip(f"garden scene not found at {GARDEN}")
    code, stdout, stderr = _cli(*args)
    assert code != 0
    assert pattern in stderr, stderr
    assert "Traceback" not in stderr


@needs_garden
def test_a_sweep_run_step_renders_the_same_checked_crop(soc, tmp_path):
    """The sweep's ``run`` step on a gaussian config: the same driver path as ``accelsmith run``
    (network mode, then the tiles), bit-exact, its cycles equal to the cycle model's."""
    from accelsmith.flows.sweep import parse_sweep, run_sweep

    sorter = Path(__file__).resolve().parents[1] / "docs" / "results" / "gaussian_sorter_coverage_mlp.npz"
    sweep = parse_sweep({"base": CONFIG, "steps": {"run": {
        "scene": str(GARDEN), "camera": 2, "crop": "320,208,32,16", "sorter": str(sorter),
        "time_limit_min": 15}}}, "<test>")
    run = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    record = run.records[0]["run"]
    assert record["ok"], record
    result = record["result"]
    assert result["bit_exact"] is True and result["network_exact"] is True
    assert result["tiles"] == 2 * 1 and result["engine_cycles"] == result["model_cycles"] > 0
    assert result["bound_cycles"] >= result["model_cycles"] and result["psnr_db"] > 10
