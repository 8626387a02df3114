"""The patch geometry of the records: HR preparation, augmentation, the degraded/bicubic pair,
the paper's patch grid, and the Example each patch becomes. No TensorFlow (workers import it)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from srcnn_tf import imaging, tfrecord

# Example keys. input/label: float32 raw bytes, row-major HxWxC, values in ~[0, 1].
FEATURES = ("input", "label", "source", "row", "col", "aug", "height", "width")
SCALE = "scale"  # float, the patch's upscaling factor: only in multi-scale records
AUG_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)  # FSRCNN's downscaled copies
AUG_ROTATIONS = 4  # rot90 k = 0..3; with a flip: 8 dihedral variants


def prepare_hr(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 HxWx{1,3} -> uint8 HxWxC: Y (channels=1) or RGB (channels=3; gray replicated)."""
    if channels == 1:
        return imaging.to_y(image)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def augment_variants(hr: np.ndarray, augment: bool,
                     downscale: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(aug id, uint8 HR) pairs: id = scale_index * 8 + flip * 4 + k (rot90 k times).

    Without augmentation only id 0 (the image itself). With it: FSRCNN's downscaled copies
    (MATLAB bicubic, rounded to uint8) times the 8 flips/rotations; with `downscale` alone the
    downscaled copies only (ids 0, 8, .., 32), for training that flips and rotates on the fly.
    """
    if not (augment or downscale):
        yield 0, hr
        return
    for si, s in enumerate(AUG_SCALES):
        base = hr if s == 1.0 else imaging.imresize(hr, scale=s)
        if not augment:
            yield si * 8, base
            continue
        for flip in (0, 1):
            img = base[:, ::-1] if flip else base
            for k in range(AUG_ROTATIONS):
                yield si * 8 + flip * 4 + k, np.ascontiguousarray(np.rot90(img, k))


def make_pair(hr_uint8: np.ndarray, scale: float,
              blur_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 HR HxWxC -> (input, label) float32 HxWxC, modcropped (imaging.modcrop: to a
    multiple of the scale, or of p for a fractional p/q): bicubic-degraded and HR / 255."""
    hr = imaging.modcrop(hr_uint8, scale).astype(np.float64) / 255.0
    return imaging.degrade(hr, scale, blur_sigma).astype(np.float32), hr.astype(np.float32)


def patch_positions(height: int, width: int, patch_size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of the paper's patch grid (MATLAB `1:stride:h-size+1`, 0-based)."""
    return [
        (r, c)
        for r in range(0, height - patch_size + 1, stride)
        for c in range(0, width - patch_size + 1, stride)
    ]


def extract_patches(
    inp: np.ndarray, label: np.ndarray, patch_size: int, label_size: int, stride: int
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(row, col, input patch PxPxC, centred label patch LxLxC) for every grid position."""
    p, l = patch_size, label_size
    pad = (p - l) // 2
    for r, c in patch_positions(inp.shape[0], inp.shape[1], p, stride):
        yield r, c, inp[r : r + p, c : c + p], label[r + pad : r + pad + l, c + pad : c + pad + l]


def encode_example(inp: np.ndarray, label: np.ndarray, source: int, row: int, col: int,
                   aug: int, scale: float | None = None) -> bytes:
    """One patch (or whole validation image) as Example bytes; `scale` only for multi-scale
    records (single-scale ones keep the scale in their manifest)."""
    extra = {} if scale is None else {SCALE: float(scale)}
    return tfrecord.encode_example(
        {
            **extra,
            "input": np.ascontiguousarray(inp, dtype=np.float32).tobytes(),
            "label": np.ascontiguousarray(label, dtype=np.float32).tobytes(),
            "source": source,
            "row": row,
            "col": col,
            "aug": aug,
            "height": int(inp.shape[0]),
            "width": int(inp.shape[1]),
        }
    )


def image_patches(hr: np.ndarray, index: int, scales: tuple[float, ...], patch_size: int,
                  label_size: int, stride: int, blur_sigma: float,
                  augment: bool, downscale: bool = False, edge_pad: int = 0
                  ) -> Iterator[tuple[int, int, int, float, np.ndarray, np.ndarray]]:
    """(row, col, aug id, scale, input PxPxC, label LxLxC) of every training patch of source
    image `index` (uint8 HR HxWxC): each augmented variant on the paper's grid. With several
    `scales` (a multi-scale set), patch position j takes scale (index + j) mod K of the K.
    With `edge_pad`, input and label are first edge-replicated by that many pixels a side
    (row/col then count from the padded corner)."""
    for aug, variant in augment_variants(hr, augment, downscale):
        for k, scale in enumerate(scales):
            if min(imaging.modcrop(variant, scale).shape[:2]) < patch_size:
                continue  # too small for one patch (and for the bicubic degradation)
            inp, label = make_pair(variant, scale, blur_sigma)
            if edge_pad:
                widths = ((edge_pad, edge_pad), (edge_pad, edge_pad), (0, 0))
                inp, label = np.pad(inp, widths, mode="edge"), np.pad(label, widths, mode="edge")
            grid = extract_patches(inp, label, patch_size, label_size, stride)
            for j, (r, c, pi, pl) in enumerate(grid):
                if (index + j) % len(scales) == k:
                    yield r, c, aug, scale, pi, pl


def image_examples(hr: np.ndarray, index: int, scales: tuple[float, ...], patch_size: int,
                   label_size: int, stride: int, blur_sigma: float,
                   augment: bool, downscale: bool = False, edge_pad: int = 0) -> Iterator[bytes]:
    """Example bytes of every patch of `image_patches` (the scale stored when there are
    several)."""
    multi = len(scales) > 1
    for r, c, aug, scale, pi, pl in image_patches(hr, index, scales, patch_size, label_size,
                                                  stride, blur_sigma, augment, downscale,
                                                  edge_pad):
        yield encode_example(pi, pl, index, r, c, aug, scale if multi else None)


def val_pairs(hr: np.ndarray, scales: tuple[float, ...],
              blur_sigma: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(scale, input, label) of a held-out whole image (make_pair) at each scale it is large
    enough for: the shave plus 6 pixels a side left to measure."""
    return [(s, *make_pair(hr, s, blur_sigma)) for s in scales
            if min(imaging.modcrop(hr, s).shape[:2]) >= 2 * imaging.shave(s) + 12]


def val_examples(hr: np.ndarray, index: int, scales: tuple[float, ...],
                 blur_sigma: float) -> list[bytes]:
    """Example bytes of each of val_pairs; the scale stored when there are several."""
    return [encode_example(inp, label, index, 0, 0, 0, s if len(scales) > 1 else None)
            for s, inp, label in val_pairs(hr, scales, blur_sigma)]
