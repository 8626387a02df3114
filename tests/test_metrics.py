"""PSNR / SSIM protocol (the golden values against the paper are in test_imaging)."""

from __future__ import annotations

import numpy as np
import pytest

from srcnn_tf import metrics


def test_psnr_known_value_and_crop():
    hr = np.zeros((10, 10), np.uint8)
    sr = hr.copy()
    sr[0, :] = 10  # only in the border
    assert metrics.psnr(sr, hr, crop_border=1) == float("inf")
    sr[5, 5] = 16  # mse = 256 / 64 over the 8x8 interior
    assert metrics.psnr(sr, hr, crop_border=1) == pytest.approx(10 * np.log10(255**2 / 4.0))


def test_psnr_accepts_hw1_and_rejects_bad_shapes():
    a = np.full((8, 8, 1), 3, np.uint8)
    assert metrics.psnr(a, a + 1, crop_border=0) == pytest.approx(10 * np.log10(255**2))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(a, a[:7], crop_border=0)
    with pytest.raises(ValueError, match="crop_border"):
        metrics.psnr(a, a, crop_border=4)


def test_ssim_identity_and_ordering():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(40, 40)).astype(np.uint8)
    assert metrics.ssim(hr, hr, crop_border=2) == pytest.approx(1.0)
    small = np.clip(hr + rng.normal(0, 3, hr.shape), 0, 255)
    big = np.clip(hr + rng.normal(0, 30, hr.shape), 0, 255)
    assert 1 > metrics.ssim(small, hr, crop_border=2) > metrics.ssim(big, hr, crop_border=2) > 0


def test_ssim_matches_scikit_image_gaussian_variant():
    """skimage's Gaussian SSIM (sample covariance off) is the same formula and window."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, size=(48, 52)).astype(np.float64)
    sr = np.clip(hr + rng.normal(0, 12, hr.shape), 0, 255)
    ref = structural_similarity(sr, hr, data_range=255, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert metrics.ssim(sr, hr, crop_border=0) == pytest.approx(ref, abs=2e-3)
