"""Reference 3DGS rasterisation in NumPy (float64), with gsplat's pixel convention.

Stages, each a function the hardware model and the tests reuse:

* :func:`project` -- EWA projection with the 0.3 low-pass dilation, conic, 3-sigma radius,
  SH colour, per-Gaussian depth (one :class:`Projection` per view);
* :func:`bin_tiles` -- 16x16 tile lists, each sorted front to back (:class:`TileBins`);
* :func:`render_sorted` -- front-to-back alpha blending (alpha clamp 0.99, 1/255 skip,
  1e-4 transmittance stop, background).

Pixel (row i, column j) is evaluated at (j + 0.5, i + 0.5) and the projected mean is
(fx x/z + cx, fy y/z + cy), as in gsplat; the original 3DGS code evaluates at integer
coordinates with the mean shifted by half a pixel, which is the same image.
"""

from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .scene import SH_C0, GaussianScene

TILE = 16
ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4
DILATION = 0.3
NEAR = 0.2

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) -> (N, 3, 3) rotation matrices."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def eval_sh(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Colour of (N, K, 3) SH coefficients seen along unit directions (N, 3): SH(dir) + 0.5,
    clamped at 0 (the 3DGS convention)."""
    k = sh.shape[1]
    out = SH_C0 * sh[:, 0]
    if k > 1:
        x, y, z = (dirs[:, i:i + 1] for i in range(3))
        out = out - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
        if k > 4:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            out = (out + SH_C2[0] * xy * sh[:, 4] + SH_C2[1] * yz * sh[:, 5]
                   + SH_C2[2] * (2 * zz - xx - yy) * sh[:, 6] + SH_C2[3] * xz * sh[:, 7]
                   + SH_C2[4] * (xx - yy) * sh[:, 8])
            if k > 9:
                out = (out + SH_C3[0] * y * (3 * xx - yy) * sh[:, 9]
                       + SH_C3[1] * xy * z * sh[:, 10]
                       + SH_C3[2] * y * (4 * zz - xx - yy) * sh[:, 11]
                       + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[:, 12]
                       + SH_C3[4] * x * (4 * zz - xx - yy) * sh[:, 13]
                       + SH_C3[5] * z * (xx - yy) * sh[:, 14]
                       + SH_C3[6] * x * (xx - 3 * yy) * sh[:, 15])
    return np.maximum(out + 0.5, 0.0)



@dataclass
class Projection:
    """One view of a scene, for the Gaussians that survive culling (``ids`` into the scene).

    mean2d (M, 2) pixels; cov2d (M, 3) = (S00, S01, S11) of the dilated 2D covariance; conic
    (M, 3) = (a, b, c) of its inverse; radius (M,)
    pixels; depth (M,) view-space z; colour (M, 3); opacity (M,); tile_rect (M, 4) =
    (x0, y0, x1, y1) tile indices, end exclusive.
    """

    camera: Camera
    ids: np.ndarray
    mean2d: np.ndarray
    conic: np.ndarray
    cov2d: np.ndarray
    radius: np.ndarray
    depth: np.ndarray
    colour: np.ndarray
    opacity: np.ndarray
    tile_rect: np.ndarray

    @property
    def tiles_x(self) -> int:
        return -(-self.camera.width // TILE)

    @property
    def tiles_y(self) -> int:
        return -(-self.camera.height // TILE)

    def __len__(self):
        return len(self.ids)


def project(scene: GaussianScene, cam: Camera, near: float = NEAR) -> Projection:
    """EWA-project ``scene`` into ``cam`` and cull what cannot be seen.

    A Gaussian is culled when its view depth is <= ``near``, its dilated 2D covariance is
    singular, or its 3-sigma rectangle covers no tile of the image.
    """
    r_w, t_w = cam.rotation, np.asarray(cam.viewmat)[:3, 3]
    p = scene.means @ r_w.T + t_w
    z = p[:, 2]
    keep = z > near
    ids = np.nonzero(keep)[0]
    p, z = p[keep], z[keep]
    rot = quat_to_rotmat(scene.quats[ids])
    m = rot * scene.scales[ids][:, None, :]
    cov3 = m @ m.transpose(0, 2, 1)
    tan_x, tan_y = 0.5 * cam.width / cam.fx, 0.5 * cam.height / cam.fy
    tx = z * np.clip(p[:, 0] / z, -1.3 * tan_x, 1.3 * tan_x)
    ty = z * np.clip(p[:, 1] / z, -1.3 * tan_y, 1.3 * tan_y)
    jac = np.zeros((len(z), 2, 3))
    jac[:, 0, 0] = cam.fx / z
    jac[:, 0, 2] = -cam.fx * tx / (z * z)
    jac[:, 1, 1] = cam.fy / z
    jac[:, 1, 2] = -cam.fy * ty / (z * z)
    t = jac @ r_w
    cov2 = t @ cov3 @ t.transpose(0, 2, 1)
    s00 = cov2[:, 0, 0] + DILATION
    s01 = cov2[:, 0, 1]
    s11 = cov2[:, 1, 1] + DILATION
    det = s00 * s11 - s01 * s01
    ok = det > 0
    det_safe = np.where(ok, det, 1.0)
    conic = np.stack([s11, -s01, s00], axis=1) / det_safe[:, None]
    mid = 0.5 * (s00 + s11)
    lam = mid + np.sqrt(np.maximum(0.1, mid * mid - det))
    radius = np.ceil(3.0 * np.sqrt(lam))
    mean2d = np.stack([cam.fx * p[:, 0] / z + cam.cx, cam.fy * p[:, 1] / z + cam.cy], axis=1)
    tx_n, ty_n = -(-cam.width // TILE), -(-cam.height // TILE)
    # The tile rectangle of 3DGS's getRect: [floor((p - r) / 16), floor((p + r + 15) / 16)).
    rect = np.stack([
        np.clip(np.floor((mean2d[:, 0] - radius) / TILE), 0, tx_n),
        np.clip(np.floor((mean2d[:, 1] - radius) / TILE), 0, ty_n),
        np.clip(np.floor((mean2d[:, 0] + radius + TILE - 1) / TILE), 0, tx_n),
        np.clip(np.floor((mean2d[:, 1] + radius + TILE - 1) / TILE), 0, ty_n),
    ], axis=1).astype(np.int64)
    ok &= (rect[:, 2] > rect[:, 0]) & (rect[:, 3] > rect[:, 1])
    dirs = scene.means[ids] - cam.position
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    colour = eval_sh(scene.sh[ids], dirs)
    cov2d = np.stack([s00, s01, s11], axis=1)
    return Projection(cam, ids[ok], mean2d[ok], conic[ok], cov2d[ok], radius[ok], z[ok],
                      colour[ok], scene.opacities[ids[ok]], rect[ok])


@dataclass
class TileBins:
    """Per-tile Gaussian lists in CSR form: tile ``t`` holds projection rows
    ``entries[offsets[t]:offsets[t + 1]]``, front to back (depth ascending, ties by index)."""

    proj: Projection
    offsets: np.ndarray
    entries: np.ndarray

    def __len__(self):
        return len(self.offsets) - 1

    def tile(self, t: int) -> np.ndarray:
        return self.entries[self.offsets[t]:self.offsets[t + 1]]

    def pixel_centres(self, t: int):
        """Pixel-centre coordinates (x, y) of tile ``t``'s in-image pixels, and their flat
        image indices, row-major within the tile."""
        cam = self.proj.camera
        ty, tx = divmod(t, self.proj.tiles_x)
        ys, xs = np.mgrid[ty * TILE:min((ty + 1) * TILE, cam.height),
                          tx * TILE:min((tx + 1) * TILE, cam.width)]
        return xs.ravel() + 0.5, ys.ravel() + 0.5, (ys * cam.width + xs).ravel()

    def power(self, t: int, rows: np.ndarray | None = None):
        """Exponent -0.5 (a dx^2 + c dy^2) - b dx dy for every (Gaussian, pixel) pair of tile
        ``t``: shape (len(rows), pixels), and the flat pixel indices."""
        rows = self.tile(t) if rows is None else rows
        px, py, flat = self.pixel_centres(t)
        dx = px[None, :] - self.proj.mean2d[rows, 0:1]
        dy = py[None, :] - self.proj.mean2d[rows, 1:2]
        a, b, c = (self.proj.conic[rows, i:i + 1] for i in range(3))
        return -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy, flat


def bin_tiles(proj: Projection, order: np.ndarray | None = None) -> TileBins:
    """Duplicate each Gaussian into every tile its rectangle covers and sort each tile's list by
    depth (front to back), the ``(tile << 32) | depth`` key sort of 3DGS. ``order`` overrides the
    within-tile key (e.g. a shuffle, for order-independence tests)."""
    rect = proj.tile_rect
    w, h = rect[:, 2] - rect[:, 0], rect[:, 3] - rect[:, 1]
    count = w * h
    row = np.repeat(np.arange(len(proj)), count)
    start = np.repeat(np.cumsum(count) - count, count)
    local = np.arange(count.sum()) - start
    tx = rect[row, 0] + local % w[row]
    ty = rect[row, 1] + local // w[row]
    tile = ty * proj.tiles_x + tx
    key = proj.depth[row] if order is None else np.asarray(order)[row]
    perm = np.lexsort((row, key, tile))
    n_tiles = proj.tiles_x * proj.tiles_y
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    np.cumsum(np.bincount(tile, minlength=n_tiles), out=offsets[1:])
    return TileBins(proj, offsets, row[perm])


def gaussian_alpha(opacity: np.ndarray, power: np.ndarray, cap: float = ALPHA_MAX):
    """alpha = min(cap, opacity * exp(power)), zero where power > 0 or alpha < 1/255."""
    alpha = np.minimum(cap, opacity[:, None] * np.exp(np.minimum(power, 0.0)))
    alpha[(power > 0) | (alpha < ALPHA_MIN)] = 0.0
    return alpha


def render_sorted(bins: TileBins, background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """The 3DGS image (H, W, 3) float64: front-to-back blending per tile, with the 0.99 alpha
    clamp, 1/255 skip and 1e-4 transmittance stop."""
    cam = bins.proj.camera
    img = np.zeros((cam.height * cam.width, 3))
    bg = np.asarray(background, dtype=np.float64)
    for t in range(len(bins)):
        rows = bins.tile(t)
        if len(rows) == 0:
            _, _, flat = bins.pixel_centres(t)
            img[flat] = bg
            continue
        power, flat = bins.power(t, rows)
        alpha = gaussian_alpha(bins.proj.opacity[rows], power)
        t_after = np.cumprod(1.0 - alpha, axis=0)
        # 3DGS stops before the Gaussian that would take T below 1e-4; T only falls, so the
        # included Gaussians are exactly those with T_after >= 1e-4.
        weight = np.where(t_after >= T_MIN, alpha * (t_after / (1.0 - alpha)), 0.0)
        img[flat] = weight.T @ bins.proj.colour[rows] + (1.0 - weight.sum(axis=0))[:, None] * bg
    return img.reshape(cam.height, cam.width, 3)
