"""Training form vs deploy form: ``reparameterize()`` must not change the function."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import pxtorch
from pxtorch.convert import apply_output_activation
from pxtorch.layers import LearnableRepLayer, reparameterize_model

from .model_io import example_shape, output_tensors


def _randomize_norms(model: nn.Module, seed: int = 0) -> None:
    """Give BatchNorms and affine blocks non-trivial statistics so fusing them is actually exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)
                # small gammas keep the sum of rep branches near unit scale, so outputs do not saturate
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.2 + 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif type(m).__name__ == "LearnableAffineBlock":
                m.scale.copy_(torch.rand(1, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(1, generator=g) * 0.1)


@pytest.mark.parametrize(
    ("kernel", "stride", "groups", "cin", "cout"),
    [
        (3, 1, 8, 8, 8),
        (5, 2, 8, 8, 8),
        (3, (2, 1), 16, 16, 16),
        (1, 1, 1, 8, 16),
        (1, 1, 1, 8, 8),
        (5, (1, 2), 4, 4, 4),
    ],
)
def test_rep_layer_fuses_exactly(kernel, stride, groups, cin, cout):
    torch.manual_seed(0)
    layer = LearnableRepLayer(cin, cout, kernel, stride, groups=groups, num_conv_branches=4)
    _randomize_norms(layer)
    layer.eval()
    x = torch.randn(2, cin, 17, 23)
    with torch.no_grad():
        ref = layer(x)
        layer.reparameterize()
        out = layer(x)
    assert layer.deploy and not hasattr(layer, "conv_kxk")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", pxtorch.list_models())
def test_training_and_deploy_forms_agree(name):
    torch.manual_seed(0)
    model = pxtorch.create_model(name)
    _randomize_norms(model)
    model.eval()
    deploy = reparameterize_model(copy.deepcopy(model))
    assert deploy.model_args["deploy"] is True
    x = torch.randn(example_shape(name))
    # DETR decoders pick their top-k queries by score: a 1e-7 fusion change can swap near-tied queries,
    # so compare the (re-parameterised) encoder maps there; the decoder has no fusible branches
    run = (lambda m: m.forward_features(x)) if hasattr(model, "num_queries") else (lambda m: m(x))
    with torch.no_grad():
        refs = output_tensors(apply_output_activation(model, run(model)))
        outs = output_tensors(apply_output_activation(deploy, run(deploy)))
    assert len(outs) == len(refs)
    assert all(o.shape == r.shape for o, r in zip(outs, refs, strict=True))
    assert max(((o - r).abs().max().item() if o.numel() else 0.0) for o, r in zip(outs, refs, strict=True)) <= 1e-5
    # the deploy form is what create_model(deploy=True) builds: same keys and shapes
    fresh = pxtorch.create_model(name, deploy=True).state_dict()
    state = deploy.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in fresh.items()}


def test_reparameterized_model_round_trips(tmp_path):
    model = pxtorch.create_model("pp_ocrv4_mobile_det")
    _randomize_norms(model)
    deploy = reparameterize_model(model.eval())
    pxtorch.save_pretrained(deploy, tmp_path)
    loaded = pxtorch.from_pretrained(tmp_path)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x), deploy(x))
