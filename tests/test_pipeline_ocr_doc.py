"""OCR with document orientation correction: a page turned by 90/180/270 degrees reads like the upright one."""

from __future__ import annotations

import numpy as np
import pytest

import pxtorch

from .conftest import SHARED_IMAGES

SCENES = ["00006737.jpg", "00009282.jpg", "00015504.jpg"]


@pytest.fixture(scope="module")
def ocr():
    return pxtorch.pipeline("OCR", device="cpu")


def _pages(demo_image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    import cv2

    pages = [("demo", demo_image)]
    for name in SCENES:  # the real scenes when ../shared is checked out beside the repo
        path = SHARED_IMAGES / "scenes" / name
        if path.is_file():
            pages.append((name, cv2.imread(str(path))))
    return pages


def test_rotated_pages_read_like_upright_ones(ocr, demo_image):
    for name, page in _pages(demo_image):
        upright = ocr(page)[0]
        assert upright["rec_texts"], name
        for k, angle in ((1, 90), (2, 180), (3, 270)):
            turned = np.ascontiguousarray(np.rot90(page, -k))  # turned clockwise by `angle`
            res = ocr(turned, use_doc_orientation_classify=True)[0]
            assert res["doc_preprocessor_res"]["angle"] == angle, (name, angle)
            assert res["rec_texts"] == upright["rec_texts"], (name, angle)
            assert np.array_equal(res["doc_preprocessor_res"]["output_img"], page)
            assert res["model_settings"]["use_doc_preprocessor"] is True
            json_doc = res.json["res"]["doc_preprocessor_res"]
            assert json_doc["angle"] == angle and "output_img" not in json_doc
            assert set(res.img) == {"ocr_res_img", "preprocessed_img"}


def test_without_the_flag_a_turned_page_is_not_corrected(ocr, demo_image):
    turned = np.ascontiguousarray(np.rot90(demo_image, 2))
    res = ocr(turned)[0]
    assert res["model_settings"]["use_doc_preprocessor"] is False
    assert "doc_preprocessor_res" not in res.json["res"]
    assert res["rec_texts"] != ocr(demo_image)[0]["rec_texts"]


def test_doc_preprocessor_on_in_the_config(demo_image):
    ocr = pxtorch.pipeline("OCR", use_doc_orientation_classify=True, device="cpu")
    assert ocr.use_doc_preprocessor
    res = ocr(np.ascontiguousarray(np.rot90(demo_image, 1)))[0]  # turned counter-clockwise: 270 back
    assert res["doc_preprocessor_res"]["angle"] == 270
    assert res["doc_preprocessor_res"]["model_settings"] == {
        "use_doc_orientation_classify": True,
        "use_doc_unwarping": False,
    }
    off = ocr(demo_image, use_doc_orientation_classify=False)[0]
    assert off["model_settings"]["use_doc_preprocessor"] is False
