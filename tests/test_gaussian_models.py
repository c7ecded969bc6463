"""The gaussian family's algorithm layer: scenes, reference renderer, OIT blends, sorter
training, axis-oriented evaluation, tile schedules, fixed-point model."""

from pathlib import Path

import numpy as np
import pytest

from accelsmith.models.gaussian import axis, fixed, oit, schedule, sorter
from accelsmith.models.gaussian.camera import Camera, interpolate, load_npz, orbit, path_through
from accelsmith.models.gaussian.metrics import psnr, ssim
from accelsmith.models.gaussian.render import (SH_C1, bin_tiles, eval_sh, project,
                                               render_sorted)
from accelsmith.models.gaussian.scene import (SH_C0, GaussianScene, SceneError, read_ply,
                                              scene_from_points, synthetic_scene, write_ply)

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_garden.npz"
needs_garden = pytest.mark.skipif(not GARDEN.is_file(),
                                  reason=f"garden scene not found at {GARDEN}")


def identity_camera(w=64, h=48, fx=100.0, fy=120.0):
    return Camera(np.eye(4), fx, fy, w / 2, h / 2, w, h)


def one_gaussian(pos, scale, opacity=0.5, rgb=(0.8, 0.4, 0.2)):
    return GaussianScene(np.array([pos]), np.array([scale]), np.array([[1.0, 0, 0, 0]]),
                         np.array([opacity]), ((np.array([rgb]) - 0.5) / SH_C0)[:, None, :])


@pytest.fixture(scope="module")
def small_view():
    scene = synthetic_scene(400, seed=3, sh_degree=2)
    cam = Camera.look_at([0.3, -4.0, 0.8], [0, 0, 0], [0, 0, 1], 70, 70, 40, 28, 80, 56)
    return scene, cam, bin_tiles(project(scene, cam))


# ------------------------------------------------------------------ scenes

def test_ply_round_trip_all_sh_degrees(tmp_path):
    for degree in range(4):
        scene = synthetic_scene(50, seed=degree, sh_degree=degree)
        back = read_ply(write_ply(scene, tmp_path / f"s{degree}.ply"))
        assert back.sh_degree == degree
        for name in ("means", "scales", "quats", "opacities", "sh"):
            np.testing.assert_allclose(getattr(back, name), getattr(scene, name),
                                       rtol=2e-6, atol=2e-6, err_msg=name)


def test_ply_layout_is_the_3dgs_one(tmp_path):
    from plyfile import PlyData

    path = write_ply(synthetic_scene(5, sh_degree=3), tmp_path / "s.ply")
    names = PlyData.read(str(path))["vertex"].data.dtype.names
    assert names[:9] == ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
    assert names[9:54] == tuple(f"f_rest_{i}" for i in range(45))
    assert names[54:] == ("opacity", "scale_0", "scale_1", "scale_2",
                          "rot_0", "rot_1", "rot_2", "rot_3")


def _ply_with(tmp_path, edit, name="bad.ply"):
    from numpy.lib.recfunctions import repack_fields
    from plyfile import PlyData, PlyElement

    path = write_ply(synthetic_scene(20, sh_degree=1), tmp_path / "good.ply")
    data = PlyData.read(str(path))["vertex"].data.copy()
    data = repack_fields(edit(data))
    out = tmp_path / name
    PlyData([PlyElement.describe(data, "vertex")]).write(str(out))
    return out


@pytest.mark.parametrize("edit, message", [
    (lambda d: d[[n for n in d.dtype.names if n != "scale_1"]], "missing property scale_1"),
    (lambda d: d[[n for n in d.dtype.names if not n.startswith("rot")]], "rot_0, rot_1"),
    (lambda d: d[[n for n in d.dtype.names if n != "f_rest_3"]], "f_rest_* properties"),
    (lambda d: (d.__setitem__("x", np.where(np.arange(len(d)) == 4, np.nan, d["x"])), d)[1],
     "means of Gaussian 4 is not finite"),
    (lambda d: (d.__setitem__("scale_2", np.where(np.arange(len(d)) == 7, -np.inf,
                                                  d["scale_2"])), d)[1],
     "scale of vertex 7 is not finite"),
    (lambda d: (d.__setitem__("rot_0", 0), d.__setitem__("rot_1", 0), d.__setitem__("rot_2", 0),
                d.__setitem__("rot_3", 0), d)[-1], "zero quaternion"),
])
def test_bad_ply_files_name_the_problem(tmp_path, edit, message):
    path = _ply_with(tmp_path, edit)
    with pytest.raises(SceneError) as exc:
        read_ply(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_truncated_and_missing_ply(tmp_path):
    path = write_ply(synthetic_scene(100, sh_degree=3), tmp_path / "s.ply")
    raw = path.read_bytes()
    cut = tmp_path / "cut.ply"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SceneError, match="not a readable PLY"):
        read_ply(cut)
    with pytest.raises(SceneError, match="no such file"):
        read_ply(tmp_path / "absent.ply")


def test_zero_scale_in_arrays_is_rejected():
    with pytest.raises(SceneError, match="scales must be > 0"):
        one_gaussian([0, 0, 4], [0.1, 0.0, 0.1])


@needs_garden
def test_garden_initialisations():
    scene, cams = load_npz(GARDEN)
    assert len(scene) == 138766 and len(cams) == 3
    assert np.all(scene.opacities == 0.1) and np.all(scene.quats[:, 0] == 1)
    assert np.all(scene.scales[:, 0] == scene.scales[:, 1]) and np.all(scene.scales > 0)
    rnd, _ = load_npz(GARDEN, init="random", seed=4)
    rnd2, _ = load_npz(GARDEN, init="random", seed=4)
    assert (np.abs(rnd.means) <= 2).all() and len(rnd) < len(scene)
    assert (rnd.scales >= 1e-4).all() and (rnd.scales <= 0.02).all()
    np.testing.assert_array_equal(rnd.quats, rnd2.quats)


def test_knn_scale_is_mean_distance_to_three_neighbours():
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3], [10, 10, 10.0]])
    scene = scene_from_points(pts, np.zeros((5, 3), np.uint8))
    assert scene.scales[0, 0] == pytest.approx((1 + 2 + 3) / 3)


def test_camera_paths():
    a = Camera.look_at([0, -4, 0], [0, 0, 0], [0, 0, 1], 50, 50, 32, 24, 64, 48)
    b = Camera.look_at([4, 0, 0], [0, 0, 0], [0, 0, 1], 50, 50, 32, 24, 64, 48)
    np.testing.assert_allclose(interpolate(a, b, 0).viewmat, a.viewmat, atol=1e-12)
    np.testing.assert_allclose(interpolate(a, b, 1).viewmat, b.viewmat, atol=1e-12)
    mid = interpolate(a, b, 0.5)
    np.testing.assert_allclose(mid.position, [2, -2, 0], atol=1e-12)
    np.testing.assert_allclose(mid.rotation @ mid.rotation.T, np.eye(3), atol=1e-12)
    assert len(path_through([a, b, a], 7)) == 7
    ring = orbit([0, 0, 0], 3.0, 1.0, 8, a)
    for cam in ring:
        np.testing.assert_allclose(np.linalg.norm(cam.position[:2]), 3.0)
        assert cam.forward @ (-cam.position / np.linalg.norm(cam.position)) == pytest.approx(1)


# ------------------------------------------------------------------ reference renderer

def test_projection_hand_computed():
    cam = identity_camera()
    proj = project(one_gaussian([0, 0, 4], [0.1, 0.1, 0.1]), cam)
    np.testing.assert_allclose(proj.mean2d[0], [32, 24])
    np.testing.assert_allclose(proj.cov2d[0], [6.55, 0, 9.3])
    np.testing.assert_allclose(proj.conic[0], [1 / 6.55, 0, 1 / 9.3])
    assert proj.radius[0] == 10  # ceil(3 sqrt(9.3))
    # off-axis: J = [[25, 0, -6.25], [0, 30, 0]] at (1, 0, 4)
    proj = project(one_gaussian([1, 0, 4], [0.1, 0.1, 0.1]), cam)
    np.testing.assert_allclose(proj.cov2d[0], [0.01 * (625 + 39.0625) + 0.3, 0, 9.3])
    np.testing.assert_allclose(proj.mean2d[0], [57, 24])


def test_near_plane_culls():
    assert len(project(one_gaussian([0, 0, 0.15], [0.1] * 3), identity_camera())) == 0


def test_sh_hand_computed():
    sh = np.zeros((1, 4, 3))
    sh[0, 0], sh[0, 1], sh[0, 2], sh[0, 3] = 0.5, 0.3, 0.2, -0.1
    d = np.array([[0.0, 0.6, 0.8]])
    expect = SH_C0 * 0.5 - SH_C1 * 0.6 * 0.3 + SH_C1 * 0.8 * 0.2 + 0.5
    np.testing.assert_allclose(eval_sh(sh, d)[0], expect)
    assert eval_sh(np.full((1, 1, 3), -5.0), d).min() == 0  # clamped at 0


def test_single_gaussian_closed_form():
    cam = identity_camera()
    o, rgb, bg = 0.05, np.array([0.8, 0.4, 0.2]), np.array([0.1, 0.2, 0.3])
    img = render_sorted(bin_tiles(project(one_gaussian([0, 0, 4], [0.1] * 3, o, rgb), cam)), bg)
    ys, xs = np.mgrid[0:48, 0:64] + 0.5
    power = -0.5 * ((xs - 32) ** 2 / 6.55 + (ys - 24) ** 2 / 9.3)
    alpha = np.minimum(0.99, o * np.exp(power))
    alpha[alpha < 1 / 255] = 0
    expect = alpha[..., None] * rgb + (1 - alpha[..., None]) * bg
    np.testing.assert_allclose(img, expect, atol=1e-12)
    assert (alpha > 0).sum() > 50


def test_transmittance_stop_and_alpha_clamp():
    cam = identity_camera()
    # 30 opaque Gaussians on the axis: each alpha clamps to 0.99; after 2, T = 1e-4 exactly
    # would be reached, so the third is skipped and the blend stops.
    n = 30
    scene = GaussianScene(np.c_[np.zeros(n), np.zeros(n), 4 + 0.1 * np.arange(n)],
                          np.full((n, 3), 0.3), np.tile([1.0, 0, 0, 0], (n, 1)),
                          np.full(n, 0.999), np.zeros((n, 1, 3)))
    scene.sh[:, 0, 0] = (np.linspace(1, 0, n) - 0.5) / SH_C0
    img = render_sorted(bin_tiles(project(scene, cam)))
    centre = img[23, 31, 0]
    colours = np.linspace(1, 0, n)
    a = np.minimum(0.99, 0.999 * np.exp(-0.5 * (0.5 ** 2) * project(scene, cam).conic[:, 0]))
    t, expect = 1.0, 0.0
    for i in range(n):
        if t * (1 - a[i]) < 1e-4:
            break
        expect += colours[i] * a[i] * t
        t *= 1 - a[i]
    assert centre == pytest.approx(expect, abs=1e-12)


# ------------------------------------------------------------------ OIT blends

def test_oit_is_order_independent(small_view):
    scene, cam, bins = small_view
    w = oit.depth_weight(bins.proj.depth, 0.5, 1.0)
    rng = np.random.default_rng(1)
    shuffled = bin_tiles(bins.proj, order=rng.permutation(len(bins.proj)))
    assert not np.array_equal(shuffled.entries, bins.entries)
    for mode in oit.BLENDS:
        np.testing.assert_allclose(oit.render_oit(shuffled, w, mode),
                                   oit.render_oit(bins, w, mode), atol=1e-12)
    # permuting the scene itself
    perm = rng.permutation(len(scene))
    proj2 = project(scene.subset(perm), cam)
    w2 = oit.depth_weight(proj2.depth, 0.5, 1.0)
    np.testing.assert_allclose(oit.render_oit(bin_tiles(proj2), w2),
                               oit.render_oit(bins, w), atol=1e-12)
    # the sorted blend is not
    assert not np.allclose(render_sorted(shuffled), render_sorted(bins), atol=1e-3)


def test_coverage_blend_of_one_gaussian_equals_sorted():
    bins = bin_tiles(project(one_gaussian([0, 0, 4], [0.1] * 3, 0.6), identity_camera()))
    bg = (0.2, 0.3, 0.4)
    np.testing.assert_allclose(oit.render_oit(bins, np.ones(1), "coverage", bg),
                               render_sorted(bins, bg), atol=1e-12)


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, 3))
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, np.clip(a + 0.01, 0, 1)) == pytest.approx(40.0, abs=0.5)
    assert ssim(a, rng.random((40, 50, 3))) < 0.2


# ------------------------------------------------------------------ sorter

def test_sorter_gradients_match_finite_differences(small_view):
    scene, cam, bins = small_view
    vp = sorter.view_pairs(bins, render_sorted(bins), 1.0, 0)
    m = len(vp.proj)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 1, m)
    col, op = vp.proj.colour.copy(), vp.proj.opacity.copy()
    for mode in oit.BLENDS:
        loss, grads = sorter._view_loss(vp, w, col, op, mode, (0.2, 0.3, 0.4), True)
        for k, arr in enumerate((w, col, op)):
            i = np.unravel_index(np.argmax(np.abs(grads[k])), grads[k].shape)
            args = [w, col, op]
            args[k] = arr.copy()
            args[k][i] += 1e-6
            num = (sorter._view_loss(vp, *args, mode, (0.2, 0.3, 0.4), False)[0] - loss) / 1e-6
            assert grads[k][i] == pytest.approx(num, rel=1e-3)
    mlp = sorter.SorterMLP.init(seed=2)
    assert mlp.n_params == 89
    x = mlp.features(vp.proj.depth, cam.forward, op)
    out, acts = mlp.forward(x, cache=True)
    g = rng.normal(size=len(out))
    gw, gb, gx = mlp.backward(acts, g)
    mlp.b[1][2] += 1e-6
    assert gb[1][2] == pytest.approx((mlp.forward(x) @ g - out @ g) / 1e-6, rel=1e-3)


def test_training_lowers_the_loss(small_view, tmp_path):
    scene, cam, _ = small_view
    cams = orbit([0, 0, 0], 4.0, 0.8, 3, cam)
    views = sorter.prepare_views(scene, cams, pixel_fraction=1.0)
    res = sorter.train_sorter(scene, views, steps=60, lr=0.02, batch_views=3)
    assert res.losses[-1] < 0.8 * res.losses[0]
    back = sorter.SorterMLP.load(res.mlp.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.w[1], res.mlp.w[1])
    tuned = sorter.train_sorter(scene, views, steps=60, lr=0.02, batch_views=3, finetune=True)
    assert tuned.losses[-1] < res.losses[-1]
    assert not np.array_equal(sorter.finetuned_scene(scene, tuned).opacities, scene.opacities)


# ------------------------------------------------------------------ axis-oriented evaluation

def test_axis_form_equals_standard_form(small_view):
    _, cam, bins = small_view
    checked = 0
    for t in range(len(bins)):
        rows = bins.tile(t)
        if len(rows) == 0:
            continue
        full = axis.axis_power(bins, t, rows).reshape(len(rows), -1)
        fd = axis.axis_power_fd(bins, t, rows).reshape(len(rows), -1)
        np.testing.assert_allclose(fd, full, rtol=1e-9, atol=1e-9)
        ty, tx = divmod(t, bins.proj.tiles_x)
        std, _ = bins.power(t, rows)
        keep = fixed._in_image(tx, ty, cam.width, cam.height)
        np.testing.assert_allclose(full[:, keep], std, rtol=1e-9, atol=1e-9)
        checked += 1
    assert checked > 10


def test_axis_op_counts():
    c = axis.op_counts(1)
    assert c["standard"].total == 256 * 10
    assert c["axis"] == axis.OpCount(80 + 256, 32 + 512)
    assert c["axis_fd"].mul == 97
    assert axis.reduction()["axis"] >= 0.63 and axis.reduction()["axis_fd"] >= 0.63


# ------------------------------------------------------------------ tile schedules

@pytest.mark.parametrize("name", schedule.ORDERS)
def test_orders_are_permutations(name):
    for tx, ty in ((41, 27), (8, 8), (5, 3), (1, 7)):
        order = schedule.tile_order(name, tx, ty)
        assert sorted(order.tolist()) == list(range(tx * ty))
        if name == "hilbert" and tx == ty == 8 or name == "pi" and tx % 2:
            xs, ys = order % tx, order // tx
            assert (np.abs(np.diff(xs)) + np.abs(np.diff(ys)) == 1).all(), "steps to a neighbour"


def test_pi_order_small():
    # 3 x 4 tiles, bands of two rows: down, up, down along the first band, then back
    assert schedule.tile_order("pi", 3, 4).tolist() == [0, 3, 4, 1, 2, 5, 8, 11, 10, 7, 6, 9]


def test_lru_fetch_counts(small_view):
    _, _, bins = small_view
    order = schedule.tile_order("raster", bins.proj.tiles_x, bins.proj.tiles_y)
    distinct = len(np.unique(bins.entries))
    assert schedule.count_fetches(bins, order, 10 ** 9) == distinct
    assert schedule.count_fetches(bins, order, 1) <= len(bins.entries)
    small = [schedule.count_fetches(bins, order, s) for s in (4, 16, 64, 256)]
    assert small == sorted(small, reverse=True)


def test_fetch_count_is_lru_not_fifo():
    """Tiles [1, 2], [1], [3], [1] through 2 entries: LRU keeps the re-used Gaussian 1 (3
    fetches), FIFO would evict it for 3 and fetch it again (4)."""
    class Bins:
        lists = [[1, 2], [1], [3], [1]]

        def tile(self, t):
            return np.array(self.lists[t])

    assert schedule.count_fetches(Bins(), np.arange(4), 2) == 3
    assert schedule.count_fetches(Bins(), np.arange(4), 1) == 5
    assert schedule.count_fetches(Bins(), np.arange(4), 3) == 3


# ------------------------------------------------------------------ fixed-point model

def test_exp_table_error_bound():
    power = -np.arange(0, 16 << fixed.POWER_FRAC)
    got = fixed.exp_fixed(power) / 65536.0
    exact = np.exp(power / 4096.0)
    bound = (2 ** (1 / 512) - 1) * exact + 2 ** -16 + exact * (2 ** (2 ** -13) - 1)
    assert (np.abs(got - exact) <= bound + 1e-12).all()
    v = np.arange(fixed.V_MAX_Q + 1)
    err = np.abs(fixed.neg_log2_one_minus(v) / 4096.0 - (-np.log2(1 - v / 65536.0)))
    assert err.max() <= np.log2(1 + 2 ** -8) + 2 ** -13


def test_fixed_model_matches_float_and_is_deterministic(small_view):
    _, cam, bins = small_view
    mlp = sorter.SorterMLP.init(seed=5)
    w = mlp.weights(bins.proj)
    q = fixed.quantise_mlp(mlp)
    fv = fixed.quantise_view(bins.proj, mlp.depth_scale)
    w_q = fixed.mlp_fixed(q, fv.features)
    assert np.abs(w_q / 65536 - w).max() < 0.02
    bg_q = (410, 820, 1229)
    for mode in oit.BLENDS:
        img_q = fixed.render_fixed(bins, fv, w_q, mode, bg_q)
        assert img_q.dtype == np.int64
        ref = oit.render_oit(bins, w, mode, np.array(bg_q) / 4096)
        # The authors' blend turns a pixel whose only Gaussian sits at the 1/255 threshold into
        # that Gaussian's full colour, so threshold rounding shows; coverage fades it out.
        assert psnr(fixed.to_float(img_q), ref) > (45 if mode == "coverage" else 35)
        shuffled = bin_tiles(bins.proj, order=np.random.default_rng(0).permutation(len(w)))
        np.testing.assert_array_equal(fixed.render_fixed(shuffled, fv, w_q, mode, bg_q), img_q)
        np.testing.assert_array_equal(fixed.render_fixed(bins, fv, w_q, mode, bg_q), img_q)


# ------------------------------------------------------------------ command line

@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    """A gsplat-style scene file: 600 points, three 96x64 cameras."""
    rng = np.random.default_rng(7)
    pts = rng.uniform(-1, 1, size=(600, 3)).astype(np.float32)
    like = Camera(np.eye(4), 80.0, 80.0, 48.0, 32.0, 96, 64)
    cams = orbit([0, 0, 0], 3.5, 0.6, 3, like)
    path = tmp_path_factory.mktemp("scene") / "small.npz"
    np.savez(path, means3d=pts, colors=rng.integers(0, 256, size=(600, 3), dtype=np.uint8),
             viewmats=np.stack([c.viewmat for c in cams]).astype(np.float32),
             Ks=np.tile(np.array([[80, 0, 48], [0, 80, 32], [0, 0, 1]], np.float32), (3, 1, 1)),
             width=np.int64(96), height=np.int64(64))
    return path


def test_cli_train_sorter_and_render(small_npz, tmp_path, capsys):
    import json

    from PIL import Image

    from accelsmith.cli import main

    out = tmp_path / "sorter"
    assert main(["train-sorter", str(small_npz), "--views", "4", "--steps", "30",
                 "--pixel-fraction", "1", "--finetune", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    names = {r["weighting"] for r in report["held_out"]}
    assert names == {"w=1", "analytic", "mlp", "mlp+finetune"}
    assert {r["camera"] for r in report["held_out"]} == {0, 1, 2}
    q = json.loads((out / "sorter_quantised.json").read_text())
    assert [np.array(layer["weights"]).shape for layer in q["layers"]] == [(5, 8), (8, 4), (4, 1)]
    assert (out / "loss.png").stat().st_size > 1000 and (out / "scene_finetuned.ply").is_file()
    assert "step 30/30" in capsys.readouterr().out
    for mode in ("sorted", "oit", "fixed"):
        png = tmp_path / f"{mode}.png"
        assert main(["render", str(small_npz), "--camera", "1", "--mode", mode,
                     "--sorter", str(out / "sorter.npz"), "-o", str(png)]) == 0
        assert Image.open(png).size == (96, 64)
    # The fine-tuned file carries its opacities and colours: a render with it uses them (and
    # differs from one with the network alone); another scene is refused, not silently used.
    capsys.readouterr()
    tuned_png, plain_png = tmp_path / "tuned.png", tmp_path / "oit.png"
    assert main(["render", str(small_npz), "--camera", "1", "--mode", "oit", "--sorter",
                 str(out / "sorter_finetuned.npz"), "-o", str(tuned_png)]) == 0
    assert "holds fine-tuned opacities and colours" in capsys.readouterr().err
    assert not np.array_equal(np.asarray(Image.open(tuned_png)), np.asarray(Image.open(plain_png)))
    assert main(["render", str(small_npz), "--init", "random", "--mode", "oit", "--sorter",
                 str(out / "sorter_finetuned.npz"), "-o", str(tuned_png)]) == 2
    assert "fine-tuned for another scene" in capsys.readouterr().err


def test_cli_render_bad_input(small_npz, tmp_path, capsys):
    from accelsmith.cli import main

    assert main(["render", str(small_npz), "--camera", "3", "-o", str(tmp_path / "x.png")]) == 2
    assert "--camera 3 does not exist; allowed 0..2" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, means3d=np.zeros((3, 3)))
    assert main(["render", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "missing arrays colors, viewmats" in err
    assert main(["render", str(tmp_path / "scene.obj"), "-o", str(tmp_path / "x.png")]) == 2
    assert "allowed: .npz" in capsys.readouterr().err


@needs_garden
def test_garden_reference_and_oit_baselines():
    """Camera 0 of the garden, kNN initialisation, black background: the workload size and the
    order-independent baselines of REFERENCE.md section 3, and the fixed-point floor."""
    scene, cams = load_npz(GARDEN)
    bins = bin_tiles(project(scene, cams[0]))
    assert len(bins.proj) == 78234 and len(bins.entries) == 342190
    ref = render_sorted(bins)
    ones = np.ones(len(bins.proj))
    assert psnr(oit.render_oit(bins, ones, "authors"), ref) == pytest.approx(18.0, abs=0.1)
    assert psnr(oit.render_oit(bins, ones, "coverage"), ref) == pytest.approx(30.1, abs=0.1)
    w = oit.depth_weight(bins.proj.depth, 0.5, 1.0)
    float_oit = oit.render_oit(bins, w, "coverage")
    assert psnr(float_oit, ref) == pytest.approx(33.2, abs=0.1)
    fv = fixed.quantise_view(bins.proj)
    img_q = fixed.render_fixed(bins, fv, np.round(w * fixed.ONE16).astype(np.int64))
    assert psnr(fixed.to_float(img_q), float_oit) >= 45


def test_cli_render_without_sorter_says_weight_one(small_npz, tmp_path, capsys):
    from accelsmith.cli import main

    for mode in ("oit", "fixed"):
        assert main(["render", str(small_npz), "--mode", mode, "-o", str(tmp_path / "w.png")]) == 0
        assert "every Gaussian gets weight 1" in capsys.readouterr().err
    assert main(["render", str(small_npz), "--mode", "sorted", "-o", str(tmp_path / "s.png")]) == 0
    assert "weight 1" not in capsys.readouterr().err


@needs_garden
@pytest.mark.parametrize("blend", ["authors", "coverage"])
def test_shipped_finetuned_sorters_reproduce_the_reported_figures(blend, capsys, tmp_path):
    """`accelsmith render ... --sorter docs/results/gaussian_sorter_*_mlp_finetune.npz --psnr`
    gives the held-out PSNR that docs/results/gaussian.json reports for camera 0."""
    import json
    import re

    from accelsmith.cli import main

    from .conftest import ROOT

    results = ROOT / "docs" / "results"
    reported = next(r["psnr"] for r in json.loads((results / "gaussian.json").read_text())["quality"]
                    if (r["camera"], r["blend"], r["weighting"]) == (0, blend, "mlp+finetune"))
    assert main(["render", str(GARDEN), "--camera", "0", "--mode", "oit", "--blend", blend,
                 "--sorter", str(results / f"gaussian_sorter_{blend}_mlp_finetune.npz"), "--psnr",
                 "-o", str(tmp_path / f"shipped_{blend}.png")]) == 0
    out = capsys.readouterr()
    assert "holds fine-tuned opacities and colours" in out.err
    measured = float(re.search(r"PSNR ([\d.]+) dB", out.out).group(1))
    assert measured == pytest.approx(reported, abs=0.02), (measured, reported)
