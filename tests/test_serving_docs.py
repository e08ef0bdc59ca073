"""Serving the document pipelines: /document-preprocessing and /seal-recognition bodies as PaddleX 3.x."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import pxtorch
from pxtorch.serving import ServerSettings, create_app

from .conftest import ASSETS
from .seal_render import Seal, render_seal

SEAL = Seal("天津君和缘商贸有限公司", "发票专用章", 420)


def _b64(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _decode(b64: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def demo() -> np.ndarray:
    return cv2.imread(str(ASSETS / "demo_ocr.jpg"))


def test_document_preprocessing_endpoint(demo):
    pipe = pxtorch.pipeline("doc_preprocessor", use_doc_unwarping=False, device="cpu")
    turned = np.ascontiguousarray(np.rot90(demo, -1))  # turned clockwise: rotated back by 90
    with TestClient(create_app(pipe, ServerSettings())) as client:
        body = client.post("/document-preprocessing", json={"file": _b64(turned), "fileType": 1}).json()
        assert body["errorCode"] == 0, body
        (item,) = body["result"]["docPreprocessingResults"]
        assert item["prunedResult"]["angle"] == 90
        assert item["prunedResult"]["model_settings"] == {
            "use_doc_orientation_classify": True,
            "use_doc_unwarping": False,
        }
        assert "input_path" not in item["prunedResult"] and "output_img" not in item["prunedResult"]
        page = _decode(item["outputImage"])  # the corrected page (JPEG): upright again
        assert page.shape == demo.shape and np.abs(page.astype(int) - demo).mean() < 3
        assert {"docPreprocessingImage", "inputImage"} <= set(item)
        off = client.post(
            "/document-preprocessing",
            json={"file": _b64(turned), "fileType": 1, "useDocOrientationClassify": False, "visualize": False},
        ).json()["result"]["docPreprocessingResults"][0]
        assert off["prunedResult"]["angle"] == -1 and "inputImage" not in off
        asked = client.post("/document-preprocessing", json={"file": _b64(turned), "useDocUnwarping": True})
        assert asked.status_code == 422 and "unwarping" in asked.json()["errorMsg"].lower()


def test_seal_recognition_endpoint():
    pipe = pxtorch.pipeline("seal_recognition", device="cpu")
    direct = pipe(render_seal(SEAL))[0]
    with TestClient(create_app(pipe, ServerSettings())) as client:
        payload = {"file": _b64(render_seal(SEAL)), "fileType": 1}
        body = client.post("/seal-recognition", json=payload).json()
        assert body["errorCode"] == 0, body
        (item,) = body["result"]["sealRecResults"]
        (seal,) = item["prunedResult"]["seal_res_list"]
        assert seal["rec_texts"] == [SEAL.arc_text, SEAL.middle_text] == direct["seal_res_list"][0]["rec_texts"]
        assert seal["text_type"] == "seal" and seal["rec_boxes"] == []
        assert set(item["outputImages"]) == set(direct.img) and item["inputImage"]
        strict = client.post("/seal-recognition", json={**payload, "sealRecScoreThresh": 1.01, "visualize": False})
        kept = strict.json()["result"]["sealRecResults"][0]
        assert kept["prunedResult"]["seal_res_list"][0]["rec_texts"] == [] and "outputImages" not in kept
        bad = client.post("/seal-recognition", json={**payload, "sealDetLimitType": "longest"})
        assert bad.status_code == 422
