"""Sparse-coding super-resolution (SC: Yang, Wright, Huang, Ma, TIP 2010), the method SRCNN
generalises and the baseline of its papers' tables.

Coupled dictionaries are learned from training images: LR features are the first and second
derivatives of the bicubic-upscaled Y (4 maps, 5x5 patches -> 100 values), HR patches are 5x5
with their mean removed. Each overlapping LR patch of a test image is sparse-coded on the LR
dictionary (lasso), the same code applied to the HR dictionary gives its HR patch, patches are
averaged where they overlap, and back-projection enforces the LR image. Pixel values are 0..255
as in the authors' code; SPAMS (Mairal et al.'s sparse modelling library) learns the
dictionaries and solves the lasso.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from srcnn_tf import imaging

PATCH = 5
FILE, METADATA = "dictionaries.npz", "metadata.json"
_D1 = np.array([[-1.0, 0.0, 1.0]])
_D2 = np.array([[1.0, 0.0, -2.0, 0.0, 1.0]])
FILTERS = (_D1, _D1.T, _D2, _D2.T)  # the authors' hf1, vf1, hf2, vf2


@dataclasses.dataclass(frozen=True)
class Dictionaries:
    """Coupled dictionaries: `high` (25, K) and `low` (100, K), unit-norm columns."""

    scale: int
    high: np.ndarray
    low: np.ndarray
    train_lambda: float
    patches: int

    def save(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.savez_compressed(path, scale=self.scale, high=self.high.astype(np.float32),
                            low=self.low.astype(np.float32), train_lambda=self.train_lambda,
                            patches=self.patches)

    @classmethod
    def load(cls, path: str) -> "Dictionaries":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no SC dictionary (train one with "
                                    f"`make sc-dictionary SCALE=<s>`)")
        with np.load(path) as z:
            return cls(int(z["scale"]), z["high"].astype(np.float64),
                       z["low"].astype(np.float64), float(z["train_lambda"]), int(z["patches"]))


def lr_features(mid: np.ndarray) -> np.ndarray:
    """Bicubic-upscaled Y (H, W) float, 0..255 -> (H, W, 4) derivative maps, MATLAB `conv2(...,
    'same')` (zero border)."""
    mid = np.asarray(mid, np.float64)
    return np.stack([cv2.filter2D(mid, cv2.CV_64F, np.flip(k), borderType=cv2.BORDER_CONSTANT)
                     for k in FILTERS], axis=-1)


def _gather(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (N, PATCH * PATCH * C) patches whose top-left corners are (rows, cols)."""
    win = np.lib.stride_tricks.sliding_window_view(image, (PATCH, PATCH), axis=(0, 1))
    patches = win[rows, cols]  # (N, [C,] P, P)
    if image.ndim == 3:
        patches = np.moveaxis(patches, 1, -1)  # (N, P, P, C)
    return patches.reshape(len(rows), -1)


def _pair(hr_y: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """HR Y uint8 (H, W[, 1]) -> (HR, bicubic-upscaled) float64 0..255, modcropped."""
    hr = imaging.modcrop(np.asarray(hr_y).reshape(hr_y.shape[:2]), scale).astype(np.float64)
    return hr, imaging.degrade(hr / 255.0, scale) * 255.0


def sample_patches(hr_images: Iterable[np.ndarray], scale: int, count: int, seed: int = 0,
                   prune_percentile: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs from HR Y images (uint8): (high (N, 25) mean-removed HR patches, low
    (N, 100) LR features), about `count` in all, spread over the images by their size; the
    `prune_percentile` % flattest HR patches are dropped (the authors' patch pruning)."""
    pairs = [_pair(y, scale) for y in hr_images]
    if not pairs:
        raise ValueError("sample_patches: no training images")
    pairs = [(h, m) for h, m in pairs if min(h.shape) > 3 * PATCH]
    if not pairs:
        raise ValueError(f"sample_patches: every image is smaller than {3 * PATCH} pixels")
    areas = np.array([(h.shape[0] - 3 * PATCH) * (h.shape[1] - 3 * PATCH) for h, _ in pairs])
    rng = np.random.default_rng(seed)
    highs, lows = [], []
    for (hr, mid), n in zip(pairs, np.maximum(1, np.round(count * areas / areas.sum()))):
        # a patch's width clear of the borders, where the zero-padded derivatives are false
        rows = rng.integers(PATCH, hr.shape[0] - 2 * PATCH, int(n))
        cols = rng.integers(PATCH, hr.shape[1] - 2 * PATCH, int(n))
        h = _gather(hr, rows, cols)
        highs.append(h - h.mean(axis=1, keepdims=True))
        lows.append(_gather(lr_features(mid), rows, cols))
    high, low = np.concatenate(highs), np.concatenate(lows)
    keep = high.var(axis=1) > np.percentile(high.var(axis=1), prune_percentile)
    return high[keep], low[keep]


def train_dictionaries(high: np.ndarray, low: np.ndarray, scale: int, atoms: int = 1024,
                       lam: float = 0.15, epochs: int = 1, seed: int = 0,
                       verbose: bool = False) -> Dictionaries:
    """Learns the coupled dictionaries on the joint, normalised vectors [sqrt(25) h; sqrt(100)
    l] (the authors' train_coupled_dict) with SPAMS' online dictionary learning, objective
    0.5 ||X - D A||^2 + lam ||A||_1 with unit-bounded atoms, started from `atoms` random
    training vectors (as the authors do)."""
    import spams

    norms_h, norms_l = np.linalg.norm(high, axis=1), np.linalg.norm(low, axis=1)
    ok = (norms_h > 1e-8) & (norms_l > 1e-8)
    x = np.concatenate([np.sqrt(high.shape[1]) * high[ok] / norms_h[ok, None],
                        np.sqrt(low.shape[1]) * low[ok] / norms_l[ok, None]], axis=1)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if len(x) < atoms:
        raise ValueError(f"{len(x)} training patches for {atoms} atoms: sample more")
    rng = np.random.default_rng(seed)
    init = x[rng.choice(len(x), atoms, replace=False)].T
    batch = 512
    d = spams.trainDL(np.asfortranarray(x.T), D=np.asfortranarray(init), lambda1=lam, mode=2,
                      iter=max(1, epochs * len(x) // batch), batchsize=batch, verbose=verbose)
    dh, dl = d[:high.shape[1]], d[high.shape[1]:]
    dh = dh / np.maximum(np.linalg.norm(dh, axis=0, keepdims=True), 1e-12)
    dl = dl / np.maximum(np.linalg.norm(dl, axis=0, keepdims=True), 1e-12)
    return Dictionaries(scale, dh, dl, lam, int(ok.sum()))


def upscale_matrix(lr_length: int, scale: int) -> np.ndarray:
    """(scale * lr_length, lr_length): MATLAB bicubic upscaling of one axis as a matrix."""
    out = scale * lr_length
    weights, indices = imaging.resize_contributions(lr_length, out, float(scale))
    a = np.zeros((out, lr_length))
    np.add.at(a, (np.repeat(np.arange(out), weights.shape[1]), indices.ravel()), weights.ravel())
    return a


def recover_lr(mid: np.ndarray, scale: int) -> np.ndarray:
    """The LR image behind a bicubic upscale (H, W) -> (H / scale, W / scale): upscaling is an
    injective linear map per axis, so least squares inverts it (exact up to the input's
    rounding)."""
    if mid.shape[0] % scale or mid.shape[1] % scale:
        raise ValueError(f"a {mid.shape[1]}x{mid.shape[0]} bicubic input is not an x{scale} "
                         f"upscale (sides must be multiples of {scale})")
    ah = upscale_matrix(mid.shape[0] // scale, scale)
    aw = upscale_matrix(mid.shape[1] // scale, scale)
    left = np.linalg.lstsq(ah, mid, rcond=None)[0]  # (h, W)
    return np.linalg.lstsq(aw, left.T, rcond=None)[0].T


def back_projection(sr: np.ndarray, lr: np.ndarray, iterations: int = 20) -> np.ndarray:
    """The authors' global reconstruction step: `iterations` times, the bicubic-downscaled SR
    is compared with the LR image and the upscaled difference, smoothed by their squared 5x5
    Gaussian (sigma 1), is added back. sr (H, W), lr (h, w), float 0..255."""
    g = cv2.getGaussianKernel(5, 1.0)
    p = (g @ g.T) ** 2
    p /= p.sum()
    for _ in range(iterations):
        diff = lr - imaging.imresize(sr, output_shape=lr.shape)
        up = imaging.imresize(diff, output_shape=sr.shape)
        sr = sr + cv2.filter2D(up, cv2.CV_64F, p, borderType=cv2.BORDER_CONSTANT)
    return sr


def _grid(length: int, step: int) -> np.ndarray:
    """Patch corners along one axis as the authors place them: every `step` from 2, and the
    last at length - PATCH - 3 (0-based), two pixels clear of the zero-padded derivatives."""
    last = length - PATCH - 3
    return np.unique(np.append(np.arange(2, last + 1, step), last))


class SparseCodingSR:
    """SC as a predictor: bicubic Y (H, W, 1) float [0, 1] of an x`scale` upscale -> SR Y,
    same shape. `scale` defaults to the one the dictionaries were learned for; the authors'
    released code comes with dictionaries learned at x2, most likely how SC was run at x3 for
    the SRCNN papers' tables (ours at x3 land 0.1 dB from them; learned at x3, 0.5-0.7 above).

    `lam` weighs the lasso, `overlap` is the overlap of neighbouring 5x5 patches (4: every
    pixel), `chunk` patches are coded at once on `threads` threads (-1: all cores),
    `progress(done, total)` is called per chunk.
    """

    def __init__(self, dictionaries: Dictionaries, scale: int | None = None, lam: float = 0.2,
                 overlap: int = 4,
                 backprojection_iters: int = 20, chunk: int = 8192, threads: int = -1,
                 progress: Callable[[int, int], None] | None = None) -> None:
        if not 0 <= overlap < PATCH:
            raise ValueError(f"overlap must be in [0, {PATCH - 1}], got {overlap}")
        self.d = dictionaries
        self.scale = scale or dictionaries.scale
        self.lam = lam
        self.step = PATCH - overlap
        self.backprojection_iters = backprojection_iters
        self.chunk = chunk
        self.threads = threads
        self.progress = progress
        self._low = np.asfortranarray(self.d.low)

    def code(self, features: np.ndarray) -> np.ndarray:
        """(N, 100) LR features, each scaled to norm <= 1 -> (N, K) lasso codes minimising
        0.5 ||y - D_l a||^2 + lam ||a||_1 (the authors' feature-sign objective), by SPAMS'
        LARS (exact, batched, multithreaded)."""
        import spams

        codes = spams.lasso(np.asfortranarray(features.T), D=self._low, lambda1=self.lam,
                            mode=2, numThreads=self.threads)
        return codes.T.toarray()

    def _patches(self, mid: np.ndarray) -> np.ndarray:
        """Mid (H, W) 0..255 -> SR (H, W) before back-projection."""
        h, w = mid.shape
        if min(h, w) < PATCH + 5:
            return mid.copy()
        r, c = np.meshgrid(_grid(h, self.step), _grid(w, self.step), indexing="ij")
        rows, cols = r.ravel(), c.ravel()
        feats = lr_features(mid)
        out, count = np.zeros_like(mid), np.zeros_like(mid)
        for start in range(0, len(rows), self.chunk):
            rr, cc = rows[start:start + self.chunk], cols[start:start + self.chunk]
            f = _gather(feats, rr, cc)
            norm = np.linalg.norm(f, axis=1)
            f = np.where(norm[:, None] > 1, f / np.maximum(norm[:, None], 1e-12), f)
            hp = self.code(f) @ self.d.high.T  # (n, 25)
            m = _gather(mid, rr, cc)
            mean = m.mean(axis=1, keepdims=True)
            # contrast: the HR patch gets 1.2x the norm of the mean-removed bicubic patch
            scale = 1.2 * np.linalg.norm(m - mean, axis=1) / np.maximum(
                np.linalg.norm(hp, axis=1), 1e-12)
            hp = hp * scale[:, None] + mean
            for k in range(PATCH * PATCH):  # overlapping patches: unbuffered adds
                dy, dx = divmod(k, PATCH)
                np.add.at(out, (rr + dy, cc + dx), hp[:, k])
                np.add.at(count, (rr + dy, cc + dx), 1.0)
            if self.progress:
                self.progress(min(start + self.chunk, len(rows)), len(rows))
        return np.where(count > 0, out / np.maximum(count, 1), mid)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mid = np.asarray(x, np.float64).reshape(x.shape[:2]) * 255.0
        sr = self._patches(mid)
        if self.backprojection_iters:
            sr = back_projection(sr, recover_lr(mid, self.scale), self.backprojection_iters)
        return (sr / 255.0).reshape(x.shape).astype(np.float32)


def train_from_folders(folders: Sequence[str], scale: int, count: int = 100_000,
                       atoms: int = 1024, lam: float = 0.15, epochs: int = 1, seed: int = 0,
                       verbose: bool = False,
                       names: Sequence[str] | None = None) -> Dictionaries:
    """Dictionaries for `scale` from the images of `folders` (their Y channel; only the files
    `names` when given)."""
    paths = [p for f in folders for p in imaging.list_images(f)
             if names is None or os.path.basename(p) in names]
    if not paths:
        raise ValueError(f"no images in {list(folders)}")
    ys = (imaging.to_y(imaging.load_image(p)) for p in paths)
    high, low = sample_patches(ys, scale, count, seed)
    return train_dictionaries(high, low, scale, atoms, lam, epochs, seed, verbose)


def save_version(dictionaries: Dictionaries, root: str, info: dict) -> str:
    """Writes `<root>/sc_x{scale}/<next version>/` with the dictionaries and metadata.json
    (`info`: what they were learned from, and how long it took). Returns the folder."""
    from srcnn_tf.runs import model_versions

    base = os.path.join(root, f"sc_x{dictionaries.scale}")
    path = os.path.join(base, str(max(model_versions(base), default=0) + 1))
    dictionaries.save(os.path.join(path, FILE))
    meta = {"method": "sc", "scale": dictionaries.scale, "atoms": dictionaries.high.shape[1],
            "patch": PATCH, "train_lambda": dictionaries.train_lambda,
            "patches": dictionaries.patches, **info}
    with open(os.path.join(path, METADATA), "w") as f:
        json.dump(meta, f, indent=1)
    return path


def load_newest(root: str, scale: int) -> tuple[Dictionaries, str]:
    """The newest `<root>/sc_x{scale}/<version>` -> (dictionaries, folder)."""
    from srcnn_tf.runs import model_versions

    base = os.path.join(root, f"sc_x{scale}")
    versions = model_versions(base)
    if not versions:
        raise FileNotFoundError(f"no SC dictionaries for x{scale} under {base}: learn them "
                                f"with `make sc-dictionary SCALE={scale}`")
    path = os.path.join(base, str(max(versions)))
    return Dictionaries.load(os.path.join(path, FILE)), path
