"""Image-quality metrics: PSNR and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03), for images in [0, 1]."""

import numpy as np


def psnr(img: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf for equal images)."""
    mse = float(np.mean((np.asarray(img, np.float64) - np.asarray(ref, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim(img: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """Mean structural similarity, per channel then averaged (the definition of the 3DGS
    evaluation scripts)."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(img, np.float64)
    y = np.asarray(ref, np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    blur = lambda a: gaussian_filter(a, sigma=1.5, truncate=3.5, mode="constant")  # noqa: E731
    vals = []
    for ch in range(x.shape[2]):
        a, b = x[..., ch], y[..., ch]
        mu_a, mu_b = blur(a), blur(b)
        va = blur(a * a) - mu_a ** 2
        vb = blur(b * b) - mu_b ** 2
        cov = blur(a * b) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
        r = 5  # drop the border the 11x11 window does not fully cover ("valid" SSIM)
        vals.append(m[r:-r, r:-r].mean())
    return float(np.mean(vals))
