"""Pinhole cameras (gsplat's conventions) and camera paths."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scene import SceneError, scene_from_points


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``viewmat`` is the 4x4 world-to-camera matrix (x right, y down,
    z forward), intrinsics in pixels, image ``width`` x ``height``."""

    viewmat: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def rotation(self) -> np.ndarray:
        return np.asarray(self.viewmat)[:3, :3]

    @property
    def position(self) -> np.ndarray:
        """World position of the camera centre."""
        return -self.rotation.T @ np.asarray(self.viewmat)[:3, 3]

    @property
    def forward(self) -> np.ndarray:
        """World direction of the optical axis."""
        return self.rotation[2]

    @classmethod
    def look_at(cls, eye, target, up, fx, fy, cx, cy, width, height) -> "Camera":
        eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
        z = target - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, up)  # y points down, so right = forward x up
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        r = np.stack([x, y, z])
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = r, -r @ eye
        return cls(m, fx, fy, cx, cy, width, height)


def interpolate(a: Camera, b: Camera, t: float) -> Camera:
    """The camera a fraction ``t`` of the way from ``a`` to ``b``: position linear, rotation
    along the shortest arc (spherical interpolation); intrinsics of ``a``. ``t`` outside
    [0, 1] extrapolates along the same path."""
    from scipy.spatial.transform import Rotation

    ra = Rotation.from_matrix(a.rotation)
    step = Rotation.from_matrix(b.rotation) * ra.inv()
    r = (Rotation.from_rotvec(step.as_rotvec() * t) * ra).as_matrix()
    pos = (1 - t) * a.position + t * b.position
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, -r @ pos
    return Camera(m, a.fx, a.fy, a.cx, a.cy, a.width, a.height)


def path_through(cameras: list[Camera], steps: int) -> list[Camera]:
    """``steps`` cameras evenly spaced along the piecewise path through ``cameras``."""
    if len(cameras) < 2:
        return list(cameras) * steps
    out = []
    for s in np.linspace(0, len(cameras) - 1, steps):
        i = min(int(s), len(cameras) - 2)
        out.append(interpolate(cameras[i], cameras[i + 1], s - i))
    return out


def orbit(centre, radius: float, height: float, steps: int, like: Camera,
          up=(0.0, 0.0, 1.0)) -> list[Camera]:
    """``steps`` cameras on a horizontal circle around ``centre`` (``up`` is the world's up
    axis), all looking at it, with the intrinsics of ``like``."""
    centre, up = np.asarray(centre, float), np.asarray(up, float)
    e1 = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    out = []
    for ang in np.linspace(0, 2 * np.pi, steps, endpoint=False):
        eye = centre + radius * (np.cos(ang) * e1 + np.sin(ang) * e2) + height * up
        out.append(Camera.look_at(eye, centre, up, like.fx, like.fy, like.cx, like.cy,
                                  like.width, like.height))
    return out


def load_npz(path, init: str = "knn", seed: int = 0):
    """The scene and cameras of a gsplat-style ``.npz`` (``means3d``, ``colors``, ``viewmats``,
    ``Ks``, ``width``, ``height``), e.g. ``test_garden.npz``; ``init`` as in
    :func:`~.scene.scene_from_points`."""
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"{path}: no such file")
    names = ("means3d", "colors", "viewmats", "Ks", "width", "height")
    try:
        data = np.load(path)
        missing = [k for k in names if k not in data.files]
        if missing:
            raise SceneError(f"{path}: missing array{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; a scene .npz needs {', '.join(names)}")
        arrays = {k: data[k] for k in names}
    except SceneError:
        raise
    except Exception as exc:
        raise SceneError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    pts = arrays["means3d"]
    if pts.ndim != 2 or pts.shape[1] != 3 or len(arrays["colors"]) != len(pts):
        raise SceneError(f"{path}: means3d {pts.shape} / colors {arrays['colors'].shape}: "
                         "expected (N, 3) each")
    if not np.isfinite(pts).all():
        raise SceneError(f"{path}: means3d holds NaN or inf")
    scene = scene_from_points(pts, arrays["colors"], init=init, seed=seed, source=str(path))
    w, h = int(arrays["width"]), int(arrays["height"])
    cams = [Camera(np.asarray(vm, np.float64), float(k[0, 0]), float(k[1, 1]), float(k[0, 2]),
                   float(k[1, 2]), w, h) for vm, k in zip(arrays["viewmats"], arrays["Ks"])]
    return scene, cams
