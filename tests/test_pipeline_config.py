"""Pipeline configs (PaddleX YAML, overrides, model_dir), the CLI, devices, and URL/PDF inputs."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import pxtorch
from pxtorch.cli import main
from pxtorch.pipelines import PipelineConfigError, get_pipeline_config, parse_device

from .conftest import ASSETS


def test_get_pipeline_config_round_trip(tmp_path, demo_image):
    path = get_pipeline_config("OCR", tmp_path)
    assert path == tmp_path / "OCR.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    det = config["SubModules"]["TextDetection"]
    assert config["pipeline_name"] == "OCR" and det["model_name"] == "PP-OCRv5_mobile_det"
    assert config["SubModules"]["TextRecognition"]["batch_size"] == 6
    det.update(thresh=0.25, limit_side_len=736)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    ocr = pxtorch.pipeline(str(path), device="cpu")
    params = ocr(demo_image)[0]["text_det_params"]
    assert params["thresh"] == 0.25 and params["limit_side_len"] == 736
    # precedence: per call > constructor override > YAML
    ocr = pxtorch.pipeline(str(path), device="cpu", text_det_thresh=0.35)
    assert ocr(demo_image)[0]["text_det_params"]["thresh"] == 0.35
    assert ocr(demo_image, text_det_thresh=0.4)[0]["text_det_params"]["thresh"] == 0.4


def test_bad_configs_are_reported(tmp_path):
    with pytest.raises(PipelineConfigError, match="no such pipeline config"):
        pxtorch.pipeline(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline_name: OCR\nSubModules: [1, 2\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError, match="not valid YAML"):
        pxtorch.pipeline(str(bad))
    bad.write_text("pipeline_name: OCR\nSubModules: {}\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError, match="TextDetection"):
        pxtorch.pipeline(str(bad), device="cpu")
    bad.write_text("pipeline_name: OCR\ntext_type: stamp\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError, match="text_type"):
        pxtorch.pipeline(str(bad), device="cpu")
    with pytest.raises(ValueError, match="unclip_ratio"):
        pxtorch.pipeline("OCR", text_det_unclip_ratio=-1.0, device="cpu")


def test_model_dir_loads_a_pxtorch_checkpoint(tmp_path, pretrained, demo_image):
    rec = pretrained("pp_ocrv4_mobile_rec")
    original = rec.head.fc.bias.detach().clone()
    with torch.no_grad():  # a visibly different recogniser: every logit of class "blank" is huge
        rec.head.fc.bias[0] += 100.0
    try:
        pxtorch.save_pretrained(rec, tmp_path / "my_rec")
    finally:
        with torch.no_grad():  # exactly back: the session-cached model is shared (x + 100 - 100 != x in float32)
            rec.head.fc.bias.copy_(original)
    config = get_pipeline_config("OCR")
    config["SubModules"]["TextRecognition"]["model_dir"] = str(tmp_path / "my_rec")
    (tmp_path / "OCR.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    res = pxtorch.pipeline(str(tmp_path / "OCR.yaml"), device="cpu")(demo_image)[0]
    assert res["rec_texts"] and set(res["rec_texts"]) == {""}  # the fine-tuned weights were used
    via_kwarg = pxtorch.pipeline("OCR", device="cpu", text_recognition_model_dir=str(tmp_path / "my_rec"))
    assert set(via_kwarg(demo_image)[0]["rec_texts"]) == {""}
    assert via_kwarg.text_rec.labels == rec.charset.labels


def test_devices():
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unsupported device"):
        parse_device("tpu")
    if not torch.cuda.is_available():
        for spec in ("gpu", "gpu:0", "cuda", "cuda:1"):
            with pytest.raises(ValueError, match="CUDA is not available"):
                parse_device(spec)
    else:
        assert parse_device("gpu:0") == torch.device("cuda", 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pipeline_matches_cpu(ocr_pipeline, demo_image):
    cpu = ocr_pipeline()(demo_image)[0]
    gpu = pxtorch.pipeline("OCR", device="gpu:0")(demo_image)[0]
    assert gpu["rec_texts"] == cpu["rec_texts"]
    assert all((a == b).all() for a, b in zip(gpu["dt_polys"], cpu["dt_polys"], strict=True))


def test_single_model_pipelines(demo_image, demo_lines):
    det = pxtorch.pipeline("text_detection", model_name="PP-OCRv5_mobile_det", device="cpu")
    (res,) = det(demo_image)
    assert list(res.json["res"]) == ["input_path", "page_index", "dt_polys", "dt_scores"]
    assert len(res["dt_polys"]) == len(demo_lines) and min(res["dt_scores"]) > 0.6
    rec = pxtorch.pipeline("PP-OCRv5_mobile_rec", device="cpu")
    from pxtorch.processing.crop import crop_quad

    crops = [crop_quad(demo_image, np.asarray(line["quad"])) for line in demo_lines[:3]]
    out = rec(crops)
    assert [r["rec_text"] for r in out] == [line["text"] for line in demo_lines[:3]]
    cls = pxtorch.pipeline("textline_orientation", device="cpu")
    ids = [r["class_ids"][0] for r in cls(crops + [np.rot90(c, 2) for c in crops])]
    assert ids == [0, 0, 0, 1, 1, 1]


def test_cli_runs_ocr_and_saves(tmp_path, capsys):
    code = main(
        [
            "--pipeline",
            "OCR",
            "--input",
            str(ASSETS / "demo_ocr.jpg"),
            "--device",
            "cpu",
            "--save_path",
            str(tmp_path),
            "--text_det_thresh",
            "0.3",
            "--use_textline_orientation",
            "False",
        ]
    )
    assert code == 0
    assert "BOARDING PASS" in capsys.readouterr().out
    saved = json.loads((tmp_path / "demo_ocr_res.json").read_text(encoding="utf-8"))
    assert "BOARDING PASS" in saved["rec_texts"] and (tmp_path / "demo_ocr_ocr_res_img.jpg").is_file()


def test_cli_config_and_errors(tmp_path, capsys):
    assert main(["--get_pipeline_config", "OCR", "--save_path", str(tmp_path)]) == 0
    assert (tmp_path / "OCR.yaml").is_file()
    code = main(
        [
            "--pipeline",
            str(tmp_path / "OCR.yaml"),
            "--input",
            str(tmp_path / "missing.jpg"),
            str(ASSETS / "demo_ocr.jpg"),
            "--device",
            "cpu",
            "--save_path",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "missing.jpg" in err[0]
    assert (tmp_path / "out" / "demo_ocr_res.json").is_file()
    assert main(["--pipeline", "OCRR", "--input", "x.jpg"]) == 2
    assert "Did you mean: OCR" in capsys.readouterr().err
    assert main(["--pipeline", "OCR", "--input", "x.jpg", "--device", "tpu"]) == 2
    with pytest.raises(SystemExit):
        main(["--pipeline", "OCR", "--input", "x.jpg", "--text_det_thresh", "high"])


@pytest.fixture()
def http_dir(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_and_pdf_inputs(http_dir, ocr_pipeline, demo_image):
    root, base = http_dir
    ocr = ocr_pipeline()
    cv2.imwrite(str(root / "card.png"), demo_image)
    expected = ocr(demo_image)[0]["rec_texts"]
    (res,) = ocr(f"{base}/card.png")
    assert res["input_path"] == f"{base}/card.png" and res["rec_texts"] == expected
    page = Image.fromarray(demo_image[:, :, ::-1])
    blank = Image.new("RGB", page.size, "white")
    page.save(root / "doc.pdf", save_all=True, append_images=[blank], resolution=72.0)
    results = ocr(str(root / "doc.pdf"))
    assert [r["page_index"] for r in results] == [0, 1]
    assert results[0]["rec_texts"][:2] == expected[:2] and results[1]["rec_texts"] == []
    assert results[0].save_to_json(root / "out").name == "doc_0_res.json"
    with pytest.raises(pxtorch.pipelines.InputError, match=r"404|Not Found"):
        ocr(f"{base}/nope.png")
