"""SLANeXt_wired / SLANeXt_wireless against transformers' ``SLANeXtForTableRecognition`` (model_type ``slanext``).

No official weights are available offline (Hub-only), so the reference is transformers' own implementation:
a seeded random transformers model (every tensor re-drawn, LayerNorm affines, absolute and relative position
embeddings included) -> :mod:`pxtorch.convert.hf_layout.slanext` -> pxtorch, compared on the structure
probabilities (random input and a real table image), then pxtorch -> ``save_pretrained(layout="paddle-hf")``
-> transformers ``from_pretrained`` (strict) and back. The numerical tests use a small configuration (128x128
input, 8x8 token grid, 3x3 windows so the window padding runs, 2 global blocks, 20 decoding steps); the
full-size architecture is checked shape for shape on the meta device.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers
from transformers.models.slanext.image_processing_slanext import SLANeXtImageProcessor

import pxtorch
from pxtorch.convert.hf_layout import get_layout
from pxtorch.models.slanext import SLANeXt  # importing it registers slanext_wired / slanext_wireless
from tests.conftest import shared_image_dir

TOL = 1e-5  # probabilities
SIZE = 128
NAMES = ("slanext_wired", "slanext_wireless")


def _small_config(max_text_length: int = 20) -> transformers.SLANeXtConfig:
    vision = dict(
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        image_size=SIZE,
        mlp_dim=96,
        window_size=3,
        global_attn_indexes=[1, 3],
        output_channels=32,
    )
    return transformers.SLANeXtConfig(
        vision_config=vision,
        post_conv_in_channels=32,
        post_conv_out_channels=48,
        hidden_size=40,
        max_text_length=max_text_length,
    )


@torch.no_grad()
def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Fan-in scaled Gaussian weights; LayerNorm affines around 1/0; position embeddings O(1)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        elif p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
        elif "norm" in name and name.endswith("weight"):
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    if hasattr(model, "head"):  # sharper token distributions (max prob ~0.2-0.5 instead of ~1/50)
        model.head.structure_generator.fc2.weight.mul_(4.0)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, SLANeXt]:
    torch.manual_seed(0)
    hf = transformers.SLANeXtForTableRecognition(_small_config()).eval()
    _randomize(hf, 7)
    arch, kwargs, state = get_layout("slanext").to_pxtorch(hf.state_dict(), hf.config.to_dict())
    assert arch == "slanext_wired"
    ours = pxtorch.create_model(arch, **kwargs).eval()
    ours.load_state_dict(state, strict=True)
    return hf, ours


def _check(hf: torch.nn.Module, ours: SLANeXt, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state
        probs, loc = ours(x)
    assert probs.shape == ref.shape, (probs.shape, ref.shape)
    assert loc.shape == (*probs.shape[:2], 0)
    assert torch.equal(probs.argmax(-1), ref.argmax(-1))
    delta = float((probs - ref).abs().max())
    assert delta <= TOL, delta
    return delta


def test_random_input_matches_transformers(pair):
    hf, ours = pair
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    _check(hf, ours, x)


def test_real_table_matches_transformers(pair):
    import cv2

    folder = shared_image_dir("tables")
    image = cv2.imread(str(folder / "table.jpg"))
    assert image is not None
    processor = SLANeXtImageProcessor(size={"height": SIZE, "width": SIZE}, pad_size={"height": SIZE, "width": SIZE})
    x = processor(images=image[:, :, ::-1].copy(), return_tensors="pt")["pixel_values"]
    assert x.shape == (1, 3, SIZE, SIZE)
    hf, ours = pair
    _check(hf, ours, x)


def test_early_stop_at_eos_matches_transformers():
    """Decoding stops after the step at which every item has emitted ``eos`` once (items finish at different steps).

    The ``eos`` row of the classifier is set to a copy of the most frequent token's row (plus 0.1), so ``eos``
    replaces that token wherever it would win.
    """
    hf = transformers.SLANeXtForTableRecognition(_small_config(max_text_length=30)).eval()
    _randomize(hf, 11)
    fc2 = hf.head.structure_generator.fc2
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        common = int(hf(pixel_values=x).last_hidden_state.argmax(-1).flatten().mode().values)
        fc2.weight[-1] = fc2.weight[common]
        fc2.bias[-1] = fc2.bias[common] + 0.1
        tokens = hf(pixel_values=x).last_hidden_state.argmax(-1)
    first_eos = [int((row == 49).nonzero()[0]) for row in tokens]
    assert first_eos[0] != first_eos[1] and tokens.shape[1] == max(first_eos) + 1 < 31, tokens.tolist()
    arch, kwargs, state = get_layout("slanext").to_pxtorch(hf.state_dict(), hf.config.to_dict())
    ours = pxtorch.create_model(arch, **kwargs).eval()
    ours.load_state_dict(state, strict=True)
    _check(hf, ours, x)


def test_save_paddle_hf_loads_in_transformers_and_back(pair, tmp_path):
    hf, ours = pair
    ours = pxtorch.create_model("slanext_wireless", **ours.model_args).eval()
    ours.load_state_dict(pair[1].state_dict(), strict=True)
    out = pxtorch.save_pretrained(ours, tmp_path / "ck", layout="paddle-hf")
    loaded, info = transformers.SLANeXtForTableRecognition.from_pretrained(out, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    _check(loaded.eval(), ours, x)
    back = pxtorch.from_pretrained(out)
    assert back.architecture == "slanext_wireless"
    _check(hf, back, x)


def test_full_size_architecture_matches_transformers():
    """The registry defaults = transformers' default config: every tensor shape (90.9 M params) fits."""
    with torch.device("meta"):
        hf = transformers.SLANeXtForTableRecognition(transformers.SLANeXtConfig())
        ours = pxtorch.create_model("SLANeXt_wired")
    arch, kwargs, state = get_layout("slanext").to_pxtorch(hf.state_dict(), hf.config.to_dict())
    assert (arch, kwargs) == ("slanext_wired", {})
    assert set(state) == set(ours.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters()) == 90_924_850


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry(name):
    cfg = pxtorch.get_pretrained_cfg(name)
    paddlex = {"slanext_wired": "SLANeXt_wired", "slanext_wireless": "SLANeXt_wireless"}[name]
    assert cfg.paddlex_name == paddlex and cfg.task == "table_structure_recognition"
    assert cfg.sources == () and cfg.hf_hub_id == f"PaddlePaddle/{paddlex}_safetensors"
    assert cfg.hf_hub_layout == "paddle-hf"
    assert cfg.preprocess.input_size == (3, 512, 512) and cfg.preprocess.resize == "long_side_pad"
    assert list(cfg.labels) == SLANeXtImageProcessor().character
    assert cfg.labels == pxtorch.get_pretrained_cfg("slanet_plus").labels
    processor = SLANeXtImageProcessor()
    np.testing.assert_allclose(cfg.preprocess.mean, processor.image_mean)
    np.testing.assert_allclose(cfg.preprocess.std, processor.image_std)


@pytest.mark.parametrize("name", ["SLANeXt_wired", "SLANeXt_wireless"])
def test_offline_pretrained_is_a_clear_error(name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PXTORCH_HOME", str(tmp_path))
    with pytest.raises(pxtorch.WeightsNotFoundError, match=f"PaddlePaddle/{name}_safetensors"):
        pxtorch.create_model(name, pretrained=True)
