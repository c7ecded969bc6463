"""The sorter network and its training: a per-Gaussian weight w_g for order-independent blending.

The MLP (REFERENCE.md section 3) runs once per Gaussian per view on five inputs -- view depth
(times ``depth_scale``), the camera's forward direction (3) and opacity -- through
5 -> 8 -> 4 -> 1 layers (sizes configurable) with LeakyReLU (slope 0.125) and a sigmoid output.

Training is full-batch Adam on the mean squared error between the order-independent render
and the sorted reference, over a fixed random subset of the training views' pixels. Gradients
are analytic (the blend is a ratio of per-pixel sums, the network is tiny), so NumPy is enough.
Optionally opacities (as logits) and the DC colours are fine-tuned with the network, as the
seed paper's authors do.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import oit
from .render import ALPHA_MIN, Projection, TileBins, bin_tiles, project, render_sorted

LEAK = 0.125


def leaky(x):
    return np.where(x > 0, x, LEAK * x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class SorterMLP:
    """Weights ``w[i]`` (fan_in, fan_out) and biases ``b[i]`` of each layer."""

    w: list
    b: list
    depth_scale: float = 0.125

    @classmethod
    def init(cls, sizes=(5, 8, 4, 1), seed: int = 0, depth_scale: float = 0.125) -> "SorterMLP":
        rng = np.random.default_rng(seed)
        w = [rng.normal(scale=np.sqrt(2.0 / i), size=(i, o)) for i, o in zip(sizes, sizes[1:])]
        return cls(w, [np.zeros(o) for o in sizes[1:]], depth_scale)

    @property
    def sizes(self):
        return (self.w[0].shape[0],) + tuple(x.shape[1] for x in self.w)

    @property
    def n_params(self) -> int:
        return sum(x.size for x in self.w) + sum(x.size for x in self.b)

    def features(self, depth, forward, opacity) -> np.ndarray:
        """(M, 5) network inputs for one view."""
        f = np.empty((len(depth), 5))
        f[:, 0] = np.asarray(depth) * self.depth_scale
        f[:, 1:4] = np.asarray(forward)[None, :]
        f[:, 4] = opacity
        return f

    def forward(self, x, cache: bool = False):
        acts, h = [x], x
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            z = h @ w + b
            h = sigmoid(z) if i == len(self.w) - 1 else leaky(z)
            acts.append(z)
            acts.append(h)
        out = h[:, 0]
        return (out, acts) if cache else out

    def backward(self, acts, grad_out):
        """Gradients of (weights, biases, input) given dL/d(output) (M,)."""
        g = (grad_out * acts[-1][:, 0] * (1 - acts[-1][:, 0]))[:, None]
        gw, gb = [None] * len(self.w), [None] * len(self.w)
        for i in reversed(range(len(self.w))):
            h_in = acts[2 * i]
            gw[i], gb[i] = h_in.T @ g, g.sum(axis=0)
            g = g @ self.w[i].T
            if i > 0:
                g = g * np.where(acts[2 * i - 1] > 0, 1.0, LEAK)
        return gw, gb, g

    def weights(self, proj: Projection) -> np.ndarray:
        return self.forward(self.features(proj.depth, proj.camera.forward, proj.opacity))

    def save(self, path) -> Path:
        path = Path(path)
        arrays = {f"w{i}": w for i, w in enumerate(self.w)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.b)})
        np.savez(path, depth_scale=self.depth_scale, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "SorterMLP":
        """A ``sorter.npz`` of ``train-sorter``, read without unpickling; a missing or malformed
        file is a :class:`~.scene.SceneError` naming it and what is wrong."""
        import zipfile

        from .scene import SceneError

        p = Path(path)
        if not p.is_file():
            raise SceneError(f"sorter {path}: no such file (train-sorter writes sorter.npz)")
        try:
            with np.load(p, allow_pickle=False) as d:
                n = len([k for k in d.files if k.startswith("w")])
                w = [np.asarray(d[f"w{i}"], np.float64) for i in range(n)]
                b = [np.asarray(d[f"b{i}"], np.float64) for i in range(n)]
                depth_scale = float(d["depth_scale"])
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise SceneError(f"sorter {path}: not a sorter.npz of train-sorter ({exc})") from None
        sizes_ok = (n > 0 and all(x.ndim == 2 for x in w) and w[0].shape[0] == 5
                    and w[-1].shape[1] == 1
                    and all(w[i].shape[1] == w[i + 1].shape[0] for i in range(n - 1))
                    and all(b[i].shape == (w[i].shape[1],) for i in range(n)))
        if not sizes_ok:
            raise SceneError(f"sorter {path}: layer shapes {[x.shape for x in w]} and biases "
                             f"{[x.shape for x in b]} do not form a network from 5 inputs to 1 "
                             f"output")
        if not all(np.isfinite(x).all() for x in w + b) or not np.isfinite(depth_scale):
            raise SceneError(f"sorter {path}: weights, biases or depth_scale are not finite")
        return cls(w, b, depth_scale)


def scene_digest(scene) -> str:
    """A short fingerprint of a scene's Gaussians (every parameter), so tuned parameters are
    only ever applied to the scene they were trained on."""
    import hashlib

    h = hashlib.sha256(np.int64(len(scene.means)).tobytes())
    for arr in (scene.means, scene.scales, scene.quats, scene.opacities, scene.sh):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def save_result(path, result: "TrainResult", scene) -> Path:
    """The network and, for a fine-tuned result, the tuned opacity logits and DC colour changes
    of ``scene`` (float32) with the scene's fingerprint: everything a render of the result needs
    besides the scene file itself."""
    path = result.mlp.save(path)
    if result.opacity_logit is None:
        return path
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files}
    np.savez_compressed(path, **arrays, tuned_opacity_logit=result.opacity_logit.astype(np.float32),
                        tuned_colour=result.colour.astype(np.float32),
                        scene_gaussians=np.int64(len(scene.means)),
                        scene_digest=np.array(scene_digest(scene)))
    return path


def tuned_scene(path, scene):
    """``scene`` with the fine-tuned opacities and colours stored in sorter file ``path``, or
    ``None`` if the file holds a network only. Refuses a file trained on another scene."""
    from .scene import SceneError

    with np.load(path) as d:
        if "tuned_opacity_logit" not in d.files:
            return None
        n = int(d["scene_gaussians"])
        logit, colour = d["tuned_opacity_logit"], d["tuned_colour"]
        digest = str(d["scene_digest"])
    if n != len(scene.means) or logit.shape != (n,) or colour.shape != (n, 3):
        raise SceneError(f"{path}: fine-tuned for a scene of {n:,} Gaussians (opacities "
                         f"{logit.shape}, colours {colour.shape}), but this scene has "
                         f"{len(scene.means):,}; render the scene it was trained on")
    if digest != scene_digest(scene):
        raise SceneError(f"{path}: fine-tuned for another scene (fingerprint {digest}, this scene "
                         f"{scene_digest(scene)}): same count, other parameters (another "
                         f"initialisation or seed?)")
    return finetuned_scene(scene, TrainResult(None, logit.astype(np.float64),
                                              colour.astype(np.float64)))


@dataclass
class ViewPairs:
    """The (pixel, Gaussian) pairs of one view that can contribute, for a subset of pixels.

    ``epow`` is exp(power) of each pair (so v can be recomputed when opacities change); pairs are
    kept where opacity_max * exp(power) >= 1/255. ``target`` is the sorted reference."""

    proj: Projection
    pix: np.ndarray
    row: np.ndarray
    epow: np.ndarray
    target: np.ndarray
    n_pix: int


def view_pairs(bins: TileBins, target_img: np.ndarray, pixel_fraction: float, seed: int,
               opacity_max: float = 1.0) -> ViewPairs:
    """Collect the pairs of a random ``pixel_fraction`` of the view's pixels."""
    proj = bins.proj
    cam = proj.camera
    rng = np.random.default_rng(seed)
    chosen = rng.random(cam.width * cam.height) < pixel_fraction
    remap = np.cumsum(chosen) - 1
    pix, row, epow = [], [], []
    thresh = np.log(ALPHA_MIN / opacity_max)
    for t in range(len(bins)):
        rows = bins.tile(t)
        if len(rows) == 0:
            continue
        power, flat = bins.power(t, rows)
        keep_pix = chosen[flat]
        if not keep_pix.any():
            continue
        power = power[:, keep_pix]
        gi, pi = np.nonzero(power >= thresh)
        pix.append(remap[flat[keep_pix]][pi].astype(np.int32))
        row.append(rows[gi].astype(np.int32))
        epow.append(np.exp(power[gi, pi]).astype(np.float32))
    target = target_img.reshape(-1, 3)[chosen]
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
    return ViewPairs(proj, cat(pix, np.int32), cat(row, np.int32), cat(epow, np.float32),
                     target, int(chosen.sum()))


def _view_loss(vp: ViewPairs, w, colour, opacity, blend_mode, background, grads: bool):
    """MSE of one view and, if ``grads``, dL/dw, dL/dcolour, dL/dopacity per projected row."""
    raw = opacity[vp.row] * vp.epow
    v = np.minimum(oit.V_MAX, raw)
    v[raw < ALPHA_MIN] = 0.0
    vw = v * w[vp.row]
    n = vp.n_pix
    sum_w = np.bincount(vp.pix, vw, minlength=n)
    sum_cw = np.stack([np.bincount(vp.pix, vw * colour[vp.row, c], minlength=n)
                       for c in range(3)], axis=1)
    log_t = np.bincount(vp.pix, np.log1p(-v), minlength=n)
    pred = oit.blend(blend_mode, sum_cw, sum_w, log_t, background)
    err = pred - vp.target
    loss = float(np.mean(err * err))
    if not grads:
        return loss, None
    g_pred = 2.0 * err / err.size
    norm = sum_cw / (sum_w + oit.EPS)[:, None]
    if blend_mode == "coverage":
        t = np.exp(log_t)
        g_norm = g_pred * (1.0 - t)[:, None]
        g_logt = t * (g_pred * (np.asarray(background) - norm)).sum(axis=1)
    else:
        g_norm, g_logt = g_pred, np.zeros(n)
    inv = 1.0 / (sum_w + oit.EPS)
    # d norm_c / d(vw) = (c_g,c - norm_c) / sum_w
    g_vw = ((colour[vp.row] - norm[vp.pix]) * g_norm[vp.pix]).sum(axis=1) * inv[vp.pix]
    m = len(w)
    g_w = np.bincount(vp.row, g_vw * v, minlength=m)
    g_col = np.stack([np.bincount(vp.row, g_norm[vp.pix, c] * vw * inv[vp.pix], minlength=m)
                      for c in range(3)], axis=1)
    g_v = g_vw * w[vp.row] - g_logt[vp.pix] / (1.0 - v)
    live = (raw >= ALPHA_MIN) & (raw < oit.V_MAX)
    g_op = np.bincount(vp.row, np.where(live, g_v * vp.epow, 0.0), minlength=m)
    return loss, (g_w, g_col, g_op)


@dataclass
class TrainResult:
    """A trained network; with fine-tuning also the opacity logits (N,) and the additive DC
    colour changes (N, 3) of every Gaussian; the loss of every step."""

    mlp: SorterMLP
    opacity_logit: np.ndarray | None
    colour: np.ndarray | None
    losses: list = field(default_factory=list)


class _Adam:
    def __init__(self, params, lr):
        self.lr, self.t = lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.s = [np.zeros_like(p) for p in params]

    def step(self, params, grads, lrs=None, scale=1.0):
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = 0.9 * self.m[i] + 0.1 * g
            self.s[i] = 0.999 * self.s[i] + 0.001 * g * g
            mh = self.m[i] / (1 - 0.9 ** self.t)
            sh = self.s[i] / (1 - 0.999 ** self.t)
            p -= scale * (self.lr if lrs is None else lrs[i]) * mh / (np.sqrt(sh) + 1e-8)


def prepare_views(scene, cameras, pixel_fraction=0.25, seed=0, opacity_headroom=1.0,
                  progress=None):
    """Sorted references and pair sets of ``cameras`` (the training data). Pairs are kept
    that could reach 1/255 with an opacity up to ``opacity_headroom`` times the scene's largest
    (more headroom for fine-tuning opacities, at the cost of memory)."""
    opacity_max = min(1.0, float(scene.opacities.max()) * opacity_headroom)
    views = []
    for i, cam in enumerate(cameras):
        bins = bin_tiles(project(scene, cam))
        views.append(view_pairs(bins, render_sorted(bins), pixel_fraction, seed + i, opacity_max))
        if progress:
            progress(f"view {i + 1}/{len(cameras)}: {len(views[-1].pix):,} pairs")
    return views


def views_loss(views, weight_fn, blend_mode="coverage", background=(0, 0, 0)) -> float:
    """Mean training loss with per-view weights ``weight_fn(proj)``."""
    return float(np.mean([_view_loss(vp, weight_fn(vp.proj), vp.proj.colour, vp.proj.opacity,
                                     blend_mode, background, False)[0] for vp in views]))


def fit_depth_weight(views, blend_mode="coverage", background=(0, 0, 0)):
    """Best (a, b) of exp(-a d^b) on the training views by grid search, with its loss."""
    def loss(a, b):
        return views_loss(views, lambda p: oit.depth_weight(p.depth, a, b), blend_mode,
                          background)

    # A coarse grid over a in [0.01, 10] and b in [0.05, 2], then a local refinement.
    best = min(((a, b, loss(a, b)) for b in (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
                for a in np.geomspace(0.01, 10.0, 10)), key=lambda r: r[2])
    for _ in range(2):
        a0, b0, _ = best
        cands = [(a0 * fa, b0 * fb) for fa in (0.7, 1.0, 1.4) for fb in (0.8, 1.0, 1.25)]
        best = min([best] + [(a, b, loss(a, b)) for a, b in cands if (a, b) != (a0, b0)],
                   key=lambda r: r[2])
    return float(best[0]), float(best[1]), float(best[2])


def distil(mlp: SorterMLP, views, weight_fn, steps: int = 1500, lr: float = 0.02,
           per_view: int = 4096, seed: int = 0) -> float:
    """Fit ``mlp`` in place to the per-Gaussian weights ``weight_fn(proj)`` on ``per_view``
    random Gaussians of each view (squared error of log w, full-batch Adam); returns the final
    RMS log error. Starting the image-loss training here means it begins as good as that
    weighting."""
    rng = np.random.default_rng(seed)
    xs, ts = [], []
    for v in views:
        pick = rng.choice(len(v.proj), min(per_view, len(v.proj)), replace=False)
        xs.append(mlp.features(v.proj.depth, v.proj.camera.forward, v.proj.opacity)[pick])
        ts.append(weight_fn(v.proj)[pick])
    x, log_t = np.concatenate(xs), np.log(np.concatenate(ts))
    params = mlp.w + mlp.b
    opt = _Adam(params, lr)
    for step in range(steps):
        out, acts = mlp.forward(x, cache=True)
        err = np.log(out) - log_t
        gw, gb, _ = mlp.backward(acts, 2 * err / out / len(err))
        opt.step(params, gw + gb, scale=0.5 * (1 + np.cos(np.pi * step / steps)))
    return float(np.sqrt(np.mean((np.log(mlp.forward(x)) - log_t) ** 2)))


def train_sorter(scene, views, steps=300, lr=5e-3, blend_mode="coverage", finetune=False,
                 background=(0, 0, 0), sizes=(5, 8, 4, 1), seed=0, mlp=None, progress=None,
                 finetune_lr=1e-2, batch_views=2, init_weight=None) -> TrainResult:
    """Fit the sorter MLP (and, with ``finetune``, opacities and DC colours) on ``views``,
    ``batch_views`` views per Adam step (a fixed random sequence from ``seed``). With
    ``init_weight`` (a ``proj -> weights`` function, e.g. the best analytic depth weight) the
    network is first distilled to it (:func:`distil`)."""
    mlp = mlp or SorterMLP.init(sizes, seed)
    if init_weight is not None:
        distil(mlp, views, init_weight)
    params = mlp.w + mlp.b
    n = len(scene)
    logit = np.log(scene.opacities) - np.log1p(-scene.opacities)
    d_col = np.zeros((n, 3))  # additive colour change per Gaussian
    if finetune:
        params = params + [logit, d_col]
    opt = _Adam(params, lr)
    lrs = [lr] * (len(mlp.w) * 2) + ([finetune_lr, finetune_lr] if finetune else [])
    losses = []
    rng = np.random.default_rng(seed)
    batch_views = min(batch_views, len(views))
    for step in range(steps):
        batch = [views[i] for i in rng.choice(len(views), batch_views, replace=False)]
        gw = [np.zeros_like(x) for x in mlp.w]
        gb = [np.zeros_like(x) for x in mlp.b]
        g_logit, g_col = np.zeros(n), np.zeros((n, 3))
        total = 0.0
        op_all = 1.0 / (1.0 + np.exp(-logit))
        for vp in batch:
            ids = vp.proj.ids
            op = op_all[ids]
            colour = np.maximum(vp.proj.colour + d_col[ids], 0.0)
            x = mlp.features(vp.proj.depth, vp.proj.camera.forward, op)
            w, acts = mlp.forward(x, cache=True)
            loss, (g_w, g_c, g_op) = _view_loss(vp, w, colour, op, blend_mode, background, True)
            total += loss / len(batch)
            dw, db, dx = mlp.backward(acts, g_w / len(batch))
            for i in range(len(gw)):
                gw[i] += dw[i]
                gb[i] += db[i]
            if finetune:
                g_op_total = g_op / len(batch) + dx[:, 4]  # opacity is also a network input
                g_logit[ids] += g_op_total * op * (1 - op)  # ids are unique within a view
                g_col[ids] += np.where(colour > 0, g_c, 0.0) / len(batch)
        grads = gw + gb + ([g_logit, g_col] if finetune else [])
        opt.step(params, grads, lrs, 0.5 * (1 + np.cos(np.pi * step / steps)))  # cosine decay
        losses.append(total)
        if progress and (step % max(1, steps // 20) == 0 or step == steps - 1):
            progress(step, total)
    return TrainResult(mlp, logit if finetune else None, d_col if finetune else None, losses)


def finetuned_scene(scene, result: TrainResult):
    """``scene`` with the fine-tuned opacities and DC colours of ``result``."""
    if result.opacity_logit is None:
        return scene
    from .scene import SH_C0

    sh = scene.sh.copy()
    sh[:, 0] += result.colour / SH_C0
    opac = np.clip(1.0 / (1.0 + np.exp(-result.opacity_logit)), 1e-6, 1 - 1e-6)
    return scene.replace(opacities=opac, sh=sh)


def fit_weightings(scene, train_cams, blend_mode="coverage", steps=300, lr=0.003,
                   pixel_fraction=0.1, finetune=False, background=(0, 0, 0), seed=0,
                   progress=None) -> dict:
    """The trained weightings of one blend on ``train_cams``: ``analytic`` (a, b, loss) of the
    best exp(-a d^b); ``mlp``, the network distilled from it and then trained on the image
    loss; with ``finetune``, ``mlp+finetune``, that network trained on together with the
    opacities and DC colours for as many steps again."""
    say = progress or (lambda msg: None)
    views = prepare_views(scene, train_cams, pixel_fraction, seed, progress=say)
    a, b, loss = fit_depth_weight(views, blend_mode, background)
    say(f"{blend_mode}: best analytic weight exp(-a d^b), a = {a:.4g}, b = {b:.4g} "
        f"(training MSE {loss:.3e})")
    out = {"analytic": (a, b, loss)}
    out["mlp"] = train_sorter(
        scene, views, steps, lr, blend_mode, background=background, seed=seed,
        init_weight=lambda p: oit.depth_weight(p.depth, a, b),
        progress=lambda s, l: say(f"{blend_mode} mlp: step {s + 1}/{steps}, training MSE {l:.3e}"))
    if finetune:
        del views
        views = prepare_views(scene, train_cams, pixel_fraction, seed, opacity_headroom=3.0,
                              progress=say)
        start = SorterMLP([w.copy() for w in out["mlp"].mlp.w],
                          [b_.copy() for b_ in out["mlp"].mlp.b], out["mlp"].mlp.depth_scale)
        out["mlp+finetune"] = train_sorter(
            scene, views, steps, lr, blend_mode, finetune=True, background=background,
            seed=seed, mlp=start,
            progress=lambda s, l: say(f"{blend_mode} mlp+finetune: step {s + 1}/{steps}, "
                                      f"training MSE {l:.3e}"))
    return out
