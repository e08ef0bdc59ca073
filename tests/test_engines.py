"""Pipelines on engine="onnxruntime" (exported, verified ONNX) give the eager pipeline's results."""

from __future__ import annotations

import numpy as np
import pytest

import pxtorch
from pxtorch.engines import OnnxRuntimeModel

from .conftest import ASSETS, SHARED_IMAGES


@pytest.fixture(scope="module")
def pipelines():
    eager = pxtorch.pipeline("OCR", device="cpu", use_textline_orientation=True)
    onnx = pxtorch.pipeline(
        "OCR", device="cpu", use_textline_orientation=True, engine="onnxruntime", engine_config={"num_threads": 2}
    )
    return eager, onnx


def test_ocr_on_onnxruntime_matches_eager(pipelines) -> None:
    eager, onnx = pipelines
    assert isinstance(onnx.text_det.model, OnnxRuntimeModel) and isinstance(onnx.text_rec.model, OnnxRuntimeModel)
    images = [str(ASSETS / "demo_ocr.jpg"), *sorted(str(p) for p in (SHARED_IMAGES / "scenes").glob("*"))[:6]]
    for a, b in zip(eager(images), onnx(images), strict=True):
        assert a["rec_texts"] == b["rec_texts"]
        assert len(a["dt_polys"]) == len(b["dt_polys"])
        for pa, pb in zip(a["dt_polys"], b["dt_polys"], strict=True):
            assert np.abs(np.asarray(pa, int) - np.asarray(pb, int)).max() <= 1
        np.testing.assert_allclose(a["rec_scores"], b["rec_scores"], atol=1e-3)
        assert a["textline_orientation_angles"] == b["textline_orientation_angles"]


def test_engine_errors() -> None:
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'; choose one of eager, onnxruntime"):
        pxtorch.pipeline("text_recognition", device="cpu", engine="tensorrt")
    with pytest.raises(ValueError, match="engine 'eager' takes no engine_config"):
        pxtorch.pipeline("text_recognition", device="cpu", engine_config={"num_threads": 2})
    with pytest.raises(ValueError, match="unknown engine_config keys"):
        pxtorch.pipeline("textline_orientation", device="cpu", engine="onnxruntime", engine_config={"dtype": "x"})


def test_cli_engine_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from pxtorch.cli import main

    demo = str(ASSETS / "demo_ocr.jpg")
    assert main(["--pipeline", "text_detection", "--input", demo, "--engine", "onnxruntime", "--no_save"]) == 0
    assert "dt_polys" in capsys.readouterr().out
    assert main(["--pipeline", "text_detection", "--input", demo, "--engine", "tensorrt", "--no_save"]) == 2
    assert "unknown engine 'tensorrt'" in capsys.readouterr().err
