"""Inference fast paths (folded affines, in-place activations, channels-last) compute the module function."""

from __future__ import annotations

import pytest
import torch

import pxtorch

from .model_io import example_shape, output_tensors
from .test_reparameterize import _randomize_norms


@pytest.mark.parametrize("name", pxtorch.list_models())
@pytest.mark.parametrize("deploy", [False, True])
def test_no_grad_path_equals_autograd_path(name, deploy):
    torch.manual_seed(0)
    model = pxtorch.create_model(name, deploy=deploy)
    _randomize_norms(model)
    model.eval()
    x = torch.randn(example_shape(name))
    # DETR models: top-k query selection can swap near-tied queries on 1e-7 changes; compare the encoder maps
    run = model.forward_features if hasattr(model, "num_queries") else model
    with torch.enable_grad():
        ref = [t.detach() for t in output_tensors(run(x))]
    with torch.no_grad():
        fast = output_tensors(run(x))
    with torch.inference_mode():
        fast_im = output_tensors(run(x))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast_im, ref, atol=1e-5, rtol=1e-4)
    assert x.is_contiguous(), "the caller's input must not be modified"


def test_folded_weights_follow_parameter_updates():
    """The cached folds are refreshed when weights are loaded or edited in place."""
    torch.manual_seed(0)
    model = pxtorch.create_model("pp_ocrv4_mobile_det", deploy=True).eval()
    _randomize_norms(model)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = model(x)
        other = pxtorch.create_model("pp_ocrv4_mobile_det", deploy=True).eval()
        _randomize_norms(other, seed=1)
        model.load_state_dict(other.state_dict())
        after = model(x)
        expected = other(x)
        model.head.binarize.conv_bn1.running_var.mul_(2.0)
        edited = model(x)
    with torch.enable_grad():
        edited_ref = model(x).detach()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)
    torch.testing.assert_close(edited, edited_ref, atol=1e-5, rtol=1e-4)


def test_training_mode_uses_batch_statistics():
    model = pxtorch.create_model("ch_ppocr_mobile_v2_0_cls").train()
    x = torch.randn(4, 3, 48, 192)
    with torch.no_grad():
        model(x)
    assert model.backbone.conv1.bn.num_batches_tracked.item() == 1
