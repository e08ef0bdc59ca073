"""UVDoc (PaddleX ``UVDoc``) against transformers' ``UVDocModel`` and ``UVDocImageProcessor``.

No official weights are available offline, so the reference is transformers' own implementation with
seeded random weights (BN statistics/affines and the PReLU slope moved off their init values so a wrong
mapping shows):

* transformers -> pxtorch: a checkpoint written by transformers' ``save_pretrained`` loads through the
  official layout and gives the same backward map (max |Δ| ≤ 1e-5, float32) on seeded random pages at the
  network size and at another size (pxtorch resizes inside the model, transformers' image processor does it
  outside), and on a real photo through transformers' image processor; the unwarped image equals
  transformers' ``post_process_document_rectification``;
* pxtorch -> transformers: ``save_pretrained(layout="paddle-hf")`` loads strictly in ``UVDocModel`` with the
  same output, and back in pxtorch unchanged;
* a one-scalar change moves the output far past the threshold (the comparison can fail).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import UVDocConfig, UVDocImageProcessor, UVDocModel

import pxtorch
from pxtorch.convert.hf_layout import get_layout
from pxtorch.processing.image import read_image
from pxtorch.processing.unwarp import doctr_image, page_tensor, unwarp_tensor

from .conftest import shared_image_dir

TOL = 1e-5
# transformers' default UVDocConfig() crashes in forward (the backbone returns stage6 only); this works:
HF_BACKBONE = {"model_type": "uvdoc_backbone", "out_features": [f"stage{i}" for i in range(1, 7)]}


def _randomise_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move every BN statistic/affine and PReLU slope off its init value (seeded)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 0.5 * torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(0.75 + 0.5 * torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, torch.nn.PReLU):
                m.weight.copy_(0.05 + 0.1 * torch.rand(m.weight.shape, generator=g))
    return model.eval()


def _rand(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def hf_model() -> UVDocModel:
    torch.manual_seed(0)
    return _randomise_(UVDocModel(UVDocConfig(backbone_config=HF_BACKBONE)), 1)


@pytest.fixture(scope="module")
def ours(hf_model, tmp_path_factory) -> torch.nn.Module:
    """transformers' own save_pretrained output, loaded by pxtorch through the official layout."""
    path = tmp_path_factory.mktemp("uvdoc_hf")
    hf_model.save_pretrained(path)
    model = pxtorch.from_pretrained(path)
    assert model.architecture == "uvdoc" and model.model_args == {}
    assert model.weights_source["format"] == "paddle-hf"
    return model


def _hf(model: UVDocModel, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).last_hidden_state


def _px(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def test_transformers_default_config_crashes():
    """The issue's note, pinned: the default config's backbone returns one map where the head needs six."""
    torch.manual_seed(0)
    model = UVDocModel(UVDocConfig()).eval()
    assert model.config.backbone_config.out_features == ["stage6"]
    with pytest.raises(RuntimeError, match="768"), torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))


def test_registry_entry():
    cfg = pxtorch.get_pretrained_cfg("UVDoc")
    assert cfg.architecture == "uvdoc" and cfg.paddlex_name == "UVDoc" and cfg.task == "image_unwarping"
    assert cfg.sources == () and cfg.hf_hub_id == "PaddlePaddle/UVDoc_safetensors"
    assert cfg.hf_hub_layout == "paddle-hf"
    p = cfg.preprocess
    assert (p.channel_order, p.mean, p.std, p.resize, p.scale) == ("BGR", (0, 0, 0), (1, 1, 1), "none", 1 / 255)
    model = pxtorch.create_model("UVDoc")
    assert model.upsample_size == (712, 488)


def test_transformers_to_pxtorch_random_pages(hf_model, ours):
    diffs = {}
    x = _rand((1, 3, 712, 488), 10)  # the network size: both models see the same tensor
    ref = _hf(hf_model, x)
    assert ref.shape == (1, 2, 45, 31)
    diffs["rand_712x488"] = (_px(ours, x) - ref).abs().max().item()
    # another size: pxtorch resizes inside the model, transformers' image processor does it outside
    x = _rand((2, 3, 300, 420), 11)
    ref = _hf(hf_model, F.interpolate(x, size=(712, 488), mode="bilinear", align_corners=True))
    diffs["rand_b2_300x420"] = (_px(ours, x) - ref).abs().max().item()
    assert max(diffs.values()) <= TOL, diffs
    assert ref.abs().max() > 0.1  # a map that is not ~0 (the comparison means something)

    # a one-scalar change must show
    broken = copy.deepcopy(ours)
    with torch.no_grad():
        broken.head.out_point_positions2D.conv_down.activation.weight.add_(0.5)
    assert (_px(broken, x) - ref).abs().max().item() > 10 * TOL


def test_transformers_to_pxtorch_real_photo(hf_model, ours):
    """A real photo through transformers' image processor and post-processing vs pxtorch's path."""
    path = sorted(shared_image_dir("scenes").glob("*.jpg"))[0]
    bgr = read_image(path)
    processor = UVDocImageProcessor()
    inputs = processor(images=Image.fromarray(bgr[:, :, ::-1].copy()), return_tensors="pt")
    ref = _hf(hf_model, inputs["pixel_values"])
    page = page_tensor(bgr)
    grid = _px(ours, page)
    assert (grid - ref).abs().max().item() <= TOL
    # the unwarped page: pxtorch's post-processing on transformers' map is transformers' result exactly
    ref_img = processor.post_process_document_rectification(ref, inputs["original_images"])[0]["images"].numpy()
    with torch.no_grad():
        same = doctr_image(unwarp_tensor(page, ref)[0])
        got = doctr_image(unwarp_tensor(page, grid)[0])
    assert same.shape == ref_img.shape == bgr.shape and same.dtype == np.uint8
    assert np.array_equal(same, ref_img)
    # with pxtorch's own map (≤ 1e-5 away) a few values land across a uint8 truncation step
    delta = np.abs(got.astype(np.int16) - ref_img.astype(np.int16))
    assert delta.max() <= 1 and (delta > 0).mean() < 1e-2


def test_pxtorch_to_transformers(tmp_path):
    torch.manual_seed(3)
    model = _randomise_(pxtorch.create_model("uvdoc"), 4)
    pxtorch.save_pretrained(model, tmp_path, layout="paddle-hf")
    hf, info = UVDocModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    x = _rand((1, 3, 712, 488), 12)
    want = _px(model, x)
    assert (_hf(hf.eval(), x) - want).abs().max().item() <= TOL
    back = pxtorch.from_pretrained(tmp_path)
    assert back.architecture == "uvdoc"
    assert torch.equal(_px(back, x), want)


def test_layout_reads_paddle_names(hf_model):
    """Paddle's own parameter names (BN ``_mean``/``_variance``, PReLU ``_weight``) and a ``model.`` prefix."""
    state = hf_model.state_dict()
    renamed = {}
    for k, v in state.items():
        k2 = k.replace("running_mean", "_mean").replace("running_var", "_variance")
        k2 = k2.replace("activation.weight", "activation._weight")
        renamed["model." + k2] = v
    assert renamed.keys().isdisjoint(state.keys())
    arch, kwargs, mapped = get_layout("uvdoc").to_pxtorch(renamed, hf_model.config.to_dict())
    assert (arch, kwargs) == ("uvdoc", {})
    assert mapped.keys() == state.keys() and all(mapped[k] is state[k] for k in state)
