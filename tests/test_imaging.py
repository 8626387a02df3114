"""The imaging protocol: loading, MATLAB YCbCr, modcrop, MATLAB bicubic."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from srcnn_tf import evaluate, imaging, metrics


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


class TestLoadImage:
    def test_gray_rgb_rgba_palette(self):
        rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 3
        assert imaging.load_image(_encode(Image.fromarray(rgb), "PNG")).shape == (4, 5, 3)
        np.testing.assert_array_equal(imaging.load_image(_encode(Image.fromarray(rgb), "PNG")), rgb)
        gray = rgb[..., 0]
        np.testing.assert_array_equal(
            imaging.load_image(_encode(Image.fromarray(gray), "PNG"))[..., 0], gray)
        rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=2)
        np.testing.assert_array_equal(
            imaging.load_image(_encode(Image.fromarray(rgba), "PNG")), rgb)
        pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
        out = imaging.load_image(_encode(pal, "PNG"))
        np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))

    def test_alpha_is_kept_when_asked(self):
        rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 3
        alpha = np.arange(20, dtype=np.uint8).reshape(4, 5, 1) * 13
        rgba = np.concatenate([rgb, alpha], axis=2)
        np.testing.assert_array_equal(
            imaging.load_image(_encode(Image.fromarray(rgba), "PNG"), keep_alpha=True), rgba)
        la = np.concatenate([rgb[..., :1], alpha], axis=2)
        np.testing.assert_array_equal(
            imaging.load_image(_encode(Image.fromarray(la), "PNG"), keep_alpha=True), la)
        pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
        pal.info["transparency"] = 0
        out = imaging.load_image(_encode(pal, "PNG"), keep_alpha=True)
        assert out.shape == (4, 5, 4) and 0 in out[..., 3] and 255 in out[..., 3]
        # Without alpha in the file, nothing is added.
        assert imaging.load_image(_encode(Image.fromarray(rgb), "PNG"), keep_alpha=True).shape \
            == (4, 5, 3)
        assert imaging.load_image(_encode(Image.fromarray(rgb[..., 0]), "PNG"),
                                  keep_alpha=True).shape == (4, 5, 1)

    def test_animations_and_multi_page_files_are_refused(self, tmp_path):
        frames = [Image.fromarray(np.full((4, 5, 3), 60 * i, np.uint8)) for i in range(3)]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        with pytest.raises(imaging.ImageError, match=r"a\.gif: 3 frames \(animated or "
                                                     r"multi-page\); single images only"):
            imaging.load_image(tmp_path / "a.gif")
        frames[0].save(tmp_path / "one.gif")
        assert imaging.load_image(tmp_path / "one.gif").shape == (4, 5, 3)

    def test_16_bit_is_scaled(self):
        v = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
        out = imaging.load_image(_encode(Image.fromarray(v), "PNG"))
        np.testing.assert_array_equal(out[..., 0], [[0, 1, 255, 128]])

    def test_cmyk(self):
        cmyk = Image.new("CMYK", (6, 4), (0, 255, 255, 0))  # red
        out = imaging.load_image(_encode(cmyk, "JPEG"))
        assert out.shape == (4, 6, 3)
        assert out[..., 0].min() > 200 and out[..., 1].max() < 60

    def test_not_an_image_names_the_file(self, tmp_path):
        bad = tmp_path / "notes.png"
        bad.write_text("hello")
        with pytest.raises(imaging.ImageError, match=r"notes\.png: not a readable image "
                                                     r"\(no image format recognized\)$"):
            imaging.load_image(bad)
        with pytest.raises(imaging.ImageError, match=r"^b\.png: .*recognized\)$"):  # bytes
            imaging.load_image(b"hello", name="b.png")
        with pytest.raises(imaging.ImageError, match="cut.png"):
            imaging.load_image(_encode(Image.new("RGB", (40, 40)), "PNG")[:60], name="cut.png")


class TestSaveImage:
    @pytest.mark.parametrize("channels,ext", [(1, "png"), (2, "png"), (3, "webp"), (4, "webp"),
                                              (4, "tif"), (3, "bmp")])
    def test_lossless_formats_round_trip(self, tmp_path, channels, ext):
        img = np.random.default_rng(channels).integers(0, 256, (9, 11, channels), np.uint8)
        imaging.save_image(tmp_path / f"a.{ext}", img)
        back = imaging.load_image(tmp_path / f"a.{ext}", keep_alpha=True)
        np.testing.assert_array_equal(back, img)

    def test_jpeg_keeps_full_chroma_at_high_quality(self, tmp_path):
        img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
        imaging.save_image(tmp_path / "a.jpg", img)
        with Image.open(tmp_path / "a.jpg") as im:
            assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
            assert max(im.quantization[0]) <= 12  # quality 95; at Pillow's default (75) up to 61

    def test_format_is_checked_before_writing(self, tmp_path):
        with pytest.raises(ValueError, match=r"a\.xyz: unknown image extension '\.xyz'"):
            imaging.output_format(tmp_path / "a.xyz", 3)
        with pytest.raises(ValueError, match="unknown image extension '\\(none\\)'"):
            imaging.output_format(tmp_path / "noext", 3)
        for channels in (2, 4):
            with pytest.raises(ValueError, match=r"a\.jpg: JPEG has no alpha channel"):
                imaging.save_image(tmp_path / "a.jpg", np.zeros((2, 2, channels), np.uint8))
        assert not list(tmp_path.iterdir())
        assert imaging.output_format(tmp_path / "a.JPEG", 3) == "JPEG"


def test_rgb2ycbcr_matches_matlab():
    # MATLAB: rgb2ycbcr(uint8([0 0 0; 255 255 255; 255 0 0])) ->
    #   [16 128 128; 235 128 128; 81 90 240]
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(
        imaging.rgb2ycbcr(rgb)[0], [[16, 128, 128], [235, 128, 128], [81, 90, 240]])
    x = np.random.default_rng(0).uniform(size=(8, 9, 3))
    np.testing.assert_allclose(imaging.ycbcr2rgb(imaging.rgb2ycbcr(x)), x, atol=1e-12)


def test_gray_is_its_own_y():
    g = np.random.default_rng(0).integers(0, 256, size=(5, 6, 1), dtype=np.uint8)
    np.testing.assert_array_equal(imaging.to_y(g), g)


def test_modcrop():
    assert imaging.modcrop(np.zeros((250, 361, 3)), 3).shape == (249, 360, 3)
    assert imaging.modcrop(np.zeros((12, 12)), 4).shape == (12, 12)


def test_fractional_scales_crop_to_the_numerator_and_round_trip_in_size():
    assert imaging.scale_ratio(2.5) == (5, 2) and imaging.scale_ratio(3) == (3, 1)
    assert imaging.scale_ratio(4 / 3) == (4, 3)
    assert imaging.modcrop(np.zeros((101, 77)), 2.5).shape == (100, 75)
    assert imaging.modcrop(np.zeros((101, 77)), 1.5).shape == (99, 75)
    assert imaging.modcrop(np.zeros((250, 361)), 3.0).shape == (249, 360)  # 3.0 is 3
    for scale in (1.5, 2.5, 3.5, 4 / 3, 2, 3.0):
        hr = imaging.modcrop(np.random.default_rng(1).uniform(size=(61, 47)), scale)
        lr = imaging.imresize(hr, scale=1 / scale)
        assert imaging.imresize(lr, scale=scale).shape == hr.shape  # sizes round-trip
        assert imaging.degrade(hr, scale).shape == hr.shape
    hr = imaging.modcrop(np.random.default_rng(2).uniform(size=(40, 31)), 3)
    np.testing.assert_array_equal(imaging.degrade(hr, 3), imaging.degrade(hr, 3.0))
    assert [imaging.shave(s) for s in (1.5, 2, 2.5, 3.0, 4)] == [2, 2, 3, 3, 4]
    assert imaging.output_size(77, 101, 2.5) == (193, 253)  # ceil, as MATLAB
    assert imaging.imresize(np.zeros((77, 101)), scale=2.5).shape == (193, 253)


@pytest.mark.parametrize("bad, message", [(1, "> 1"), (0.5, "> 1"), (float("nan"), "> 1"),
                                          ("2", "> 1"), (1.2345, "not a ratio")])
def test_scales_the_protocol_cannot_use_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        imaging.scale_ratio(bad)
    with pytest.raises(ValueError, match="modcrop"):
        imaging.degrade(np.zeros((101, 77)), 2.5)


def test_scale_names():
    assert imaging.scale_list(3.0) == (3,) and isinstance(imaging.scale_list(3.0)[0], int)
    assert imaging.scale_json([1.5, 2.0, 3]) == [1.5, 2, 3] and imaging.scale_json((4,)) == 4
    assert imaging.scale_name([1.5, 2, 2.5]) == "1.5,2,2.5" and imaging.scale_label(3.0) == "3"


def _reference_resize_1d(x: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Scalar transcription of MATLAB imresize.m (bicubic) along one axis, for cross-checking."""
    def cubic(t):
        a = abs(t)
        if a <= 1:
            return 1.5 * a**3 - 2.5 * a**2 + 1
        if a <= 2:
            return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
        return 0.0

    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros(out_len)
    n = len(x)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        ws, vs = [], []
        for j in range(left, left + math.ceil(width) + 2):
            w = scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j)
            k = j
            while k < 1 or k > n:  # symmetric: 0 -> 1, n+1 -> n
                k = 1 - k if k < 1 else 2 * n + 1 - k
            ws.append(w)
            vs.append(x[k - 1])
        out[i - 1] = np.dot(ws, vs) / sum(ws)
    return out


@pytest.mark.parametrize("n, scale", [(12, 1 / 3), (13, 0.5), (9, 3.0), (7, 2.0), (30, 0.25),
                                      (10, 0.4), (9, 2.5), (12, 1 / 1.5), (8, 1.5)])
def test_imresize_matches_matlab_formula(n, scale):
    x = np.random.default_rng(n).uniform(size=n)
    out_len = math.ceil(round(n * scale, 9))
    ref = _reference_resize_1d(x, out_len, scale)
    got = imaging.imresize(x[:, None], output_shape=(out_len, 1))[:, 0] if float(
        scale).is_integer() else imaging.imresize(np.repeat(x[:, None], 3, 1), scale=scale)[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_imresize_sizes_and_constants():
    assert imaging.imresize(np.zeros((7, 8)), scale=1 / 3).shape == (3, 3)
    assert imaging.imresize(np.zeros((255, 255)), scale=1 / 3).shape == (85, 85)
    const = np.full((12, 15, 2), 0.25)
    np.testing.assert_allclose(imaging.imresize(const, scale=1 / 3), 0.25, atol=1e-12)
    np.testing.assert_allclose(imaging.imresize(const, scale=3), 0.25, atol=1e-12)
    u8 = imaging.imresize(np.full((6, 6), 200, np.uint8), scale=2)
    assert u8.dtype == np.uint8 and (u8 == 200).all()


def test_imresize_is_not_opencv_bicubic():
    """The reason this module exists: OpenCV's bicubic (a = -0.75, no antialias) differs."""
    import cv2

    x = np.random.default_rng(1).uniform(size=(30, 30))
    ours = imaging.imresize(x, scale=1 / 3)
    cv = cv2.resize(x, (10, 10), interpolation=cv2.INTER_CUBIC)
    assert np.abs(ours - cv).max() > 0.05


def test_degrade_requires_modcrop():
    with pytest.raises(ValueError, match="modcrop"):
        imaging.degrade(np.zeros((10, 9)), 3)


def test_gaussian_blur_preserves_constants_and_smooths():
    const = np.full((9, 9), 0.5)
    np.testing.assert_allclose(imaging.gaussian_blur(const, 1.2), 0.5, atol=1e-12)
    noise = np.random.default_rng(0).uniform(size=(32, 32))
    assert imaging.gaussian_blur(noise, 1.0).std() < noise.std() / 2


PAPER_BICUBIC = {(set_name, scale): value for (set_name, scale, method), value in
                 evaluate.PAPER.items() if method == "bicubic"}  # the one table of the papers


@pytest.mark.parametrize("set_name, scale", sorted(PAPER_BICUBIC))
def test_bicubic_baseline_reproduces_paper(shared_data, set_name, scale):
    psnrs, ssims = [], []
    for path in imaging.list_images(shared_data / set_name):
        y = imaging.modcrop(imaging.to_y(imaging.load_image(path)), scale)
        bicubic = imaging.to_uint8(imaging.degrade(y.astype(np.float64) / 255.0, scale))
        psnrs.append(metrics.psnr(bicubic, y, crop_border=scale))
        ssims.append(metrics.ssim(bicubic, y, crop_border=scale))
    paper_psnr, paper_ssim = PAPER_BICUBIC[(set_name, scale)]
    assert abs(np.mean(psnrs) - paper_psnr) <= 0.01
    assert abs(np.mean(ssims) - paper_ssim) <= (0.0001 if set_name == "Set5" else 0.0015)


def test_centre_crops_side_by_side():
    hr = np.arange(5 * 7 * 1, dtype=np.uint8).reshape(5, 7, 1)
    sr = np.full((5, 7, 1), 0.5, np.float32)
    strip = imaging.centre_crops(sr, hr, size=4)
    assert strip.shape == (1, 4, 8, 1) and strip.dtype == np.uint8
    np.testing.assert_array_equal(strip[0, :, :4], 128)  # MATLAB's uint8(0.5 * 255) rounds up
    np.testing.assert_array_equal(strip[0, :, 4:], hr[0:4, 1:5])
    assert imaging.centre_crops(hr, hr).shape == (1, 5, 10, 1)  # square, at most the image
