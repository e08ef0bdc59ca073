"""Seal recognition: rendered seals are read back exactly; the OCR pipeline's seal mode; PaddleX's result shape.

The seals are rendered (``tests/seal_render.py``: red ink, 360-560 px across, text on the upper arc around a
star, an optional straight line below it) with texts in the recognisers' charset; every arc text must come
back as one line and the middle text as another, character for character.
"""

from __future__ import annotations

import copy
import json
from importlib import resources

import numpy as np
import pytest
import yaml

import pxtorch
from pxtorch.pipelines.ocr import OCRPipeline
from pxtorch.pipelines.seal_recognition import SealRecognitionPipeline, SealRecognitionResult
from pxtorch.pipelines.text_detection import SealTextDetectionPipeline

from .seal_render import Seal, render_seal

SEALS = [
    Seal("天津君和缘商贸有限公司", "发票专用章", 420),
    Seal("北京市海淀区人民政府", "合同专用章", 360, arc_degrees=200),
    Seal("上海浦东新区某某科技发展有限公司", "财务专用章", 560, arc_degrees=280),
    Seal("PXTORCH SEAL TEST COMPANY", "", 540),
    Seal("广州市天河区市场监督管理局", "", 480, arc_degrees=260),
]


def _shipped_config() -> dict:
    text = resources.files("pxtorch").joinpath("conf/pipeline/seal_recognition.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def seal_pipeline() -> SealRecognitionPipeline:
    return SealRecognitionPipeline(_shipped_config(), device="cpu")


@pytest.mark.parametrize("seal", SEALS, ids=lambda s: s.arc_text[:6])
def test_rendered_seals_read_back_exactly(seal_pipeline, seal):
    (res,) = seal_pipeline(render_seal(seal))
    (seal_res,) = res["seal_res_list"]
    expected = [seal.arc_text] + ([seal.middle_text] if seal.middle_text else [])
    assert seal_res["rec_texts"] == expected
    assert all(s > 0.8 for s in seal_res["rec_scores"])


def test_result_shape_and_outputs(seal_pipeline, tmp_path):
    (res,) = seal_pipeline(render_seal(SEALS[0]))
    assert isinstance(res, SealRecognitionResult)
    assert res["model_settings"] == {"use_doc_preprocessor": False, "use_layout_detection": False}
    assert res["layout_det_res"] == {} and set(res["doc_preprocessor_res"]) == {"output_img"}
    (ocr,) = res["seal_res_list"]
    assert ocr["seal_region_id"] == 1 and ocr["text_type"] == "seal"
    assert isinstance(ocr["dt_polys"], list) and len(ocr["dt_polys"]) == 2
    for poly in ocr["dt_polys"]:
        assert poly.ndim == 2 and poly.shape[1] == 2 and poly.shape[0] > 4 and np.issubdtype(poly.dtype, np.integer)
    assert ocr["rec_boxes"].size == 0 and len(ocr["rec_polys"]) == 2
    assert ocr["text_det_params"] == {
        "limit_side_len": 736,
        "limit_type": "min",
        "thresh": 0.2,
        "max_side_limit": 4000,
        "box_thresh": 0.6,
        "unclip_ratio": 0.5,
    }
    body = json.loads(json.dumps(res.json))["res"]
    assert list(body) == ["input_path", "page_index", "model_settings", "seal_res_list"]
    assert body["seal_res_list"][0]["rec_texts"] == [SEALS[0].arc_text, SEALS[0].middle_text]
    assert body["seal_res_list"][0]["seal_region_id"] == 1 and body["seal_res_list"][0]["rec_boxes"] == []
    assert set(res.img) == {"seal_res_region1"}
    w = res["doc_preprocessor_res"]["output_img"].shape[1]
    assert res.img["seal_res_region1"].size[0] == 2 * w
    saved = res.save_to_img(tmp_path)
    assert len(saved) == 1 and saved[0].is_file()


def test_per_call_parameters(seal_pipeline):
    img = render_seal(SEALS[0])
    (res,) = seal_pipeline(img, seal_det_thresh=0.25, seal_det_unclip_ratio=0.6, seal_det_limit_side_len=640)
    params = res["seal_res_list"][0]["text_det_params"]
    assert (params["thresh"], params["unclip_ratio"], params["limit_side_len"]) == (0.25, 0.6, 640)
    (res,) = seal_pipeline(img, seal_rec_score_thresh=1.01)  # no score reaches it: texts dropped, polygons kept
    ocr = res["seal_res_list"][0]
    assert ocr["rec_texts"] == [] and len(ocr["dt_polys"]) == 2 and ocr["text_rec_score_thresh"] == 1.01
    with pytest.raises(ValueError, match="limit_type"):
        seal_pipeline(img, seal_det_limit_type="both")


def _page_with_seal() -> tuple[np.ndarray, list[int]]:
    page = np.full((1000, 900, 3), 255, dtype=np.uint8)
    seal = render_seal(SEALS[1])
    y, x = 520, 420
    page[y : y + seal.shape[0], x : x + seal.shape[1]] = seal
    return page, [x + 20, y + 20, x + seal.shape[1] - 20, y + seal.shape[0] - 20]


def test_given_layout_regions(seal_pipeline):
    """PaddleX's layout branch: only boxes labelled ``seal`` are cropped and read, numbered from 1."""
    page, box = _page_with_seal()
    layout = {
        "boxes": [
            {"cls_id": 2, "label": "text", "score": 0.9, "coordinate": [10.0, 10.0, 400.0, 200.0]},
            {"cls_id": 16, "label": "seal", "score": 0.95, "coordinate": [float(v) for v in box]},
        ]
    }
    (res,) = seal_pipeline(page, layout_det_res=layout)
    assert res["layout_det_res"] is layout
    (seal_res,) = res["seal_res_list"]
    assert seal_res["seal_region_id"] == 1
    assert seal_res["rec_texts"] == [SEALS[1].arc_text, SEALS[1].middle_text]
    assert seal_res["doc_preprocessor_res"]["output_img"].shape[:2] == (box[3] - box[1], box[2] - box[0])
    with pytest.raises(ValueError, match="use_layout_detection=False"):
        seal_pipeline(page, use_layout_detection=True, layout_det_res=layout)


def test_layout_detection_with_the_offline_layout_model():
    """With layout detection on, the seal OCR only runs on ``seal`` regions; CDLA has no such class."""
    cfg = _shipped_config()
    cfg["use_layout_detection"] = True
    cfg["SubModules"]["LayoutDetection"] = {
        "module_name": "layout_detection",
        "model_name": "picodet_lcnet_x1_0_fgd_layout_cdla",
        "model_dir": None,
    }
    pipe = SealRecognitionPipeline(cfg, device="cpu")
    page, _ = _page_with_seal()
    (res,) = pipe(page, layout_threshold=0.3)
    assert res["model_settings"]["use_layout_detection"] is True
    assert all(b["label"] != "seal" for b in res["layout_det_res"]["boxes"])
    assert res["seal_res_list"] == []
    assert "layout_det_res" in res.json["res"]
    (whole,) = pipe(page, use_layout_detection=False)  # per call: back to the whole image
    assert whole["model_settings"]["use_layout_detection"] is False
    assert SEALS[1].arc_text in whole["seal_res_list"][0]["rec_texts"]


def test_ocr_pipeline_seal_mode_from_a_config_dict():
    """``pxtorch.pipeline(config)`` with ``text_type: seal`` (the SealOCR sub-config) is PaddleX's seal OCR."""
    ocr_cfg = copy.deepcopy(_shipped_config()["SubPipelines"]["SealOCR"])
    for key in ("limit_side_len", "limit_type", "thresh", "box_thresh", "unclip_ratio", "max_side_limit"):
        del ocr_cfg["SubModules"]["TextDetection"][key]  # the seal model's own defaults must be the same
    ocr = pxtorch.pipeline(ocr_cfg, device="cpu")
    assert isinstance(ocr, OCRPipeline) and isinstance(ocr.text_det, SealTextDetectionPipeline)
    (res,) = ocr(render_seal(SEALS[2]))
    assert res["text_type"] == "seal" and res["rec_texts"] == [SEALS[2].arc_text, SEALS[2].middle_text]
    assert res["text_det_params"]["limit_type"] == "min" and res["text_det_params"]["unclip_ratio"] == 0.5
    assert res["rec_boxes"].size == 0
    (res,) = ocr(render_seal(SEALS[2]), text_det_thresh=0.3)
    assert res["text_det_params"]["thresh"] == 0.3


def test_seal_text_detection_module():
    det = SealTextDetectionPipeline(device="cpu")
    assert det.box_type == "poly" and det.defaults["limit_type"] == "min"
    (res,) = det(render_seal(SEALS[0]))
    assert len(res["dt_polys"]) == 2 and len(res["dt_scores"]) == 2
    assert res.img["res"].size == render_seal(SEALS[0]).shape[1::-1]
    with pytest.raises(ValueError, match="seal_text_detection model"):
        SealTextDetectionPipeline(model_name="PP-OCRv5_mobile_det", device="cpu")


def test_doc_preprocessor_stage():
    """With orientation correction on, a page turned by 180 degrees is turned back before the seal region
    (given in upright page coordinates) is cropped and read."""
    import pxtorch.pipelines.doc_preprocessor  # noqa: F401

    cfg = _shipped_config()
    cfg["use_doc_preprocessor"] = True
    cfg["SubPipelines"]["DocPreprocessor"]["use_doc_orientation_classify"] = True
    pipe = SealRecognitionPipeline(cfg, device="cpu")
    page, box = _page_with_seal()
    layout = {"boxes": [{"cls_id": 16, "label": "seal", "score": 0.95, "coordinate": [float(v) for v in box]}]}
    (res,) = pipe(np.ascontiguousarray(np.rot90(page, 2)), layout_det_res=layout)
    assert res["model_settings"]["use_doc_preprocessor"] is True
    assert res["doc_preprocessor_res"]["angle"] == 180
    assert res["seal_res_list"][0]["rec_texts"] == [SEALS[1].arc_text, SEALS[1].middle_text]


def test_yaml_is_paddlex_shaped():
    cfg = _shipped_config()
    assert cfg["pipeline_name"] == "seal_recognition"
    seal_ocr = cfg["SubPipelines"]["SealOCR"]
    assert seal_ocr["pipeline_name"] == "OCR" and seal_ocr["text_type"] == "seal"
    det = seal_ocr["SubModules"]["TextDetection"]
    assert det["module_name"] == "seal_text_detection"
    assert pxtorch.get_pretrained_cfg(det["model_name"]).task == "seal_text_detection"
    assert set(cfg["SubModules"]["LayoutDetection"]) >= {"threshold", "layout_nms", "layout_unclip_ratio"}


def test_through_pxtorch_pipeline():
    from pxtorch.pipelines.config import list_pipelines

    assert "seal_recognition" in list_pipelines()
    pipe = pxtorch.pipeline("seal_recognition", device="cpu")
    (res,) = pipe(render_seal(SEALS[0]))
    assert res["seal_res_list"][0]["rec_texts"] == [SEALS[0].arc_text, SEALS[0].middle_text]
