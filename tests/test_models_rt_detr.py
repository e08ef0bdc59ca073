"""RT-DETR-L layout / table-cell detectors against transformers' ``RTDetrForObjectDetection`` (HGNetV2-L).

transformers' class is the reference (DETSEG_REFERENCES §3: proven equal to PaddleDetection's PP-DocLayout-L
and to PaddleX's dynamic RTDETR). Both sides get the same seeded random weights through the official Hub
layout (:mod:`pxtorch.convert.hf_layout.rt_detr`). transformers' own init (std 0.01 convs, unit BatchNorms)
gives near-constant features and tied encoder scores, so every weight and BatchNorm statistic is
re-randomised. The encoder states and encoder class/box logits are compared strictly; the decoder is
permutation-equivariant over its queries, and float32 rounding can swap near-equal encoder scores in the
top-300, so decoder outputs are matched query by query through the anchor each query was selected from
(the selected anchor *set* must be identical).
"""

from __future__ import annotations

import contextlib
import copy
import math
import re

import cv2
import numpy as np
import pytest
import torch
import transformers

import pxtorch
from pxtorch._registry import resolve_model_name
from pxtorch.convert.hf_layout import LayoutError, get_layout
from pxtorch.convert.hf_layout.rt_detr import rt_detr_to_pxtorch
from pxtorch.layers import reparameterize_model
from pxtorch.processing.detr_postprocess import detr_postprocess

from .conftest import shared_image_dir

NAMES = [
    "pp_doclayout_l",
    "pp_doclayout_plus_l",
    "pp_docblocklayout",
    "rt_detr_l_wired_table_cell_det",
    "rt_detr_l_wireless_table_cell_det",
]
SIZE = 256  # small input keeps the two ~33M-parameter forwards at a few seconds each


def _hf_config(num_labels: int):
    backbone = transformers.HGNetV2Config(
        stem_channels=[3, 32, 48],
        stage_in_channels=[48, 128, 512, 1024],
        stage_mid_channels=[48, 96, 192, 384],
        stage_out_channels=[128, 512, 1024, 2048],
        stage_num_blocks=[1, 1, 3, 1],
        stage_downsample=[False, True, True, True],
        stage_light_block=[False, False, True, True],
        stage_kernel_size=[3, 3, 5, 5],
        stage_numb_of_layers=[6, 6, 6, 6],
        use_learnable_affine_block=False,
        out_features=["stage2", "stage3", "stage4"],
    )
    return transformers.RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[512, 1024, 2048],
        hidden_expansion=1.0,
        decoder_layers=6,
        num_labels=num_labels,
    )


@torch.no_grad()
def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Fan-in scaled Gaussian weights, non-trivial BatchNorm statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "running_mean") and hasattr(m, "running_var"):  # nn.BatchNorm2d and the frozen ones
            n = m.running_mean.numel()
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
        elif "norm" in name and name.endswith("weight"):
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _no_init():
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers: just initialise
        return contextlib.nullcontext()
    return no_init_weights()


def _pair(num_labels: int = 23, seed: int = 0):
    """A randomised transformers model and the pxtorch model loaded from its state through the Hub layout."""
    torch.manual_seed(seed)
    with _no_init():  # every tensor is overwritten by _randomize
        hf = transformers.RTDetrForObjectDetection(_hf_config(num_labels)).eval()
    _randomize(hf, seed)
    arch, kwargs, state = rt_detr_to_pxtorch(hf.state_dict(), hf.config.to_dict())
    ours = pxtorch.create_model(arch, **kwargs).eval()
    ours.load_state_dict(state, strict=True)
    return hf, ours


@pytest.fixture(scope="module")
def pair():
    return _pair()


def _rand_input(seed: int, size: int = SIZE) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _image_input(size: int = SIZE) -> torch.Tensor:
    path = sorted(shared_image_dir("layout").glob("*.jpg"))[0]
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    return torch.from_numpy(img.transpose(2, 0, 1)).unsqueeze(0)


@torch.no_grad()
def _compare(hf, ours, x: torch.Tensor):
    """Assert the tolerances; returns the deltas and transformers' outputs."""
    ref = hf(pixel_values=x)
    feats = ours.forward_features(x)
    memory, shapes = ours.transformer.flatten_memory(feats)
    _, enc_logits, enc_boxes = ours.transformer.encoder_proposals(memory, shapes)
    logits, boxes = ours(x)
    deltas = {}
    for i, (a, b) in enumerate(zip(feats, ref.encoder_last_hidden_state, strict=True)):
        deltas[f"encoder_{i}"] = (a - b).abs().max().item()
    deltas["enc_outputs_class"] = (enc_logits - ref.enc_outputs_class).abs().max().item()
    valid = ref.enc_outputs_coord_logits.abs() < 1e30  # invalid anchors hold the float max in both
    deltas["enc_outputs_coord"] = (enc_boxes - ref.enc_outputs_coord_logits)[valid].abs().max().item()
    q = ours.num_queries
    ours_idx = enc_logits.max(-1).values.topk(q, dim=1).indices[0].tolist()
    ref_idx = ref.enc_outputs_class.max(-1).values.topk(q, dim=1).indices[0].tolist()
    assert set(ours_idx) == set(ref_idx), "different top-k query sets"
    where = {a: j for j, a in enumerate(ours_idx)}
    perm = torch.tensor([where[a] for a in ref_idx])
    deltas["logits"] = (logits[0, perm] - ref.logits[0]).abs().max().item()
    deltas["boxes"] = (boxes[0, perm] - ref.pred_boxes[0]).abs().max().item()
    assert max(deltas[k] for k in deltas if k.startswith("encoder")) <= 1e-4, deltas
    assert deltas["enc_outputs_class"] <= 1e-4 and deltas["enc_outputs_coord"] <= 1e-4, deltas
    assert deltas["logits"] <= 1e-4 and deltas["boxes"] <= 1e-5, deltas
    assert logits.shape == (1, q, ours.num_classes) and boxes.shape == (1, q, 4)
    return deltas, ref


def test_matches_transformers_random_input(pair):
    hf, ours = pair
    _compare(hf, ours, _rand_input(1))


def test_matches_transformers_real_image(pair):
    hf, ours = pair
    _, ref = _compare(hf, ours, _image_input())
    # and the decoding equals transformers' post-processing on transformers' own outputs
    size = (613, 457)
    ours_rows = detr_postprocess(ref.logits, ref.pred_boxes, [size], num_top_queries=300)[0]
    proc = transformers.RTDetrImageProcessor()
    theirs = proc.post_process_object_detection(ref, threshold=0.0, target_sizes=[size], use_focal_loss=True)[0]
    np.testing.assert_array_equal(ours_rows[:, 0], theirs["labels"].numpy())
    np.testing.assert_array_equal(ours_rows[:, 1], theirs["scores"].numpy())
    np.testing.assert_array_equal(ours_rows[:, 2:], theirs["boxes"].numpy())


def test_save_pretrained_paddle_hf_loads_in_transformers(pair, tmp_path):
    hf, ours = pair
    pxtorch.save_pretrained(ours, tmp_path, layout="paddle-hf")
    loaded, info = transformers.RTDetrForObjectDetection.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys
    theirs, back = hf.state_dict(), loaded.state_dict()
    assert theirs.keys() == back.keys()
    for k in theirs:
        torch.testing.assert_close(back[k], theirs[k], rtol=0, atol=0, msg=k)
    assert loaded.config.id2label[0] == "paragraph_title"
    again = pxtorch.from_pretrained(tmp_path)
    assert again.architecture == "pp_doclayout_l"
    for k, v in ours.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_legacy_transformers_names_load(pair):
    """transformers 4.x checkpoints (``out_proj``, bare ``fc1``/``fc2``, ``encoder.encoder``) map the same."""
    hf, _ = pair
    state = hf.state_dict()
    legacy = {}
    for k, v in state.items():
        k = k.replace("o_proj", "out_proj").replace(".mlp.fc", ".fc").replace("encoder.aifi.", "encoder.encoder.")
        legacy[k] = v
    assert legacy.keys() != state.keys()
    _, _, new = rt_detr_to_pxtorch(state, hf.config.to_dict())
    _, _, old = rt_detr_to_pxtorch(legacy, hf.config.to_dict())
    assert new.keys() == old.keys()
    assert all(torch.equal(new[k], old[k]) for k in new)


def test_architecture_picked_from_labels():
    layout = get_layout("rt_detr")
    assert set(layout.architectures) == set(NAMES)
    hf = transformers.RTDetrForObjectDetection(_hf_config(1))
    config = hf.config.to_dict()
    state = hf.state_dict()
    config["id2label"] = {"0": "Region"}
    assert rt_detr_to_pxtorch(state, config)[0] == "pp_docblocklayout"
    config["id2label"] = {"0": "cell"}
    assert rt_detr_to_pxtorch(state, config)[0] == "rt_detr_l_wired_table_cell_det"
    config["_name_or_path"] = "PaddlePaddle/RT-DETR-L_wireless_table_cell_det_safetensors"
    assert rt_detr_to_pxtorch(state, config)[0] == "rt_detr_l_wireless_table_cell_det"
    config["encoder_hidden_dim"] = 384
    with pytest.raises(LayoutError, match="encoder_hidden_dim"):
        rt_detr_to_pxtorch(state, config)


def test_deploy_form_is_the_same_function(pair, tmp_path):
    _, ours = pair
    fused = reparameterize_model(copy.deepcopy(ours))
    assert not any(re.search(r"bottlenecks\.\d+\.conv1\.", k) for k in fused.state_dict())
    x = _rand_input(2, 160)
    with torch.no_grad():
        for a, b in zip(ours.forward_features(x), fused.forward_features(x), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    # the deploy form is written in transformers' two-branch form with the same function
    pxtorch.save_pretrained(fused, tmp_path, layout="paddle-hf")
    loaded = transformers.RTDetrForObjectDetection.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        ref = loaded(pixel_values=x).encoder_last_hidden_state
        for a, b in zip(ours.forward_features(x), ref, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", [*NAMES, "pp_doclayout_v3"])
def test_registry_entries(name):
    cfg = pxtorch.get_pretrained_cfg(name)
    assert cfg.labels is not None and len(cfg.labels) == cfg.num_classes
    assert cfg.postprocess["decoder"] == ("pp_doclayout_v3" if name == "pp_doclayout_v3" else "detr")
    assert cfg.preprocess.resize == "stretch" and cfg.preprocess.channel_order == "RGB"
    assert cfg.sources == () and cfg.hf_hub_id.startswith("PaddlePaddle/") and cfg.hf_hub_layout == "paddle-hf"
    assert resolve_model_name(cfg.paddlex_name) == name


def test_offline_pretrained_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PXTORCH_HOME", str(tmp_path))
    with pytest.raises(pxtorch.WeightsNotFoundError, match="PaddlePaddle/PP-DocLayout-L_safetensors"):
        pxtorch.create_model("PP-DocLayout-L", pretrained=True)


@pytest.fixture(scope="module")
def v3_pair():
    torch.manual_seed(0)
    with _no_init():
        hf = transformers.PPDocLayoutV3ForObjectDetection(transformers.PPDocLayoutV3Config(num_labels=25)).eval()
    hf.tie_weights()  # decoder class/box heads are the encoder's (skipped with no_init_weights)
    _randomize(hf, 5)
    arch, kwargs, state = get_layout("pp_doclayout_v3").to_pxtorch(hf.state_dict(), hf.config.to_dict())
    ours = pxtorch.create_model(arch, **kwargs).eval()
    ours.load_state_dict(state, strict=True)
    return hf, ours


def test_pp_doclayout_v3_matches_transformers(v3_pair):
    hf, ours = v3_pair
    x = _rand_input(3)
    with torch.no_grad():
        ref = hf(pixel_values=x)
        feats, _ = ours.forward_features(x)
        memory, shapes = ours.transformer.flatten_memory(feats)
        _, enc_logits, _ = ours.transformer.encoder_proposals(memory, shapes)
        logits, boxes, order, masks = ours(x)
    assert masks.shape == (1, 300, SIZE // 4, SIZE // 4) and order.shape == (1, 300, 300) and logits.shape[-1] == 25
    for a, b in zip(feats, ref.encoder_last_hidden_state, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    torch.testing.assert_close(enc_logits, ref.enc_outputs_class, rtol=0, atol=1e-4)
    ours_idx = enc_logits.max(-1).values.topk(300, dim=1).indices[0].tolist()
    ref_idx = ref.enc_outputs_class.max(-1).values.topk(300, dim=1).indices[0].tolist()
    assert set(ours_idx) == set(ref_idx)
    where = {a: j for j, a in enumerate(ours_idx)}
    perm = torch.tensor([where[a] for a in ref_idx])
    torch.testing.assert_close(logits[0, perm], ref.logits[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(boxes[0, perm], ref.pred_boxes[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(masks[0, perm], ref.out_masks[0], rtol=0, atol=1e-4)
    # the pointer scores are permutation-equivariant; the causal mask is positional: compare pairs unmasked in both
    mapped = order[0][perm][:, perm]
    i, j = torch.triu_indices(300, 300, offset=1)
    both = perm[i] < perm[j]
    torch.testing.assert_close(mapped[i[both], j[both]], ref.order_logits[0][i[both], j[both]], rtol=0, atol=1e-4)
    assert both.float().mean() > 0.4


def test_pp_doclayout_v3_save_pretrained_loads_in_transformers(v3_pair, tmp_path):
    hf, ours = v3_pair
    pxtorch.save_pretrained(ours, tmp_path, layout="paddle-hf")
    loaded, info = transformers.PPDocLayoutV3ForObjectDetection.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    theirs, back = hf.state_dict(), loaded.state_dict()
    assert theirs.keys() == back.keys()
    for k in theirs:
        torch.testing.assert_close(back[k], theirs[k], rtol=0, atol=0, msg=k)
    assert pxtorch.from_pretrained(tmp_path).architecture == "pp_doclayout_v3"
