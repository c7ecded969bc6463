"""Gaussian scenes and cameras: the standard 3DGS PLY layout, the garden point cloud, synthetic scenes.

A :class:`GaussianScene` holds activated values (linear scales, unit quaternions, opacities in
(0, 1), spherical-harmonic colour coefficients); the PLY file holds the 3DGS training
parameterisation (log scales, opacity logits, raw quaternions), converted on read and write.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SH_C0 = 0.28209479177387814


class SceneError(ValueError):
    """A scene file or array that cannot be used; the message names the file, the property and
    what is allowed."""


def sh_coeffs(degree: int) -> int:
    """Number of SH coefficients per colour channel for ``degree`` (0-3)."""
    return (degree + 1) ** 2


@dataclass
class GaussianScene:
    """N Gaussians with activated parameters.

    means (N, 3) world positions; scales (N, 3) standard deviations along the local axes (> 0);
    quats (N, 4) unit rotations (w, x, y, z); opacities (N,) in (0, 1); sh (N, K, 3) colour
    coefficients with K = (degree + 1)^2, coefficient 0 being the DC term.
    """

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray
    source: str = "<array>"

    def __post_init__(self):
        n = len(self.means)
        shapes = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,)}
        for name, shape in shapes.items():
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise SceneError(f"{self.source}: {name} has shape {arr.shape}, expected {shape}")
            setattr(self, name, arr)
        self.sh = np.asarray(self.sh, dtype=np.float64)
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3 \
                or self.sh.shape[1] not in (1, 4, 9, 16):
            raise SceneError(f"{self.source}: sh has shape {self.sh.shape}, expected ({n}, K, 3) "
                             "with K in 1, 4, 9, 16 (SH degree 0-3)")
        for name in ("means", "scales", "quats", "opacities", "sh"):
            bad = ~np.isfinite(getattr(self, name)).reshape(n, -1).all(axis=1)
            if bad.any():
                raise SceneError(f"{self.source}: {name} of Gaussian {int(np.argmax(bad))} is not "
                                 f"finite ({int(bad.sum())} Gaussians affected); NaN/inf not allowed")
        if (self.scales <= 0).any():
            i = int(np.argmax((self.scales <= 0).any(axis=1)))
            raise SceneError(f"{self.source}: scale of Gaussian {i} is {self.scales[i].tolist()}; "
                             "scales must be > 0")
        norms = np.linalg.norm(self.quats, axis=1)
        if (norms < 1e-12).any():
            raise SceneError(f"{self.source}: rotation of Gaussian {int(np.argmax(norms < 1e-12))} "
                             "is the zero quaternion; a rotation needs a non-zero quaternion")
        self.quats = self.quats / norms[:, None]
        if ((self.opacities <= 0) | (self.opacities >= 1)).any():
            i = int(np.argmax((self.opacities <= 0) | (self.opacities >= 1)))
            raise SceneError(f"{self.source}: opacity of Gaussian {i} is {self.opacities[i]}; "
                             "opacities must lie in (0, 1)")

    def __len__(self):
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return int(round(np.sqrt(self.sh.shape[1]))) - 1

    def subset(self, index) -> "GaussianScene":
        return GaussianScene(self.means[index], self.scales[index], self.quats[index],
                             self.opacities[index], self.sh[index], self.source)

    def replace(self, **kw) -> "GaussianScene":
        fields = dict(means=self.means, scales=self.scales, quats=self.quats,
                      opacities=self.opacities, sh=self.sh, source=self.source)
        fields.update(kw)
        return GaussianScene(**fields)


# ---------------------------------------------------------------- PLY (standard 3DGS layout)

def _ply_names(k: int) -> list[str]:
    rest = [f"f_rest_{i}" for i in range(3 * (k - 1))]
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + rest
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_ply(scene: GaussianScene, path) -> Path:
    """Write ``scene`` as a binary little-endian 3DGS PLY (the layout the 3DGS viewers read)."""
    from plyfile import PlyData, PlyElement

    n, k = len(scene), scene.sh.shape[1]
    names = _ply_names(k)
    rec = np.zeros(n, dtype=[(name, "<f4") for name in names])
    rec["x"], rec["y"], rec["z"] = scene.means.T
    for c in range(3):
        rec[f"f_dc_{c}"] = scene.sh[:, 0, c]
    # 3DGS flattens the rest coefficients channel-major: f_rest[c * (K - 1) + j].
    rest = scene.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1)
    for i in range(rest.shape[1]):
        rec[f"f_rest_{i}"] = rest[:, i]
    rec["opacity"] = np.log(scene.opacities) - np.log1p(-scene.opacities)
    for i in range(3):
        rec[f"scale_{i}"] = np.log(scene.scales[:, i])
    for i in range(4):
        rec[f"rot_{i}"] = scene.quats[:, i]
    path = Path(path)
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(path))
    return path


def read_ply(path) -> GaussianScene:
    """Read a 3DGS PLY (SH degree 0-3, binary or ASCII). Raises :class:`SceneError` for a file
    that is missing, truncated, lacks a property, or holds non-finite or degenerate values."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"{path}: no such file")
    try:
        ply = PlyData.read(str(path))
    except Exception as exc:  # plyfile raises several types for damaged files
        raise SceneError(f"{path}: not a readable PLY file ({type(exc).__name__}: {exc})") from None
    if "vertex" not in [e.name for e in ply.elements]:
        raise SceneError(f"{path}: no 'vertex' element; a 3DGS PLY stores Gaussians as vertices")
    v = ply["vertex"].data
    have = set(v.dtype.names)
    n_rest = len([p for p in have if p.startswith("f_rest_")])
    if n_rest not in (0, 9, 24, 45):
        raise SceneError(f"{path}: {n_rest} f_rest_* properties; allowed 0, 9, 24 or 45 "
                         "(SH degree 0-3)")
    k = n_rest // 3 + 1
    missing = [p for p in _ply_names(k) if p not in have and p not in ("nx", "ny", "nz")]
    if missing:
        raise SceneError(f"{path}: missing propert{'y' if len(missing) == 1 else 'ies'} "
                         f"{', '.join(missing)}; a 3DGS PLY needs x, y, z, f_dc_0..2, opacity, "
                         "scale_0..2 and rot_0..3")
    col = lambda name: np.asarray(v[name], dtype=np.float64)  # noqa: E731
    n = len(v)
    sh = np.zeros((n, k, 3))
    for c in range(3):
        sh[:, 0, c] = col(f"f_dc_{c}")
    if k > 1:
        rest = np.stack([col(f"f_rest_{i}") for i in range(3 * (k - 1))], axis=1)
        sh[:, 1:, :] = rest.reshape(n, 3, k - 1).transpose(0, 2, 1)
    logit = col("opacity")
    log_scale = np.stack([col(f"scale_{i}") for i in range(3)], axis=1)
    for name, arr in (("opacity", logit), ("scale", log_scale)):
        bad = ~np.isfinite(arr).reshape(n, -1).all(axis=1)
        if bad.any():
            raise SceneError(f"{path}: {name} of vertex {int(np.argmax(bad))} is not finite "
                             f"({int(bad.sum())} vertices affected)")
    with np.errstate(over="ignore"):
        scales = np.exp(log_scale)
        opac = 1.0 / (1.0 + np.exp(-logit))
    opac = np.clip(opac, 1e-7, 1 - 1e-7)  # a logit of +-40 is still a valid file
    return GaussianScene(np.stack([col(a) for a in "xyz"], axis=1), scales,
                         np.stack([col(f"rot_{i}") for i in range(4)], axis=1), opac, sh,
                         source=str(path))


# ---------------------------------------------------------------- point clouds and synthetic scenes

def rgb_to_sh(rgb: np.ndarray) -> np.ndarray:
    """DC SH coefficient whose rendered colour is ``rgb`` (in [0, 1])."""
    return (np.asarray(rgb, dtype=np.float64) - 0.5) / SH_C0


def knn_scales(points: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean distance of each point to its ``k`` nearest neighbours (the 3DGS initial scale)."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(points).query(points, k=k + 1)
    d = dist[:, 1:].mean(axis=1)
    return np.maximum(d, 1e-7)


def scene_from_points(points, rgb, init: str = "knn", seed: int = 0, source="<points>"):
    """Gaussians at ``points`` with colours ``rgb`` (uint8 or [0, 1]).

    ``init="knn"``: the standard 3DGS initialisation (isotropic scale = mean distance to the 3
    nearest neighbours, identity rotation, opacity 0.1). ``init="random"``: gsplat's test
    variant (points cropped to [-2, 2]^3; scales uniform in [1e-4, 0.02], random unit
    quaternions and opacities uniform in (0, 1), all from ``seed``).
    """
    points = np.asarray(points, dtype=np.float64)
    rgb = np.asarray(rgb)
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    if init == "knn":
        n = len(points)
        s = knn_scales(points)
        return GaussianScene(points, np.repeat(s[:, None], 3, axis=1),
                             np.tile([1.0, 0, 0, 0], (n, 1)), np.full(n, 0.1),
                             rgb_to_sh(rgb)[:, None, :], source=source)
    if init == "random":
        keep = (np.abs(points) <= 2).all(axis=1)
        points, rgb = points[keep], rgb[keep]
        n = len(points)
        rng = np.random.default_rng(seed)
        scales = rng.uniform(1e-4, 0.02, size=(n, 3))
        quats = rng.normal(size=(n, 4))
        opac = rng.uniform(1e-3, 1 - 1e-3, size=n)
        return GaussianScene(points, scales, quats, opac, rgb_to_sh(rgb)[:, None, :],
                             source=source)
    raise SceneError(f"{source}: init '{init}' is not known; allowed: knn, random")


def synthetic_scene(n: int, seed: int = 0, sh_degree: int = 0, extent: float = 1.0):
    """A seeded random scene of ``n`` anisotropic Gaussians in a cube of half-size ``extent``
    centred on the origin, colours with SH up to ``sh_degree``."""
    rng = np.random.default_rng(seed)
    k = sh_coeffs(sh_degree)
    sh = np.zeros((n, k, 3))
    sh[:, 0] = rgb_to_sh(rng.uniform(0.05, 0.95, size=(n, 3)))
    if k > 1:
        sh[:, 1:] = rng.normal(scale=0.15, size=(n, k - 1, 3))
    return GaussianScene(rng.uniform(-extent, extent, size=(n, 3)),
                         np.exp(rng.uniform(np.log(0.01), np.log(0.15), size=(n, 3))) * extent,
                         rng.normal(size=(n, 4)), rng.uniform(0.05, 0.95, size=n), sh,
                         source=f"<synthetic n={n} seed={seed}>")
