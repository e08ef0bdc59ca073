"""transformers' ``pp_ocrv5_mobile_det`` / ``pp_ocrv5_mobile_rec`` <-> pxtorch PP-OCRv4/v5 mobile det and rec.

Facts from transformers 5.24 (``models/pp_lcnet_v3``, ``models/pp_ocrv5_mobile_{det,rec}``):

* The PP-LCNetV3 backbone keeps PaddleOCR's *training* form: each ``LearnableRepLayer`` holds 4 kxk
  conv+BN branches (``conv_symmetric``), a 1x1 conv+BN branch (``conv_small_symmetric``, k > 1), an
  identity BN (stride 1, in == out), the affine block ``lab`` and ``act.lab``. transformers creates
  ``act.lab`` for stride-2 layers too and never uses it there; pxtorch has no such tensor.
* Configs: a missing ``backbone_config`` means ``pp_lcnet_v3`` with scale 0.75, divisor 16 and
  ``out_features`` stage2..5; a given one starts from ``PPLCNetV3Config``'s own defaults (divisor 8,
  the det block table). The released PP-OCRv5 mobile rec needs scale 0.95 and PaddleOCR's rec strides
  (``NET_CONFIG_rec``); transformers' default rec config does not run.
* SVTR LayerNorms: transformers has one ``layer_norm_eps`` (default 1e-6) for the block norms and the
  final norm; PaddleOCR uses 1e-5 in the blocks and 1e-6 after them. pxtorch keeps Paddle's values when
  reading (the weights were trained with them) and writes the block value (1e-5), which leaves only the
  final norm 1e-5 instead of 1e-6 in transformers.
* PP-OCRv4 mobile det/rec (and the English v4 rec) have the same modules (other weights, 6625 / 97 rec
  classes), so they use the same transformers model types. A ``pxtorch_architecture`` key in
  ``config.json`` (written only for them; transformers keeps unknown keys as attributes) says which
  pxtorch entry to build; without it the v5 entry is built.

``to_pxtorch`` maps onto the pxtorch training form (``deploy=False``): nothing is lost, and
:func:`pxtorch.reparameterize_model` gives the deploy form. ``from_pxtorch`` writes a deploy-form model
as the function-preserving training form: the fused kernel in branch 0 with an identity BN carrying the
bias (gamma 1, mean 0, var 1 - eps), zero kernels in the other branches and a zeroed identity BN.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...layers.rep import LearnableRepLayer
from ...models.pp_lcnet_v3 import NET_CONFIG_DET, NET_CONFIG_REC
from . import HFLayout, LayoutError, StateDict, fit_state, register_layout

__all__ = ["DET_LAYOUT", "REC_LAYOUT"]

_STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")
_BN_EPS = 1e-5  # nn.BatchNorm2d's default, used by both libraries
_LCNET_DEFAULTS: dict[str, Any] = {  # PPLCNetV3Config's own defaults
    "scale": 1.0,
    "block_configs": None,  # None: the det table
    "stem_channels": 16,
    "stem_stride": 2,
    "reduction": 4,
    "divisor": 8,
    "hidden_act": "hardswish",
    "conv_symmetric_num": 4,
}
_LCNET_SUBCONFIG = {"scale": 0.75, "divisor": 16, "out_features": ["stage2", "stage3", "stage4", "stage5"]}
_DET_DEFAULTS: dict[str, Any] = {
    "reduction": 4,
    "neck_out_channels": 96,
    "interpolate_mode": "nearest",
    "kernel_list": [3, 2, 2],
    "layer_list_out_channels": [12, 18, 42, 360],
}
_REC_DEFAULTS: dict[str, Any] = {
    "hidden_act": "silu",
    "hidden_size": 120,
    "mlp_ratio": 2.0,
    "depth": 2,
    "head_out_channels": 18385,
    "conv_kernel_size": [1, 3],
    "qkv_bias": True,
    "num_attention_heads": 8,
    "attention_dropout": 0.0,
    "layer_norm_eps": 1e-6,
}
_DET_PROJ = (16, 24, 56, 480)  # PaddleOCR's det layer_list widths at scale 1.0


# -- key names -------------------------------------------------------------------------------------

Rule = tuple[str, str | Callable[[re.Match[str]], str], tuple[tuple[str, str], ...]]

_REP_INNER = (
    (r"^dw_conv\.", "depthwise_convolution."),
    (r"^pw_conv\.", "pointwise_convolution."),
    (r"\.conv_kxk\.(\d+)\.conv\.", r".conv_symmetric.\1.convolution."),
    (r"\.conv_kxk\.(\d+)\.bn\.", r".conv_symmetric.\1.normalization."),
    (r"\.conv_1x1\.conv\.", ".conv_small_symmetric.convolution."),
    (r"\.conv_1x1\.bn\.", ".conv_small_symmetric.normalization."),
    (r"^se\.conv1\.", "squeeze_excitation_module.convolutions.0."),
    (r"^se\.conv2\.", "squeeze_excitation_module.convolutions.2."),
)
_CONV_BN_INNER = ((r"^conv\.", "convolution."), (r"^norm\.", "normalization."))
_SVTR_INNER = (
    (r"^norm1\.", "layer_norm1."),
    (r"^norm2\.", "layer_norm2."),
    (r"^mixer\.qkv\.", "self_attn.qkv."),
    (r"^mixer\.proj\.", "self_attn.projection."),
)
# (pxtorch prefix regex, transformers prefix, rules for the rest of the key); the first match wins.
_RULES: tuple[Rule, ...] = (
    (r"backbone\.conv1\.conv\.", "model.backbone.encoder.convolution.convolution.", ()),
    (r"backbone\.conv1\.bn\.", "model.backbone.encoder.convolution.normalization.", ()),
    (
        r"backbone\.blocks([2-6])\.(\d+)\.",
        lambda m: f"model.backbone.encoder.blocks.{int(m[1]) - 2}.layers.{m[2]}.",
        _REP_INNER,
    ),
    (r"backbone\.layer_list\.", "model.layer.", ()),
    (r"neck\.ins_conv\.", "model.neck.insert_conv.", ((r"\.se_block\.", ".squeeze_excitation_block."),)),
    (r"neck\.inp_conv\.", "model.neck.input_conv.", ((r"\.se_block\.", ".squeeze_excitation_block."),)),
    (r"head\.binarize\.conv1\.", "head.conv_down.convolution.", ()),
    (r"head\.binarize\.conv_bn1\.", "head.conv_down.norm.", ()),
    (r"head\.binarize\.conv2\.", "head.conv_up.convolution.", ()),
    (r"head\.binarize\.conv_bn2\.", "head.conv_up.norm.", ()),
    (r"head\.binarize\.conv3\.", "head.conv_final.", ()),
    (r"neck\.conv1\.", "head.encoder.conv_block.0.", _CONV_BN_INNER),
    (r"neck\.conv2\.", "head.encoder.conv_block.1.", _CONV_BN_INNER),
    (r"neck\.conv3\.", "head.encoder.conv_block.2.", _CONV_BN_INNER),
    (r"neck\.conv4\.", "head.encoder.conv_block.3.", _CONV_BN_INNER),
    (r"neck\.conv1x1\.", "head.encoder.conv_block.4.", _CONV_BN_INNER),
    (r"neck\.svtr_block\.(\d+)\.", r"head.encoder.svtr_block.\1.", _SVTR_INNER),
    (r"neck\.norm\.", "head.encoder.norm.", ()),
    (r"head\.fc\.", "head.head.", ()),
)


def hf_key(key: str) -> str:
    """transformers' name of pxtorch (training-form) state key ``key``; :class:`LayoutError` if it has none."""
    for pattern, prefix, inner in _RULES:
        m = re.match(pattern, key)
        if m is None:
            continue
        rest = key[m.end() :]
        for sub_pattern, repl in inner:
            rest = re.sub(sub_pattern, repl, rest)
        return (prefix(m) if callable(prefix) else m.expand(prefix)) + rest
    raise LayoutError(f"pxtorch key '{key}' has no counterpart in the transformers layout")


# -- deploy form -> training form -----------------------------------------------------------------


def _identity_bn(prefix: str, channels: int, bias: torch.Tensor | None, gamma: float = 1.0) -> StateDict:
    """A BN computing ``gamma * x + bias`` in eval mode (mean 0, var 1 - eps)."""
    return {
        f"{prefix}weight": torch.full((channels,), gamma),
        f"{prefix}bias": torch.zeros(channels) if bias is None else bias.clone(),
        f"{prefix}running_mean": torch.zeros(channels),
        f"{prefix}running_var": torch.full((channels,), 1.0 - _BN_EPS),
        f"{prefix}num_batches_tracked": torch.tensor(0),
    }


def _expand_rep_layer(prefix: str, layer: LearnableRepLayer, weight: torch.Tensor, bias: torch.Tensor) -> StateDict:
    """Training-form tensors (4 kxk branches, 1x1, identity) with the function of ``conv(x, weight) + bias``."""
    out: StateDict = {}
    for j in range(4):
        out[f"{prefix}conv_kxk.{j}.conv.weight"] = weight.clone() if j == 0 else torch.zeros_like(weight)
        out.update(_identity_bn(f"{prefix}conv_kxk.{j}.bn.", layer.out_channels, bias if j == 0 else None))
    if layer.kernel_size > 1:
        out[f"{prefix}conv_1x1.conv.weight"] = torch.zeros(layer.out_channels, weight.shape[1], 1, 1)
        out.update(_identity_bn(f"{prefix}conv_1x1.bn.", layer.out_channels, None))
    strides = (layer.stride,) * 2 if isinstance(layer.stride, int) else tuple(layer.stride)
    if layer.in_channels == layer.out_channels and strides == (1, 1):
        out.update(_identity_bn(f"{prefix}identity.", layer.in_channels, None, gamma=0.0))
    return out


def training_form_state(model: nn.Module) -> StateDict:
    """``model``'s state dict in the training form, deploy-form rep layers expanded function-preservingly."""
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if isinstance(module, LearnableRepLayer) and module.deploy:
            prefix = f"{name}."
            weight = state.pop(f"{prefix}reparam_conv.weight")
            bias = state.pop(f"{prefix}reparam_conv.bias")
            state.update(_expand_rep_layer(prefix, module, weight.float(), bias.float()))
    return state


def _num_branches(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, LearnableRepLayer) and not module.deploy:
            return len(module.conv_kxk)
    return 4


def _unused_act_keys(model: nn.Module) -> list[str]:
    """transformers keys of the ``act.lab`` tensors it creates (but never uses) for stride-2 rep layers."""
    keys = []
    for name, module in model.named_modules():
        if isinstance(module, LearnableRepLayer) and module.act is None:
            keys += [hf_key(f"{name}.lab.{p}").replace(".lab.", ".act.lab.") for p in ("scale", "bias")]
    return keys


# -- configs ---------------------------------------------------------------------------------------


def _stride_json(s: int | tuple[int, int]) -> int | list[int]:
    return s if isinstance(s, int) else list(s)


def _stride_key(s: Any) -> tuple[int, int]:
    if isinstance(s, int):
        return (s, s)
    return tuple(int(v) for v in s)


def _block_configs(table: dict[str, list]) -> list[list[list[Any]]]:
    return [[[k, i, o, _stride_json(s), se] for k, i, o, s, se in table[name]] for name in _STAGES]


def _backbone_config(backbone: nn.Module, num_branches: int) -> dict[str, Any]:
    return {
        "model_type": "pp_lcnet_v3",
        "scale": backbone.scale,
        "block_configs": _block_configs(NET_CONFIG_DET if backbone.det else NET_CONFIG_REC),
        "stem_channels": 16,
        "stem_stride": 2,
        "reduction": 4,
        "divisor": 16,
        "hidden_act": "hardswish",
        "conv_symmetric_num": num_branches,
        "out_features": ["stage2", "stage3", "stage4", "stage5"],
        "out_indices": [2, 3, 4, 5],
    }


def _effective_backbone(hf_config: dict[str, Any]) -> dict[str, Any]:
    """The backbone config transformers would build (its defaults filled in)."""
    given = hf_config.get("backbone_config")
    if given is None:
        return {**_LCNET_DEFAULTS, **_LCNET_SUBCONFIG}
    if given.get("model_type", "pp_lcnet_v3") != "pp_lcnet_v3":
        raise LayoutError(f"backbone '{given.get('model_type')}' is not PP-LCNetV3")
    return {**_LCNET_DEFAULTS, **given}


def _check_backbone(backbone: dict[str, Any], det: bool, where: str) -> float:
    """Raise :class:`LayoutError` unless pxtorch's PP-LCNetV3 builds this backbone; returns its scale."""
    table = NET_CONFIG_DET if det else NET_CONFIG_REC
    blocks = backbone["block_configs"] or _block_configs(NET_CONFIG_DET)
    want = [[(k, i, o, _stride_key(s), bool(se)) for k, i, o, s, se in table[name]] for name in _STAGES]
    try:
        got = [[(int(k), int(i), int(o), _stride_key(s), bool(se)) for k, i, o, s, se in stage] for stage in blocks]
    except (TypeError, ValueError) as e:
        raise LayoutError(f"{where}: unreadable backbone block_configs ({e})") from None
    fixed = {"stem_channels": 16, "stem_stride": 2, "reduction": 4, "divisor": 16, "hidden_act": "hardswish"}
    problems = [f"{k}={backbone[k]!r} (pxtorch: {v!r})" for k, v in fixed.items() if backbone[k] != v]
    if backbone["conv_symmetric_num"] != 4:
        problems.append(f"conv_symmetric_num={backbone['conv_symmetric_num']} (pxtorch builds 4 branches)")
    if got != want:
        problems.append(f"block_configs differ from PaddleOCR's {'det' if det else 'rec'} table")
    stages = ["stage2", "stage3", "stage4", "stage5"]
    out = backbone.get("out_features") or [f"stage{i}" for i in backbone.get("out_indices") or [2, 3, 4, 5]]
    if (list(out) != stages) if det else (list(out)[-1:] != ["stage5"]):
        problems.append(f"out_features={list(out)}")
    if problems:
        raise LayoutError(f"{where}: pxtorch's PP-LCNetV3 cannot express backbone " + ", ".join(problems))
    return float(backbone["scale"])


def _pick_architecture(layout_archs: tuple[str, ...], hf_config: dict[str, Any]) -> str:
    arch = hf_config.get("pxtorch_architecture") or layout_archs[0]
    if arch not in layout_archs:
        raise LayoutError(f"model_type '{hf_config.get('model_type')}' holds {', '.join(layout_archs)}, not '{arch}'")
    return arch


def _variant_cfg(arch: str) -> dict[str, Any]:
    from ...models import text_det_db, text_rec_svtr

    return {**text_det_db.model_cfgs, **text_rec_svtr.model_cfgs}[arch]


# -- state dict transfer ---------------------------------------------------------------------------


def _pull_state(arch: str, kwargs: dict[str, Any], hf_state: StateDict, model_type: str) -> StateDict:
    """pxtorch state of the training-form ``arch`` taken from ``hf_state`` (every key checked)."""
    from ..._factory import create_model

    with torch.device("meta"):
        target = create_model(arch, pretrained=False, **kwargs)
    return fit_state(
        target.state_dict(),
        hf_state,
        hf_key,
        f"the {model_type} checkpoint does not fit pxtorch's {arch}",
        set(_unused_act_keys(target)),
    )


def _push_state(model: nn.Module) -> StateDict:
    """transformers state of ``model`` (either form): renamed training-form tensors + unused ``act.lab``."""
    if getattr(model.head, "thresh", None) is not None:
        import logging

        logging.getLogger(__name__).warning(
            "%s: the DB threshold branch (training only) has no place in the transformers layout; not written",
            model.architecture,
        )
    state = {}
    for key, tensor in training_form_state(model).items():
        if key.startswith("head.thresh."):
            continue
        state[hf_key(key)] = tensor.contiguous()
    for key in _unused_act_keys(model):
        state[key] = torch.ones(1) if key.endswith("scale") else torch.zeros(1)
    return state


# -- detection -------------------------------------------------------------------------------------


def _det_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    arch = _pick_architecture(DET_LAYOUT.architectures, hf_config)
    cfg = {**_DET_DEFAULTS, **hf_config}
    scale = _check_backbone(_effective_backbone(hf_config), det=True, where=arch)
    problems = []
    if list(cfg["kernel_list"]) != [3, 2, 2]:
        problems.append(f"kernel_list={cfg['kernel_list']} (pxtorch: [3, 2, 2])")
    if cfg["interpolate_mode"] != "nearest" or cfg["reduction"] != 4:
        problems.append(f"interpolate_mode={cfg['interpolate_mode']!r}, reduction={cfg['reduction']}")
    if list(cfg["layer_list_out_channels"]) != [int(c * scale) for c in _DET_PROJ]:
        problems.append(f"layer_list_out_channels={cfg['layer_list_out_channels']} at scale {scale}")
    if problems:
        raise LayoutError(f"{arch}: pxtorch cannot express " + ", ".join(problems))
    variant = _variant_cfg(arch)
    kwargs: dict[str, Any] = {"deploy": False}
    if scale != variant["scale"]:
        kwargs["scale"] = scale
    if cfg["neck_out_channels"] != variant["neck_channels"]:
        kwargs["neck_channels"] = int(cfg["neck_out_channels"])
    return arch, kwargs, _pull_state(arch, kwargs, hf_state, "pp_ocrv5_mobile_det")


def _det_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    config: dict[str, Any] = {
        "architectures": ["PPOCRV5MobileDetForObjectDetection"],
        "model_type": "pp_ocrv5_mobile_det",
        "backbone_config": _backbone_config(model.backbone, _num_branches(model)),
        "reduction": 4,
        "neck_out_channels": model.neck.out_channels,
        "interpolate_mode": "nearest",
        "kernel_list": [3, 2, 2],
        "layer_list_out_channels": list(model.backbone.out_channels),
        "id2label": {"0": "text"},
        "dtype": "float32",
    }
    if model.architecture != DET_LAYOUT.architectures[0]:
        config["pxtorch_architecture"] = model.architecture
    return config, _push_state(model)


# -- recognition -----------------------------------------------------------------------------------


def _rec_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    arch = _pick_architecture(REC_LAYOUT.architectures, hf_config)
    cfg = {**_REC_DEFAULTS, **hf_config}
    scale = _check_backbone(_effective_backbone(hf_config), det=False, where=arch)
    fixed = {"hidden_act": "silu", "mlp_ratio": 2.0, "qkv_bias": True, "num_attention_heads": 8}
    problems = [f"{k}={cfg[k]!r} (pxtorch: {v!r})" for k, v in fixed.items() if cfg[k] != v]
    if problems:
        raise LayoutError(f"{arch}: pxtorch's SVTR neck cannot express " + ", ".join(problems))
    variant = _variant_cfg(arch)
    kwargs: dict[str, Any] = {"deploy": False}
    if scale != variant["scale"]:
        kwargs["scale"] = scale
    if int(cfg["head_out_channels"]) != variant["num_classes"]:
        kwargs["num_classes"] = int(cfg["head_out_channels"])
    if int(cfg["hidden_size"]) != 120:
        kwargs["dims"] = kwargs["hidden_dims"] = int(cfg["hidden_size"])
    if int(cfg["depth"]) != 2:
        kwargs["depth"] = int(cfg["depth"])
    if list(cfg["conv_kernel_size"]) != [1, 3]:
        kwargs["kernel_size"] = tuple(int(k) for k in cfg["conv_kernel_size"])
    return arch, kwargs, _pull_state(arch, kwargs, hf_state, "pp_ocrv5_mobile_rec")


def _rec_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    neck = model.neck
    block = neck.svtr_block[0]
    hidden = block.norm1.normalized_shape[0]
    if neck.out_channels != hidden:
        raise LayoutError(
            f"{model.architecture}: transformers' SVTR ties the output width to hidden_size "
            f"({neck.out_channels} != {hidden})"
        )
    config: dict[str, Any] = {
        "architectures": ["PPOCRV5MobileRecForTextRecognition"],
        "model_type": "pp_ocrv5_mobile_rec",
        "backbone_config": _backbone_config(model.backbone, _num_branches(model)),
        "hidden_act": "silu",
        "hidden_size": hidden,
        "mlp_ratio": block.mlp.fc1.out_features / hidden,
        "depth": len(neck.svtr_block),
        "head_out_channels": model.head.fc.out_features,
        "conv_kernel_size": list(neck.conv1.conv.kernel_size),
        "qkv_bias": block.mixer.qkv.bias is not None,
        "num_attention_heads": block.mixer.num_heads,
        "attention_dropout": 0.0,
        "layer_norm_eps": block.norm1.eps,  # one eps in transformers: the blocks' (Paddle: 1e-5; final 1e-6)
        "dtype": "float32",
    }
    if model.architecture != REC_LAYOUT.architectures[0]:
        config["pxtorch_architecture"] = model.architecture
    return config, _push_state(model)


DET_LAYOUT = register_layout(
    HFLayout(
        model_type="pp_ocrv5_mobile_det",
        architectures=("pp_ocrv5_mobile_det", "pp_ocrv4_mobile_det"),
        to_pxtorch=_det_to_pxtorch,
        from_pxtorch=_det_from_pxtorch,
    )
)
REC_LAYOUT = register_layout(
    HFLayout(
        model_type="pp_ocrv5_mobile_rec",
        architectures=("pp_ocrv5_mobile_rec", "pp_ocrv4_mobile_rec", "en_pp_ocrv4_mobile_rec"),
        to_pxtorch=_rec_to_pxtorch,
        from_pxtorch=_rec_from_pxtorch,
    )
)
