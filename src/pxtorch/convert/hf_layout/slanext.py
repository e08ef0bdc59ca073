"""transformers' ``slanext`` (``SLANeXtForTableRecognition``) <-> pxtorch ``slanext_wired`` / ``slanext_wireless``.

Official checkpoints: ``PaddlePaddle/SLANeXt_wired_safetensors`` and ``PaddlePaddle/SLANeXt_wireless_safetensors``.
transformers calls the encoder ``backbone.vision_tower`` (``layers.i.layer_norm1/2``, ``neck.conv1/layer_norm1/
conv2/layer_norm2``), the stride-2 conv ``backbone.post_conv`` and the GRU attention's ``i2h``/``h2h``
``input_to_hidden``/``hidden_to_hidden``; pxtorch keeps the Paddle/SAM names (``blocks.i.norm1/2``,
``neck.0..3``, ``net_2``). Both variants share one architecture; ``pxtorch_architecture`` in ``config.json``
picks one (default ``slanext_wired``).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from . import HFLayout, LayoutError, fit_state, register_layout

StateDict = dict[str, torch.Tensor]

MODEL_TYPE = "slanext"
_ARCHS = ("slanext_wired", "slanext_wireless")

# pxtorch -> transformers, applied in order
_PX_TO_HF: list[tuple[str, str]] = [
    (r"^backbone\.patch_embed\.proj\.", "backbone.vision_tower.patch_embed.projection."),
    (r"^backbone\.pos_embed$", "backbone.vision_tower.pos_embed"),
    (r"^backbone\.blocks\.(\d+)\.norm(\d)\.", r"backbone.vision_tower.layers.\1.layer_norm\2."),
    (r"^backbone\.blocks\.", "backbone.vision_tower.layers."),
    (r"^backbone\.neck\.0\.", "backbone.vision_tower.neck.conv1."),
    (r"^backbone\.neck\.1\.", "backbone.vision_tower.neck.layer_norm1."),
    (r"^backbone\.neck\.2\.", "backbone.vision_tower.neck.conv2."),
    (r"^backbone\.neck\.3\.", "backbone.vision_tower.neck.layer_norm2."),
    (r"^backbone\.net_2\.", "backbone.post_conv."),
    (r"^head\.structure_attention_cell\.i2h\.", "head.structure_attention_cell.input_to_hidden."),
    (r"^head\.structure_attention_cell\.h2h\.", "head.structure_attention_cell.hidden_to_hidden."),
    (r"^head\.structure_generator\.0\.", "head.structure_generator.fc1."),
    (r"^head\.structure_generator\.1\.", "head.structure_generator.fc2."),
]

# pxtorch build kwarg -> (transformers config section, key); None = top level
_ARGS: dict[str, tuple[str | None, str]] = {
    "img_size": ("vision_config", "image_size"),
    "patch_size": ("vision_config", "patch_size"),
    "embed_dim": ("vision_config", "hidden_size"),
    "depth": ("vision_config", "num_hidden_layers"),
    "num_heads": ("vision_config", "num_attention_heads"),
    "mlp_dim": ("vision_config", "mlp_dim"),
    "window_size": ("vision_config", "window_size"),
    "global_attn_indexes": ("vision_config", "global_attn_indexes"),
    "neck_channels": ("vision_config", "output_channels"),
    "out_channels": (None, "post_conv_out_channels"),
    "hidden_size": (None, "hidden_size"),
    "num_classes": (None, "out_channels"),
    "max_text_length": (None, "max_text_length"),
}
# transformers' defaults (SLANeXtConfig / SLANeXtVisionConfig) = pxtorch's defaults
_DEFAULTS: dict[str, Any] = {
    "img_size": 512,
    "patch_size": 16,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "mlp_dim": 3072,
    "window_size": 14,
    "global_attn_indexes": [2, 5, 8, 11],
    "neck_channels": 256,
    "out_channels": 512,
    "hidden_size": 512,
    "num_classes": 50,
    "max_text_length": 500,
}
# vision options pxtorch builds one way only
_FIXED_VISION = {
    "num_channels": 3,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "use_abs_pos": True,
    "use_rel_pos": True,
}


def pxtorch_key_to_hf(key: str) -> str:
    """A pxtorch ``slanext_*`` key -> the transformers ``slanext`` key."""
    for pattern, repl in _PX_TO_HF:
        key = re.sub(pattern, repl, key)
    return key


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _kwargs_from_config(config: dict[str, Any]) -> dict[str, Any]:
    vision = config.get("vision_config") or {}
    bad = {k: vision[k] for k, v in _FIXED_VISION.items() if k in vision and vision[k] != v}
    if "post_conv_in_channels" in config and config["post_conv_in_channels"] != vision.get("output_channels", 256):
        bad["post_conv_in_channels"] = config["post_conv_in_channels"]
    if bad:
        raise LayoutError(f"'{MODEL_TYPE}' config {bad}: pxtorch builds {_FIXED_VISION} with post_conv_in = neck")
    kwargs: dict[str, Any] = {}
    for arg, (section, key) in _ARGS.items():
        source = vision if section else config
        if key in source and _norm(source[key]) != _DEFAULTS[arg]:
            kwargs[arg] = tuple(source[key]) if isinstance(source[key], list) else source[key]
    return kwargs


def to_pxtorch(state: StateDict, config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers state dict -> ``(architecture, non-default kwargs, pxtorch state)``."""
    arch = config.get("pxtorch_architecture", _ARCHS[0])
    if arch not in _ARCHS:
        raise LayoutError(f"a '{MODEL_TYPE}' checkpoint holds one of {_ARCHS}, not {arch!r}")
    kwargs = _kwargs_from_config(config)
    from ...models.slanext import _create_slanext

    with torch.device("meta"):  # shapes only
        target = _create_slanext(arch, False, **kwargs).state_dict()
    out = fit_state(target, state, pxtorch_key_to_hf, f"'{MODEL_TYPE}' checkpoint for {arch}")
    return arch, kwargs, out


def from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``slanext_*`` -> (transformers config dict, state dict) that ``SLANeXtForTableRecognition`` loads."""
    arch = getattr(model, "architecture", None)
    if arch not in _ARCHS:
        raise LayoutError(f"'{MODEL_TYPE}' holds {_ARCHS} only, not {arch!r}")
    args = {**_DEFAULTS, **{k: _norm(v) for k, v in model.model_args.items() if k in _DEFAULTS}}
    vision: dict[str, Any] = {"model_type": "slanext_vision", **_FIXED_VISION}
    config: dict[str, Any] = {
        "model_type": MODEL_TYPE,
        "architectures": ["SLANeXtForTableRecognition"],
        "post_conv_in_channels": args["neck_channels"],
        "vision_config": vision,
        "pxtorch_architecture": arch,
    }
    for arg, (section, key) in _ARGS.items():
        (vision if section else config)[key] = args[arg]
    with torch.no_grad():
        state = {pxtorch_key_to_hf(k): v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return config, state


register_layout(HFLayout(model_type=MODEL_TYPE, architectures=_ARCHS, to_pxtorch=to_pxtorch, from_pxtorch=from_pxtorch))
