"""transformers' ``slanet`` (``SLANetForTableRecognition``) <-> pxtorch ``slanet_plus``.

Key names follow transformers 5.x: a ``pp_lcnet`` backbone (``backbone.vision_backbone.encoder``), the
CSP-PAN as ``backbone.post_csp_pan`` and the SLA head as ``head``. transformers' CSP layer calls the short
(residual) branch ``conv1``, the main branch ``conv2`` and the fusing conv ``conv3``; pxtorch keeps Paddle's
``short_conv``/``main_conv``/``final_conv``.

transformers has **no loc head** (cell boxes). :func:`from_pxtorch` writes it as four extra keys
``head.loc_generator.fc1/fc2.{weight,bias}``; transformers loads such a checkpoint and ignores them (it
reports them as unexpected keys). :func:`to_pxtorch` needs them: an official ``PaddlePaddle/SLANet_plus_safetensors``
checkpoint, which lacks them, raises :class:`LayoutError` (its structure weights alone cannot make cell boxes).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from . import HFLayout, LayoutError, register_layout

StateDict = dict[str, torch.Tensor]

MODEL_TYPE = "slanet"
_ARCH = "slanet_plus"

# (transformers pattern, pxtorch replacement), applied in order to every key
_HF_TO_PX: list[tuple[str, str]] = [
    (r"^backbone\.vision_backbone\.encoder\.convolution\.", "backbone.conv1."),
    (r"^backbone\.vision_backbone\.encoder\.blocks\.(\d+)\.layers\.", lambda m: f"backbone.blocks{int(m[1]) + 2}."),
    (r"\.depthwise_convolution\.", ".dw_conv."),
    (r"\.pointwise_convolution\.", ".pw_conv."),
    (r"\.squeeze_excitation_module\.convolutions\.0\.", ".se.conv1."),
    (r"\.squeeze_excitation_module\.convolutions\.2\.", ".se.conv2."),
    (r"^backbone\.post_csp_pan\.channel_projector\.", "neck.conv_t.convs."),
    (r"^backbone\.post_csp_pan\.", "neck."),
    (r"^(neck\.(?:top_down|bottom_up)_blocks\.\d+)\.conv1\.", r"\1.short_conv."),
    (r"^(neck\.(?:top_down|bottom_up)_blocks\.\d+)\.conv2\.", r"\1.main_conv."),
    (r"^(neck\.(?:top_down|bottom_up)_blocks\.\d+)\.conv3\.", r"\1.final_conv."),
    (r"\.bottlenecks\.", ".blocks."),
    # neck depthwise-separable convs are Paddle DPModules: dwconv/bn1, pwconv/bn2
    (r"^(neck\..*)\.dw_conv\.convolution\.", r"\1.dwconv."),
    (r"^(neck\..*)\.dw_conv\.normalization\.", r"\1.bn1."),
    (r"^(neck\..*)\.pw_conv\.convolution\.", r"\1.pwconv."),
    (r"^(neck\..*)\.pw_conv\.normalization\.", r"\1.bn2."),
    (r"\.convolution\.", ".conv."),
    (r"\.normalization\.", ".bn."),
    (r"^head\.structure_attention_cell\.input_to_hidden\.", "head.structure_attention_cell.i2h."),
    (r"^head\.structure_attention_cell\.hidden_to_hidden\.", "head.structure_attention_cell.h2h."),
    (r"^head\.(structure|loc)_generator\.fc1\.", r"head.\1_generator.0."),
    (r"^head\.(structure|loc)_generator\.fc2\.", r"head.\1_generator.1."),
]

# pxtorch -> transformers, applied in order
_PX_TO_HF: list[tuple[str, str]] = [
    (r"^backbone\.conv1\.conv\.", "backbone.vision_backbone.encoder.convolution.convolution."),
    (r"^backbone\.conv1\.bn\.", "backbone.vision_backbone.encoder.convolution.normalization."),
    (r"^backbone\.blocks(\d)\.", lambda m: f"backbone.vision_backbone.encoder.blocks.{int(m[1]) - 2}.layers."),
    (r"\.dw_conv\.conv\.", ".depthwise_convolution.convolution."),
    (r"\.dw_conv\.bn\.", ".depthwise_convolution.normalization."),
    (r"\.pw_conv\.conv\.", ".pointwise_convolution.convolution."),
    (r"\.pw_conv\.bn\.", ".pointwise_convolution.normalization."),
    (r"\.se\.conv1\.", ".squeeze_excitation_module.convolutions.0."),
    (r"\.se\.conv2\.", ".squeeze_excitation_module.convolutions.2."),
    (r"^neck\.conv_t\.convs\.", "backbone.post_csp_pan.channel_projector."),
    (r"^neck\.", "backbone.post_csp_pan."),
    (r"\.short_conv\.", ".conv1."),
    (r"\.main_conv\.", ".conv2."),
    (r"\.final_conv\.", ".conv3."),
    (r"(_blocks\.\d+)\.blocks\.", r"\1.bottlenecks."),
    (r"\.dwconv\.", ".depthwise_convolution.convolution."),
    (r"\.bn1\.", ".depthwise_convolution.normalization."),
    (r"\.pwconv\.", ".pointwise_convolution.convolution."),
    (r"\.bn2\.", ".pointwise_convolution.normalization."),
    (r"\.conv\.(weight|bias)$", r".convolution.\1"),
    (r"\.bn\.", ".normalization."),
    (r"^head\.structure_attention_cell\.i2h\.", "head.structure_attention_cell.input_to_hidden."),
    (r"^head\.structure_attention_cell\.h2h\.", "head.structure_attention_cell.hidden_to_hidden."),
    (r"^head\.(structure|loc)_generator\.0\.", r"head.\1_generator.fc1."),
    (r"^head\.(structure|loc)_generator\.1\.", r"head.\1_generator.fc2."),
]

_LOC_KEYS = tuple(f"head.loc_generator.{fc}.{p}" for fc in ("fc1", "fc2") for p in ("weight", "bias"))


def _rename(key: str, rules: list[tuple[str, Any]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def hf_key_to_pxtorch(key: str) -> str:
    """A transformers ``slanet`` key -> the pxtorch ``slanet_plus`` key."""
    return _rename(key, _HF_TO_PX)


def pxtorch_key_to_hf(key: str) -> str:
    """A pxtorch ``slanet_plus`` key -> the transformers ``slanet`` key (the loc head gets extra keys)."""
    return _rename(key, _PX_TO_HF)


def _check_config(config: dict[str, Any]) -> None:
    expect = {"post_conv_out_channels": 96, "out_channels": 50, "hidden_size": 256}
    bad = {k: config.get(k, v) for k, v in expect.items() if config.get(k, v) != v}
    backbone = config.get("backbone_config") or {}
    if float(backbone.get("scale", 1.0)) != 1.0:
        bad["backbone_config.scale"] = backbone.get("scale")
    if bad:
        raise LayoutError(f"'{MODEL_TYPE}' config {bad} is not SLANet_plus (expected {expect}, backbone scale 1.0)")


def to_pxtorch(state: StateDict, config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers state dict -> ``("slanet_plus", kwargs, pxtorch state)``."""
    arch = config.get("pxtorch_architecture", _ARCH)
    if arch != _ARCH:
        raise LayoutError(f"a '{MODEL_TYPE}' checkpoint holds {_ARCH}, not {arch!r}")
    _check_config(config)
    missing = [k for k in _LOC_KEYS if k not in state]
    if missing:
        raise LayoutError(
            f"this '{MODEL_TYPE}' checkpoint has no loc head ({', '.join(missing)}): transformers' SLANet "
            "predicts the structure only, pxtorch's SLANet_plus also needs the cell-box head. Use the offline "
            "weights (pxtorch.create_model('SLANet_plus', pretrained=True)) or a checkpoint written by pxtorch."
        )
    out: StateDict = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        out[hf_key_to_pxtorch(key)] = value
    for key in [k for k in out if k.endswith(".running_mean")]:  # BatchNorm counters (unused in eval)
        out[key[: -len("running_mean")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return _ARCH, {}, out


def from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``slanet_plus`` -> (transformers config dict, state dict with the loc head as extra keys)."""
    if getattr(model, "architecture", None) != _ARCH:
        raise LayoutError(f"'{MODEL_TYPE}' holds {_ARCH} only, not {getattr(model, 'architecture', model)!r}")
    with torch.no_grad():
        state = {
            pxtorch_key_to_hf(k): v.detach().to("cpu").contiguous().clone()
            for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")
        }
    head = model.head
    config = {
        "model_type": MODEL_TYPE,
        "architectures": ["SLANetForTableRecognition"],
        "post_conv_out_channels": int(head.structure_attention_cell.i2h.in_features),
        "out_channels": int(head.num_classes),
        "hidden_size": int(head.hidden_size),
        "max_text_length": int(head.max_text_length),
        "hidden_act": "hardswish",
        "csp_kernel_size": 5,
        "csp_num_blocks": 1,
        "backbone_config": {
            "model_type": "pp_lcnet",
            "scale": 1.0,
            "out_features": ["stage2", "stage3", "stage4", "stage5"],
            "out_indices": [2, 3, 4, 5],
            "divisor": 16,
        },
        "pxtorch_architecture": _ARCH,
    }
    return config, state


register_layout(
    HFLayout(model_type=MODEL_TYPE, architectures=(_ARCH,), to_pxtorch=to_pxtorch, from_pxtorch=from_pxtorch)
)
