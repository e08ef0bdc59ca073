"""transformers' ``pp_lcnet`` (``PPLCNetForImageClassification``) <-> pxtorch PP-LCNet classifiers.

Facts from transformers 5.24 ``models/pp_lcnet``: key names ``encoder.convolution.{convolution,normalization}``
(stem), ``encoder.blocks.{stage}.layers.{i}.{depthwise,pointwise}_convolution.{convolution,normalization}``,
``...squeeze_excitation_module.convolutions.{0,2}`` (SE), ``last_convolution`` (no bias) and ``head``; the
config fields ``scale``, ``block_configs`` (per stage ``[kernel, in, out, stride, se]``; ``None`` = the
ImageNet table with stride 2 everywhere), ``stem_channels`` 16, ``stem_stride`` 2, ``reduction`` 4,
``class_expand`` 1280, ``divisor`` 8, ``hidden_act`` hardswish, ``hidden_dropout_prob`` 0.2 (applied at
inference as ``x * (1 - p)``, like Paddle) and ``id2label``. Its SE gate is torch's ``Hardsigmoid`` (slope
1/6) where Paddle's is 0.1666667: a relative difference of 2e-7 in the gate.

The four PaddleX classifiers share this ``model_type``. ``config["pxtorch_architecture"]`` (written by
pxtorch) names the entry; otherwise the labels and strides pick it (``0_degree``/``180_degree`` +
``scale`` -> text-line, ``wired_table``/``wireless_table`` -> table, four classes -> document orientation).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ...models.pp_lcnet import DEFAULT_STRIDES, NET_CONFIG, Stride
from . import HFLayout, LayoutError, StateDict, fit_state, register_layout

__all__ = ["LAYOUT", "hf_key"]

_ARCHS = (
    "pp_lcnet_x1_0_doc_ori",
    "pp_lcnet_x0_25_textline_ori",
    "pp_lcnet_x1_0_textline_ori",
    "pp_lcnet_x1_0_table_cls",
)
_FIXED = {"stem_channels": 16, "reduction": 4, "divisor": 8, "hidden_act": "hardswish"}
_DEFAULTS: dict[str, Any] = {
    "scale": 1.0,
    "block_configs": None,
    "stem_stride": 2,
    "class_expand": 1280,
    "hidden_dropout_prob": 0.2,
    **_FIXED,
}

_INNER = (
    (r"^dw_conv\.conv\.", "depthwise_convolution.convolution."),
    (r"^dw_conv\.bn\.", "depthwise_convolution.normalization."),
    (r"^pw_conv\.conv\.", "pointwise_convolution.convolution."),
    (r"^pw_conv\.bn\.", "pointwise_convolution.normalization."),
    (r"^se\.conv1\.", "squeeze_excitation_module.convolutions.0."),
    (r"^se\.conv2\.", "squeeze_excitation_module.convolutions.2."),
)


def hf_key(key: str) -> str:
    """transformers' name of pxtorch classifier state key ``key``; :class:`LayoutError` if it has none."""
    if key.startswith("backbone.conv1."):
        rest = key[len("backbone.conv1.") :]
        return "encoder.convolution." + rest.replace("conv.", "convolution.", 1).replace("bn.", "normalization.", 1)
    m = re.match(r"backbone\.blocks([2-6])\.(\d+)\.", key)
    if m is not None:
        rest = key[m.end() :]
        for pattern, repl in _INNER:
            rest = re.sub(pattern, repl, rest)
        return f"encoder.blocks.{int(m[1]) - 2}.layers.{m[2]}.{rest}"
    if key.startswith("last_conv."):
        return "last_convolution." + key[len("last_conv.") :]
    if key.startswith("fc."):
        return "head." + key[len("fc.") :]
    raise LayoutError(f"pxtorch key '{key}' has no counterpart in the transformers pp_lcnet layout")


# -- config ---------------------------------------------------------------------------------------


def _json_stride(s: Stride) -> int | list[int]:
    return s if isinstance(s, int) else [int(s[0]), int(s[1])]


def _block_configs(stride_list: tuple[Stride, ...]) -> list[list[list[Any]]]:
    """transformers' ``block_configs`` for pxtorch's table with ``stride_list`` (entries 1-4 = blocks3-6)."""
    out = []
    for idx, cfg in enumerate(NET_CONFIG.values()):
        stage = [list(b) for b in cfg]
        if idx > 0:
            stage[0][3] = _json_stride(stride_list[idx])
        out.append(stage)
    return out


def _stride_list(hf: dict[str, Any], where: str) -> tuple[Stride, ...]:
    """pxtorch ``stride_list`` from the config; :class:`LayoutError` when the table differs otherwise."""
    stem = _stride(hf["stem_stride"])
    blocks = hf["block_configs"]
    if blocks is None:
        return (stem, *DEFAULT_STRIDES[1:])
    try:
        table = [[[_stride(v) if i == 3 else v for i, v in enumerate(b)] for b in stage] for stage in blocks]
    except (TypeError, ValueError) as e:
        raise LayoutError(f"{where}: unreadable block_configs ({e})") from None
    if len(table) != len(NET_CONFIG) or any(not stage for stage in table):
        raise LayoutError(f"{where}: block_configs needs {len(NET_CONFIG)} non-empty stages, got {len(table)}")
    strides: list[Stride] = [stem]
    problems = []
    for idx, (name, ours) in enumerate(NET_CONFIG.items()):
        theirs = [list(b) for b in table[idx]]
        expected = [list(b) for b in ours]
        if idx > 0:  # the stage's first stride is stride_list[idx]
            strides.append(theirs[0][3])
            expected[0][3] = theirs[0][3]
        if theirs != expected:
            problems.append(f"{name} = {theirs} (pxtorch: {[list(b) for b in ours]})")
    if problems:
        raise LayoutError(f"{where}: pxtorch's PP-LCNet cannot express block_configs " + "; ".join(problems))
    return tuple(strides)


def _stride(v: Any) -> Stride:
    """A config stride (int, or ``[h, w]``) as pxtorch writes it: int when square."""
    if isinstance(v, (list, tuple)):
        h, w = (int(x) for x in v)
        return h if h == w else (h, w)
    return int(v)


def _labels(hf: dict[str, Any]) -> list[str]:
    id2label = hf.get("id2label") or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


def _pick_architecture(hf: dict[str, Any], scale: float, strides: tuple[Stride, ...]) -> str:
    arch = hf.get("pxtorch_architecture")
    if arch is not None:
        if arch not in _ARCHS:
            raise LayoutError(f"model_type 'pp_lcnet' holds {', '.join(_ARCHS)}, not '{arch}'")
        return arch
    labels = _labels(hf)
    if labels == ["wired_table", "wireless_table"]:
        return "pp_lcnet_x1_0_table_cls"
    if labels == ["0_degree", "180_degree"] or (len(labels) == 2 and tuple(strides) != DEFAULT_STRIDES):
        return "pp_lcnet_x0_25_textline_ori" if scale == 0.25 else "pp_lcnet_x1_0_textline_ori"
    return "pp_lcnet_x1_0_doc_ori"


def _to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    from ...models.pp_lcnet import model_cfgs

    hf = {**_DEFAULTS, **{k: v for k, v in hf_config.items() if k in _DEFAULTS and v is not None}}
    problems = [f"{k}={hf[k]!r} (pxtorch: {v!r})" for k, v in _FIXED.items() if hf[k] != v]
    if problems:
        raise LayoutError("pp_lcnet: pxtorch's PP-LCNet cannot express " + ", ".join(problems))
    scale = float(hf["scale"])
    strides = _stride_list(hf, "pp_lcnet")
    arch = _pick_architecture(hf_config, scale, strides)
    variant = model_cfgs[arch]
    kwargs: dict[str, Any] = {}
    if scale != variant["scale"]:
        kwargs["scale"] = scale
    if tuple(strides) != tuple(variant.get("stride_list", DEFAULT_STRIDES)):
        kwargs["stride_list"] = strides
    num_classes = int(hf_state["head.weight"].shape[0]) if "head.weight" in hf_state else len(_labels(hf_config))
    if num_classes != variant["num_classes"]:
        kwargs["num_classes"] = num_classes
    if int(hf["class_expand"]) != 1280:
        kwargs["class_expand"] = int(hf["class_expand"])
    if float(hf["hidden_dropout_prob"]) != 0.2:
        kwargs["dropout"] = float(hf["hidden_dropout_prob"])
    return arch, kwargs, _pull_state(arch, kwargs, hf_state)


def _pull_state(arch: str, kwargs: dict[str, Any], hf_state: StateDict) -> StateDict:
    """pxtorch state of ``arch`` taken from ``hf_state`` (every key checked both ways)."""
    from ..._factory import create_model

    with torch.device("meta"):
        target = create_model(arch, pretrained=False, **kwargs)
    return fit_state(target.state_dict(), hf_state, hf_key, f"the pp_lcnet checkpoint does not fit pxtorch's {arch}")


def _from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    backbone = model.backbone
    if tuple(backbone.out_stages) != ("blocks6",):
        raise LayoutError(f"{model.architecture}: only the classifier (blocks6 output) has a transformers layout")
    num_classes = model.fc.out_features
    labels = list(model.pretrained_cfg.labels or [])
    if len(labels) != num_classes:
        labels = [f"LABEL_{i}" for i in range(num_classes)]
    stem = backbone.stride_list[0]
    config: dict[str, Any] = {
        "architectures": ["PPLCNetForImageClassification"],
        "model_type": "pp_lcnet",
        "scale": backbone.scale,
        "block_configs": _block_configs(backbone.stride_list),
        "stem_channels": 16,
        "stem_stride": _json_stride(stem),
        "reduction": 4,
        "class_expand": model.last_conv.out_channels,
        "divisor": 8,
        "hidden_act": "hardswish",
        "hidden_dropout_prob": round(1.0 - model.keep, 10),
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "dtype": "float32",
        "pxtorch_architecture": model.architecture,
    }
    state = {hf_key(k): v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return config, state


LAYOUT = register_layout(
    HFLayout(model_type="pp_lcnet", architectures=_ARCHS, to_pxtorch=_to_pxtorch, from_pxtorch=_from_pxtorch)
)
