"""The OCR pipeline: PaddleX's processing chain, results, parameters, batching and reference agreement."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import pxtorch
from pxtorch.pipelines import InputError, PipelineConfigError
from pxtorch.results import OCRResult

from .conftest import ASSETS, REPO, shared_image_dir

REFERENCE = REPO.parent / "shared" / "data" / "reference"
# PaddleX 3.7.2 ``res.save_to_json`` key order (see ../shared/data/reference/*/_res.json)
PADDLEX_KEYS = [
    "input_path",
    "page_index",
    "model_settings",
    "dt_polys",
    "text_det_params",
    "text_type",
    "textline_orientation_angles",
    "text_rec_score_thresh",
    "return_word_box",
    "rec_texts",
    "rec_scores",
    "rec_polys",
    "rec_boxes",
]


def _match_lines(res: OCRResult, lines: list[dict]) -> list[str]:
    """The recognised text of the detected box whose centre is nearest each ground-truth quad's centre."""
    centres = np.array([np.asarray(p, float).mean(0) for p in res["rec_polys"]])
    out = []
    for line in lines:
        c = np.asarray(line["quad"], float).mean(0)
        k = int(np.linalg.norm(centres - c, axis=1).argmin())
        inside = cv2.pointPolygonTest(np.asarray(line["quad"], np.float32), tuple(map(float, centres[k])), False)
        out.append(res["rec_texts"][k] if inside >= 0 else None)
    return out


def test_rendered_demo_is_read_back_exactly(ocr_pipeline, demo_lines):
    res = ocr_pipeline("PP-OCRv5")(ASSETS / "demo_ocr.jpg")[0]
    assert len(res["rec_texts"]) == len(demo_lines)
    assert _match_lines(res, demo_lines) == [line["text"] for line in demo_lines]
    assert any(ord(ch) > 0x3000 for line in demo_lines for ch in line["text"])  # CJK is part of the test


def test_rendered_demo_with_pp_ocrv4(ocr_pipeline, demo_lines):
    """PP-OCRv4's Chinese recogniser rarely emits spaces ("BOARDINGPASS"); every character is right."""
    res = ocr_pipeline("PP-OCRv4")(ASSETS / "demo_ocr.jpg")[0]
    got = _match_lines(res, demo_lines)
    assert [t.replace(" ", "") for t in got] == [line["text"].replace(" ", "") for line in demo_lines]


def test_result_keys_and_dtypes_match_paddlex(ocr_pipeline, tmp_path):
    res = ocr_pipeline()(ASSETS / "demo_ocr.jpg")[0]
    data = res.json["res"]
    assert list(data) == PADDLEX_KEYS
    n = len(res["dt_polys"])
    assert all(p.dtype == np.int16 and p.shape == (4, 2) for p in res["dt_polys"])
    assert all(p.dtype == np.int16 for p in res["rec_polys"])
    assert res["rec_boxes"].dtype == np.int16 and res["rec_boxes"].shape == (len(res["rec_texts"]), 4)
    assert res["textline_orientation_angles"] == [-1] * n
    assert data["text_det_params"] == {
        "limit_side_len": 64,
        "limit_type": "min",
        "thresh": 0.3,
        "max_side_limit": 4000,
        "box_thresh": 0.6,
        "unclip_ratio": 1.5,
    }
    for poly, box in zip(res["rec_polys"], res["rec_boxes"], strict=True):
        assert box.tolist() == [poly[:, 0].min(), poly[:, 1].min(), poly[:, 0].max(), poly[:, 1].max()]
    json_path = res.save_to_json(tmp_path)
    assert json_path.name == "demo_ocr_res.json"
    assert json.loads(json_path.read_text(encoding="utf-8")) == data
    (img_path,) = res.save_to_img(tmp_path)
    assert img_path.name == "demo_ocr_ocr_res_img.jpg"
    h, w = res["doc_preprocessor_res"]["output_img"].shape[:2]
    assert cv2.imread(str(img_path)).shape == (h, 2 * w, 3)
    assert "rec_texts" in str(res) and "BOARDING PASS" in str(res)


def test_per_call_parameters_and_score_threshold(ocr_pipeline, demo_image):
    ocr = ocr_pipeline()
    base = ocr(demo_image)[0]
    assert base["input_path"] is None and base["page_index"] is None
    strict = ocr(demo_image, text_rec_score_thresh=1.0)[0]
    assert len(strict["dt_polys"]) == len(base["dt_polys"]) and strict["rec_texts"] == []
    lowest = min(base["rec_scores"])
    kept = ocr(demo_image, text_rec_score_thresh=lowest)[0]  # ">=": the line at the threshold stays
    assert kept["rec_texts"] == base["rec_texts"]
    assert kept["text_rec_score_thresh"] == lowest
    none = ocr(demo_image, text_det_thresh=None, text_det_box_thresh=None)[0]
    assert none["text_det_params"] == base["text_det_params"]
    fewer = ocr(demo_image, text_det_box_thresh=0.999)[0]
    assert fewer["text_det_params"]["box_thresh"] == 0.999 and len(fewer["dt_polys"]) < len(base["dt_polys"])
    small = ocr(demo_image, text_det_limit_side_len=320, text_det_limit_type="max")[0]
    assert small["text_det_params"]["limit_type"] == "max" and small["rec_texts"] != []
    with pytest.raises(ValueError, match="limit_type"):
        ocr(demo_image, text_det_limit_type="longest")
    with pytest.raises(TypeError, match="text_det_treshold"):
        ocr(demo_image, text_det_treshold=0.2)


def test_unavailable_stages_are_errors_not_skips(ocr_pipeline, demo_image):
    ocr = ocr_pipeline()
    with pytest.raises(pxtorch.WeightsNotFoundError, match="UVDoc"):  # Hub-only weights, offline
        ocr(demo_image, use_doc_unwarping=True)
    with pytest.raises(pxtorch.WeightsNotFoundError, match="UVDoc"):
        pxtorch.pipeline("OCR", use_doc_unwarping=True, device="cpu")
    with pytest.raises(pxtorch.UnknownModelError, match="PP-OCRv5_mobile_rec"):
        pxtorch.pipeline("OCR", text_recognition_model_name="PP-OCRv5_mobile_recc", device="cpu")
    with pytest.raises(ValueError, match="text_detection model"):
        pxtorch.pipeline("OCR", text_recognition_model_name="PP-OCRv5_mobile_det", device="cpu")
    with pytest.raises(PipelineConfigError, match="Did you mean: OCR"):
        pxtorch.pipeline("OCRR")
    with pytest.raises(PipelineConfigError, match="text_det_thresh"):
        pxtorch.pipeline("OCR", text_det_tresh=0.2, device="cpu")


def test_textline_orientation_flips_upside_down_lines(ocr_pipeline, demo_image, demo_lines):
    ocr = ocr_pipeline()
    upright = ocr(demo_image, use_textline_orientation=True)[0]
    assert upright["model_settings"]["use_textline_orientation"] is True
    assert set(upright["textline_orientation_angles"]) <= {0, 1}
    flipped = ocr(np.ascontiguousarray(demo_image[::-1, ::-1]), use_textline_orientation=True)[0]
    assert sum(a == 1 for a in flipped["textline_orientation_angles"]) >= len(demo_lines) - 1
    assert sorted(flipped["rec_texts"]) == sorted(upright["rec_texts"])


def test_batched_equals_one_by_one(ocr_pipeline, demo_image):
    ocr = ocr_pipeline()
    h, w = demo_image.shape[:2]
    images = [
        demo_image,
        cv2.convertScaleAbs(demo_image, alpha=0.8, beta=30),  # same size: stacked into one detector pass
        cv2.resize(demo_image, (w * 3 // 4, h * 3 // 4)),  # another size: its own pass
        cv2.copyMakeBorder(demo_image, 0, 64, 0, 32, cv2.BORDER_REPLICATE),
    ]
    single = [ocr(img)[0] for img in images]
    batched = ocr(images, batch_size=4)
    for a, b in zip(single, batched, strict=True):
        assert len(a["dt_polys"]) == len(b["dt_polys"])
        assert all((p == q).all() for p, q in zip(a["dt_polys"], b["dt_polys"], strict=True))
        assert a["rec_texts"] == b["rec_texts"]
        # Recognition batches now mix crops of several images, and a crop's score depends on how far
        # its batch is zero-padded on the right (as in PaddleX, whose scores depend on the batch of 6):
        # texts are identical, scores move by at most a few thousandths.
        np.testing.assert_allclose(a["rec_scores"], b["rec_scores"], atol=0.02)


def test_bad_inputs_keep_the_good_results(ocr_pipeline, demo_image, tmp_path):
    ocr = ocr_pipeline()
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), demo_image)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    inputs = [str(tmp_path / "missing.jpg"), str(good), str(tmp_path / "empty.jpg"), str(tmp_path / "corrupt.png")]
    with pytest.raises(InputError) as info:
        ocr(inputs)
    assert [r["input_path"] for r in info.value.results] == [str(good)]
    assert len(info.value.failures) == 3
    for name in ("missing.jpg", "empty.jpg", "corrupt.png"):
        assert name in str(info.value)
    kept = ocr(inputs, on_error="keep")
    assert [("error" in r) for r in kept] == [True, False, True, True]
    assert kept[1]["rec_texts"] == ocr(demo_image)[0]["rec_texts"]


def test_unusual_images(ocr_pipeline, demo_image, tmp_path):
    ocr = ocr_pipeline()
    texts = ocr(demo_image)[0]["rec_texts"]
    tiny = ocr(np.zeros((1, 1, 3), np.uint8))[0]
    assert tiny["dt_polys"] == [] and tiny["rec_texts"] == [] and tiny["rec_boxes"].shape == (0, 4)
    gray = cv2.cvtColor(demo_image, cv2.COLOR_BGR2GRAY)
    assert ocr(gray)[0]["rec_texts"] == ocr(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))[0]["rec_texts"]
    rgba = cv2.cvtColor(demo_image, cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert ocr(str(tmp_path / "rgba.png"))[0]["rec_texts"] == texts
    deep = demo_image.astype(np.uint16) * 257  # 16-bit PNG: >> 8 gives the 8-bit image back
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert ocr(str(tmp_path / "deep.png"))[0]["rec_texts"] == texts
    strip = np.full((64, 20000, 3), 255, np.uint8)  # a 20000-px side is capped by max_side_limit
    cv2.putText(strip, "WIDE", (100, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    wide = ocr(strip)[0]
    assert wide["text_det_params"]["max_side_limit"] == 4000 and len(wide["dt_polys"]) <= 1


@pytest.fixture(scope="module")
def scene_dir():
    return shared_image_dir("scenes")


def _reference_agreement(ocr, files, loader, scene_dir, **kwargs) -> tuple[int, int, float]:
    lines = same = 0
    worst = 0.0
    for f in files:
        stem, ref = loader(f)
        res = ocr(scene_dir / f"{stem}.jpg", **kwargs)[0]
        assert len(res["rec_texts"]) == len(ref), stem
        for text, poly, (ref_text, ref_poly) in zip(res["rec_texts"], res["rec_polys"], ref, strict=True):
            lines += 1
            same += text == ref_text
            worst = max(worst, float(np.abs(poly.astype(float) - np.asarray(ref_poly, float)).max()))
    return lines, same, worst


@pytest.mark.parametrize("setting", ["limit960max", "limit64min"])
def test_matches_paddlex_v4_reference(setting, ocr_pipeline, scene_dir):
    folder = REFERENCE / "paddlex-3.7.2_PP-OCRv4_mobile" / setting
    files = sorted(folder.glob("*_res.json"))
    if not files:
        pytest.skip(f"reference outputs not available at {folder}")
    limit = dict(text_det_limit_side_len=960, text_det_limit_type="max") if setting == "limit960max" else {}

    def load(f: Path):
        d = json.loads(f.read_text(encoding="utf-8"))
        return f.name[: -len("_res.json")], list(zip(d["rec_texts"], d["rec_polys"], strict=True))

    lines, same, worst = _reference_agreement(ocr_pipeline("PP-OCRv4"), files, load, scene_dir, **limit)
    assert lines > 400 and same / lines >= 0.98 and worst <= 2, (lines, same, worst)


def test_matches_paddlex_v5_onnxruntime_reference(ocr_pipeline, scene_dir):
    folder = REFERENCE / "paddlex-3.7.2-onnxruntime_PP-OCRv5_mobile"
    files = sorted(folder.glob("*_lines.json"))
    if not files:
        pytest.skip(f"reference outputs not available at {folder}")

    def load(f: Path):
        d = json.loads(f.read_text(encoding="utf-8"))
        return Path(d["image"]).stem, [(line["text"], line["box"]) for line in d["lines"]]

    lines, same, worst = _reference_agreement(ocr_pipeline("PP-OCRv5"), files, load, scene_dir)
    assert lines > 400 and same / lines >= 0.98 and worst <= 2, (lines, same, worst)


def test_recognition_grouping_image_makes_results_batch_independent(ocr_pipeline, demo_image):
    ocr = ocr_pipeline()
    small = cv2.resize(demo_image, (420, 275))  # other size, other lines: different padding when mixed
    alone = [ocr(img)[0] for img in (demo_image, small)]
    mixed = ocr([demo_image, small], batch_size=2, recognition_grouping="image")
    for a, b in zip(alone, mixed, strict=True):
        assert a["rec_texts"] == b["rec_texts"]
        np.testing.assert_allclose(a["rec_scores"], b["rec_scores"], atol=1e-5)
    with pytest.raises(ValueError, match="recognition_grouping"):
        ocr(demo_image, recognition_grouping="line")
