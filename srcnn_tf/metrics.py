"""PSNR and SSIM as the SR literature computes them: uint8 Y, `crop_border` pixels shaved.

The protocol sits in the signatures: pass uint8 (or float already in [0, 255]) images; values are
computed in float64 and per image. Average per-image values over a set (`mean`), never pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def _prepare(img: np.ndarray, crop_border: int) -> np.ndarray:
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if crop_border:
        x = x[crop_border:-crop_border, crop_border:-crop_border]
    return x


def _check(sr: np.ndarray, hr: np.ndarray, crop_border: int) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"shapes differ: sr {sr.shape} vs hr {hr.shape}")
    if crop_border < 0 or 2 * crop_border >= min(hr.shape[:2]):
        raise ValueError(f"crop_border={crop_border} does not fit an image of shape {hr.shape}")


def psnr(sr: np.ndarray, hr: np.ndarray, *, crop_border: int, data_range: float = 255.0) -> float:
    """PSNR in dB between two HxW[x1] images on the same [0, data_range] scale (uint8 Y usually).

    `crop_border` pixels are shaved from each side first (the paper uses the scale factor).
    Identical images give +inf.
    """
    _check(sr, hr, crop_border)
    a, b = _prepare(sr, crop_border), _prepare(hr, crop_border)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    k = cv2.getGaussianKernel(size, sigma)
    return k @ k.T


def ssim(sr: np.ndarray, hr: np.ndarray, *, crop_border: int, data_range: float = 255.0) -> float:
    """SSIM (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5, K = (0.01, 0.03), 'valid'
    filtering: the `ssim_index.m` used by the SR evaluation code. Gray HxW[x1] inputs, [0, 255].
    """
    _check(sr, hr, crop_border)
    a, b = _prepare(sr, crop_border), _prepare(hr, crop_border)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    win = _gaussian_window()

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())
