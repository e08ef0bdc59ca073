"""Pre/post-processing functions against PaddleX's rules, and bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import pxtorch
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.det_resize import det_resize, det_target_size
from pxtorch.processing.image import ImageReadError, normalize, read_image, to_chw
from pxtorch.processing.rec_resize import cls_resize_norm, pad_batch, rec_resize_norm

from .conftest import SHARED_IMAGES

REFERENCE = SHARED_IMAGES.parent / "reference" / "paddlex-3.7.2_PP-OCRv4_mobile"


@pytest.mark.parametrize(("run", "limit", "limit_type"), [("limit64min", 64, "min"), ("limit960max", 960, "max")])
def test_det_sizes_match_paddlex(run, limit, limit_type):
    """PaddleX 3.7.2's recorded detector input sizes for every scene photo."""
    files = sorted((REFERENCE / run).glob("*_extras.json"))
    if not files:
        pytest.skip(f"PaddleX reference outputs not available at {REFERENCE}")
    for f in files:
        extras = json.loads(f.read_text())
        h, w = extras["image_hw"]
        assert det_target_size(h, w, limit, limit_type, 4000) == tuple(extras["det_input_hw"]), f.name


def test_det_resize_rules():
    assert det_target_size(528, 896, 960, "max") == (512, 896)  # 16.5 rounds to 16 (Python round)
    assert det_target_size(2000, 1000, 960, "max") == (960, 480)
    assert det_target_size(100, 200, 736, "min") == (736, 1472)
    assert det_target_size(100, 9000, 64, "min", max_side_limit=4000) == (32, 4000)  # 44 rounds to 32
    assert det_target_size(10, 10, 960, "max") == (32, 32)
    with pytest.raises(ValueError, match="limit_type"):
        det_target_size(10, 10, 960, "maximum")
    tiny = np.full((10, 20, 3), 255, np.uint8)
    resized, shape = det_resize(tiny)
    assert resized.shape == (32, 32, 3) and shape.tolist() == [10, 20, 1.0, 1.0]
    assert (resized[10:] == 0).all() and (resized[:10, :20] == 255).all()


def test_normalize_keeps_channel_order():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255
    out = to_chw(normalize(img, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    assert np.allclose(out[0], (1 - 0.485) / 0.229) and np.allclose(out[2], -0.406 / 0.225)


def test_rec_resize_widths():
    assert rec_resize_norm(np.zeros((32, 64, 3), np.uint8)).shape == (3, 48, 320)  # short crop: padded to 320
    wide = rec_resize_norm(np.full((20, 400, 3), 255, np.uint8))  # ratio 20 -> 960 px, filled
    assert wide.shape == (3, 48, 960) and np.allclose(wide, 1.0)
    assert rec_resize_norm(np.zeros((10, 1000, 3), np.uint8)).shape == (3, 48, 3200)  # squeezed to the cap
    crop = rec_resize_norm(np.full((48, 100, 3), 255, np.uint8))
    assert np.allclose(crop[:, :, :100], 1.0) and np.allclose(crop[:, :, 100:], 0.0)
    batch = pad_batch([np.ones((3, 48, 320), np.float32), np.ones((3, 48, 400), np.float32)])
    assert batch.shape == (2, 3, 48, 400) and batch[0, :, :, 320:].sum() == 0
    assert cls_resize_norm(np.zeros((30, 600, 3), np.uint8)).shape == (3, 48, 192)
    with pytest.raises(ValueError, match="empty crop"):
        rec_resize_norm(np.zeros((0, 10, 3), np.uint8))


def test_ctc_greedy_decode():
    labels = ["blank", "a", "b", " "]
    probs = np.zeros((2, 6, 4), np.float32)
    seq = [1, 1, 0, 1, 2, 3]  # a a _ a b ' ' -> "aab "
    for t, c in enumerate(seq):
        probs[0, t, c] = 0.5 + 0.05 * t
    probs[1, :, 0] = 1.0  # all blank
    (text, score), (empty, zero) = ctc_greedy_decode(probs, labels)
    assert text == "aab " and score == pytest.approx(np.mean([0.5, 0.65, 0.7, 0.75]))
    assert empty == "" and zero == 0.0


def test_crop_quad_rotates_vertical_text():
    img = np.zeros((200, 200, 3), np.uint8)
    quad = np.array([[10, 10], [40, 10], [40, 150], [10, 150]])
    crop = crop_quad(img, quad)
    assert crop.shape[:2] == (30, 140)
    with pytest.raises(ValueError, match="degenerate"):
        crop_quad(img, np.array([[5, 5], [5, 5], [5, 5], [5, 5]]))


def test_read_image_errors_name_the_input(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match=r"corrupt\.png: not a decodable image"):
        read_image(tmp_path / "corrupt.png")
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((400, 400), np.uint8))
    with pytest.raises(ImageReadError, match="limit"):
        read_image(tmp_path / "big.png", max_pixels=100 * 100)


def test_read_image_normalises_channels(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 7), 9, np.uint8))
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 2] = 200
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    grey, colour = read_image(tmp_path / "grey.png"), read_image(tmp_path / "rgba.png")
    assert grey.shape == (5, 7, 3) and (grey == 9).all()
    assert colour.shape == (5, 7, 3) and (colour[..., 2] == 200).all()


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.zeros(3, 64, 64), ValueError, r"\[B, 3, H, W\]"),
        (torch.zeros(1, 1, 64, 64), ValueError, r"got shape \(1, 1, 64, 64\)"),
    ],
)
def test_models_reject_malformed_input(x, error, match):
    model = pxtorch.create_model("pp_ocrv4_mobile_det").eval()
    with pytest.raises(error, match=match):
        model(x)
