"""transformers' PP-OCRv6 classes <-> pxtorch: ``pp_ocrv6_small_det``, ``pp_ocrv6_small_rec``, ``pp_ocrv6_tiny_rec``.

Key names and shapes follow transformers 5.x (``PPOCRV6SmallDetForObjectDetection``,
``PPOCRV6SmallRecForTextRecognition``, ``PPOCRV6TinyRecForTextRecognition`` on a ``pp_lcnet_v4``
backbone). transformers keeps the BatchNorms but stores the re-parameterisable depthwise convs fused
(``token_conv`` of stride-1 blocks, the neck's ``depthwise_convolution``), so its state dict maps onto
pxtorch's training form with those blocks expanded function-preservingly
(:func:`pxtorch.convert.rapid_doc.map_hf_v6_state`). The other direction takes either pxtorch form;
conv+BN pairs pxtorch has folded are written as the conv plus an identity BatchNorm carrying the bias.

The ``pp_ocrv6_small_det`` type also expresses the tiny detector (other backbone/neck sizes) and
``pp_ocrv6_small_rec`` the medium recogniser; the config's sizes say which pxtorch entry a checkpoint is
(a ``pxtorch_architecture`` key, when present, must agree). transformers has one LayerNorm eps for the
whole SVTR neck (default 1e-6) where PaddleOCR uses 1e-5 inside the blocks and 1e-6 after them; pxtorch
keeps Paddle's values and writes the block value, as the PP-OCRv5 layout does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...models.pp_lcnet_v4 import DET_STAGES, NET_CONFIG_DET, NET_CONFIG_REC, REC_STAGES
from ..rapid_doc import map_hf_v6_state
from . import HFLayout, LayoutError, register_layout

StateDict = dict[str, torch.Tensor]

_BACKBONE_ARCH = {  # pxtorch architecture -> (PP-LCNetV4 size, det)
    "pp_ocrv6_tiny_det": ("tiny", True),
    "pp_ocrv6_small_det": ("small", True),
    "pp_ocrv6_tiny_rec": ("tiny", False),
    "pp_ocrv6_small_rec": ("small", False),
    "pp_ocrv6_medium_rec": ("medium", False),
}


def _lists(obj: Any) -> Any:
    """Tuples -> lists, recursively (config.json form)."""
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


def _backbone_config(arch: str) -> dict[str, Any]:
    size, det = _BACKBONE_ARCH[arch]
    table = NET_CONFIG_DET[size] if det else NET_CONFIG_REC[size]
    stages = [table[s] for s in (DET_STAGES if det else REC_STAGES) if table[s]]
    simple = not det and table["stem_type"] == "simple"
    return {
        "model_type": "pp_lcnet_v4",
        "stem_channels": [3, *table["stem"]],
        "stem_type": "small" if simple else "large",
        "block_configs": _lists(stages),
        "out_features": [f"stage{i}" for i in range(1, 5)] if det else ["stage4"],
        "hidden_act": "relu",
        "reduction": 4,
        "stem_strides": [2, 1, 1, 2, 1],
    }


def _hf_config(arch: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """The complete transformers config of pxtorch ``arch`` built with ``model_args`` (over ``model_cfgs``)."""
    from ...models.pp_ocrv6 import model_cfgs

    args = {**model_cfgs[arch], **{k: v for k, v in model_args.items() if k in model_cfgs[arch]}}
    backbone = _backbone_config(arch)
    if arch.endswith("_det"):
        return {
            "model_type": "pp_ocrv6_small_det",
            "architectures": ["PPOCRV6SmallDetForObjectDetection"],
            "backbone_config": backbone,
            "reduction": 4,
            "neck_out_channels": args["neck_channels"],
            "interpolate_mode": "nearest",
            "kernel_list": [3, 2, 2],
            "layer_list_out_channels": [s[-1][2] for s in backbone["block_configs"]],
            "dilated_kernel_size": args["dilated_kernel_size"],
        }
    if arch == "pp_ocrv6_tiny_rec":
        return {
            "model_type": "pp_ocrv6_tiny_rec",
            "architectures": ["PPOCRV6TinyRecForTextRecognition"],
            "backbone_config": backbone,
            "hidden_size": args["mid_channels"],
            "head_out_channels": args["num_classes"],
        }
    return {
        "model_type": "pp_ocrv6_small_rec",
        "architectures": ["PPOCRV6SmallRecForTextRecognition"],
        "backbone_config": backbone,
        "hidden_act": "silu",
        "hidden_size": args["dims"],
        "mlp_ratio": args["mlp_ratio"],
        "depth": args["depth"],
        "head_out_channels": args["num_classes"],
        "conv_kernel_size": [1, args.get("local_kernel", 7)],
        "qkv_bias": True,
        "num_attention_heads": 8,
        "attention_dropout": 0.0,
        "layer_norm_eps": 1e-5,  # Paddle's value in the SVTR blocks (transformers has one eps for all norms)
    }


# Fields that fix the architecture (the rest of a config.json is transformers bookkeeping).
_ARCH_FIELDS = {
    "pp_ocrv6_small_det": ("neck_out_channels", "kernel_list", "layer_list_out_channels", "dilated_kernel_size"),
    "pp_ocrv6_small_rec": ("hidden_size", "mlp_ratio", "depth", "conv_kernel_size", "num_attention_heads"),
    "pp_ocrv6_tiny_rec": ("hidden_size",),
}
_BACKBONE_FIELDS = ("stem_channels", "stem_type", "block_configs")


def _differences(arch: str, hf_config: dict[str, Any]) -> list[str]:
    expected = _hf_config(arch, {})
    diffs = [
        f"{f}: {hf_config.get(f)!r} (pxtorch {arch}: {expected[f]!r})"
        for f in _ARCH_FIELDS[expected["model_type"]]
        if f in hf_config and _lists(hf_config[f]) != expected[f]
    ]
    backbone = hf_config.get("backbone_config") or {}
    diffs += [
        f"backbone_config.{f}: {backbone.get(f)!r} (pxtorch {arch}: {expected['backbone_config'][f]!r})"
        for f in _BACKBONE_FIELDS
        if _lists(backbone.get(f)) != expected["backbone_config"][f]
    ]
    return diffs


def _to_pxtorch(model_type: str, archs: tuple[str, ...]):
    def to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
        from ..._factory import create_model
        from ..._registry import get_pretrained_cfg

        wanted = hf_config.get("pxtorch_architecture")
        if wanted is not None and wanted not in archs:
            raise LayoutError(f"model_type '{model_type}' holds {', '.join(archs)}, not '{wanted}'")
        found = {arch: _differences(arch, hf_config) for arch in ((wanted,) if wanted else archs)}
        arch = next((a for a, d in found.items() if not d), None)
        if arch is None:
            detail = "; ".join(f"{a}: {', '.join(d)}" for a, d in found.items())
            raise LayoutError(f"this {model_type} config matches no pxtorch architecture ({detail})")
        kwargs: dict[str, Any] = {"deploy": False}
        classes = hf_config.get("head_out_channels")
        if classes is not None and classes != get_pretrained_cfg(arch).num_classes:
            kwargs["num_classes"] = int(classes)
        model = create_model(arch, **kwargs)
        return arch, kwargs, map_hf_v6_state(hf_state, model, f"{model_type} state dict")

    return to_pxtorch


# -- pxtorch -> transformers ------------------------------------------------------------------------


def _bn(out: StateDict, prefix: str, bn: nn.BatchNorm2d | None, channels: int, bias: torch.Tensor | None) -> None:
    """``prefix.{weight,bias,running_mean,running_var,num_batches_tracked}``: ``bn``'s, or the identity
    BatchNorm adding ``bias`` (gamma 1, mean 0, var 1 - eps) when pxtorch has folded it away."""
    if bn is not None:
        for name, t in bn.state_dict().items():
            out[f"{prefix}.{name}"] = t
        return
    ones = torch.ones(channels)
    out[f"{prefix}.weight"] = ones
    out[f"{prefix}.bias"] = torch.zeros(channels) if bias is None else bias
    out[f"{prefix}.running_mean"] = torch.zeros(channels)
    out[f"{prefix}.running_var"] = ones - 1e-5
    out[f"{prefix}.num_batches_tracked"] = torch.tensor(0)


def _conv_bn(out: StateDict, prefix: str, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, norm: str) -> None:
    """A transformers conv (no bias) + BatchNorm pair from pxtorch's conv (+ BatchNorm unless folded)."""
    out[f"{prefix}.convolution.weight"] = conv.weight
    _bn(out, f"{prefix}.{norm}", bn, conv.out_channels, conv.bias)


def _backbone(out: StateDict, backbone: nn.Module) -> None:
    pre = "model.backbone.encoder"
    stem = backbone.stem if backbone.det else backbone.conv1
    if isinstance(stem, nn.Sequential):  # tiny rec: conv -> GELU -> conv
        units = {"conv1": stem[0], "conv2": stem[2]}
    else:
        units = {n: getattr(stem, n) for n in ("stem1", "stem2a", "stem2b", "stem3", "stem4")}
    for name, unit in units.items():
        _conv_bn(out, f"{pre}.convolution.{name}", unit.conv, unit.bn, "normalization")
    stages = [s for s in backbone.stage_names if len(getattr(backbone, s))]
    for s, stage_name in enumerate(stages):
        for i, block in enumerate(getattr(backbone, stage_name)):
            p = f"{pre}.blocks.{s}.blocks.{i}"
            mixer = block.token_mixer
            if hasattr(mixer, "rep_dw"):
                out[f"{p}.token_conv.weight"], out[f"{p}.token_conv.bias"] = mixer.rep_dw.fused_kernel_bias()
            else:
                _conv_bn(out, f"{p}.token_conv", mixer.dw_conv.conv, mixer.dw_conv.bn, "normalization")
            if hasattr(mixer, "se"):
                for j, conv in ((0, mixer.se.conv1), (2, mixer.se.conv2)):
                    out[f"{p}.token_squeeze_excitation.convolutions.{j}.weight"] = conv.weight
                    out[f"{p}.token_squeeze_excitation.convolutions.{j}.bias"] = conv.bias
            for hf_name, unit in (
                ("channel_conv1", block.channel_mixer.expand),
                ("channel_conv2", block.channel_mixer.compress),
            ):
                _conv_bn(out, f"{p}.{hf_name}", unit.conv, unit.bn, "normalization")


def _det(model: nn.Module) -> StateDict:
    out: StateDict = {}
    _backbone(out, model.backbone)
    neck = model.neck
    for i, ins in enumerate(neck.ins_conv):
        p = f"model.neck.insert_conv.{i}"
        out[f"{p}.in_conv.weight"] = ins.in_conv.weight
        for c in ("conv1", "conv2"):
            for t in ("weight", "bias"):
                out[f"{p}.squeeze_excitation_block.{c}.{t}"] = getattr(getattr(ins.se_block, c), t)
    for i, (dw, pw, se) in enumerate(zip(neck.inp_conv_dw, neck.inp_conv_pw, neck.inp_conv_se, strict=True)):
        p = f"model.neck.input_conv.{i}"
        out[f"{p}.depthwise_convolution.weight"], out[f"{p}.depthwise_convolution.bias"] = dw.fused_kernel_bias()
        out[f"{p}.pointwise_convolution.weight"] = pw.weight
        for c in ("conv1", "conv2"):
            for t in ("weight", "bias"):
                out[f"{p}.squeeze_excitation_module.{c}.{t}"] = getattr(getattr(se, c), t)
    head = model.head.binarize
    folded = not hasattr(head, "conv_bn1")
    out["head.conv_down.convolution.weight"] = head.conv1.weight
    _bn(out, "head.conv_down.norm", None if folded else head.conv_bn1, head.conv1.out_channels, head.conv1.bias)
    out["head.conv_up.convolution.weight"] = head.conv2.weight
    out["head.conv_up.convolution.bias"] = head.conv2.bias
    _bn(out, "head.conv_up.norm", None if folded else head.conv_bn2, head.conv2.out_channels, None)
    out["head.conv_final.weight"] = head.conv3.weight
    out["head.conv_final.bias"] = head.conv3.bias
    return out


def _small_rec(model: nn.Module) -> StateDict:
    out: StateDict = {}
    _backbone(out, model.backbone)
    neck, p = model.neck, "head.encoder"
    for i, unit in enumerate((neck.skip_conv, neck.conv_reduce)):
        _conv_bn(out, f"{p}.conv_block.{i}", unit.conv, unit.norm, "normalization")
    _conv_bn(out, f"{p}.conv_block.2", neck.local_conv[0], neck.local_conv[1], "normalization")
    for i, blk in enumerate(neck.svtr_block):
        q = f"{p}.svtr_block.{i}"
        pairs = {
            "layer_norm1": blk.norm1,
            "layer_norm2": blk.norm2,
            "self_attn.qkv": blk.mixer.qkv,
            "self_attn.projection": blk.mixer.proj,
            "mlp.fc1": blk.mlp.fc1,
            "mlp.fc2": blk.mlp.fc2,
        }
        for hf_name, module in pairs.items():
            out[f"{q}.{hf_name}.weight"], out[f"{q}.{hf_name}.bias"] = module.weight, module.bias
    out[f"{p}.norm.weight"], out[f"{p}.norm.bias"] = neck.norm.weight, neck.norm.bias
    out["head.head.weight"], out["head.head.bias"] = model.head.fc.weight, model.head.fc.bias
    return out


def _tiny_rec(model: nn.Module) -> StateDict:
    out: StateDict = {}
    _backbone(out, model.backbone)
    guide = model.head.guide_layer
    for hf_conv, hf_norm, conv, norm in (
        ("conv1", "norm1", guide[0], guide[1]),
        ("conv2", "norm2", guide[3], guide[4]),
    ):
        out[f"head.{hf_conv}.weight"] = conv.weight.squeeze(2)  # [C, C/g, 1, k] -> Conv1d [C, C/g, k]
        _bn(out, f"head.{hf_norm}", norm, conv.out_channels, None)
    for fc in ("fc1", "fc2"):
        module = getattr(model.head, fc)
        out[f"head.{fc}.weight"], out[f"head.{fc}.bias"] = module.weight, module.bias
    return out


def _from_pxtorch(writer):
    def from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
        arch = getattr(model, "architecture", None)
        if arch not in _BACKBONE_ARCH:
            raise LayoutError(f"{arch!r} is not a PP-OCRv6 model this layout writes")
        with torch.no_grad():
            state = {k: v.detach().to("cpu").contiguous().clone() for k, v in writer(model).items()}
        args = dict(model.model_args)
        fc = getattr(model.head, "fc2", None) or getattr(model.head, "fc", None)
        if fc is not None:  # recognisers: the head's size, whatever charset it was built for
            args["num_classes"] = fc.out_features
        return _hf_config(arch, args), state

    return from_pxtorch


register_layout(
    HFLayout(
        model_type="pp_ocrv6_small_det",
        architectures=("pp_ocrv6_small_det", "pp_ocrv6_tiny_det"),
        to_pxtorch=_to_pxtorch("pp_ocrv6_small_det", ("pp_ocrv6_small_det", "pp_ocrv6_tiny_det")),
        from_pxtorch=_from_pxtorch(_det),
    )
)
register_layout(
    HFLayout(
        model_type="pp_ocrv6_small_rec",
        architectures=("pp_ocrv6_small_rec", "pp_ocrv6_medium_rec"),
        to_pxtorch=_to_pxtorch("pp_ocrv6_small_rec", ("pp_ocrv6_small_rec", "pp_ocrv6_medium_rec")),
        from_pxtorch=_from_pxtorch(_small_rec),
    )
)
register_layout(
    HFLayout(
        model_type="pp_ocrv6_tiny_rec",
        architectures=("pp_ocrv6_tiny_rec",),
        to_pxtorch=_to_pxtorch("pp_ocrv6_tiny_rec", ("pp_ocrv6_tiny_rec",)),
        from_pxtorch=_from_pxtorch(_tiny_rec),
    )
)
