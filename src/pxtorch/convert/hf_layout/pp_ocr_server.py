"""PP-OCRv5 server det/rec <-> transformers' ``pp_ocrv5_server_det`` / ``pp_ocrv5_server_rec`` (backbone ``hgnet_v2``).

The official ``PaddlePaddle/PP-OCRv5_server_{det,rec}_safetensors`` checkpoints use these names. The maps
are prefix renames (PaddleOCR's module paths, which pxtorch keeps, against transformers' names, as in
PaddleOCR's own pdparams -> safetensors conversion tables); no tensor changes shape or layout: both sides
are PyTorch modules, so Linear weights are ``[out, in]`` on both.

- Backbone: ``stem.stemN.{conv,bn}`` <-> ``embedder.stemN.{convolution,normalization}``;
  ``aggregation_{squeeze,excitation}_conv`` <-> ``aggregation.{0,1}``.
- Det neck: ``ins_conv/inp_conv/pan_head_conv/pan_lat_conv`` <-> ``input_channel_adjustment/
  input_feature_projection/path_aggregation_head/path_aggregation_lateral_convolution``; ``inclN`` <->
  ``intraclass_blocks.{N-1}`` (``v_layer_kx1`` = vertical, ``q_layer_1xk`` = horizontal, ``c_layer_kxk``
  = symmetric; k = 7, 5, 3 = long, mid, short ratio; ``conv1x1_return_channel`` + ``bn`` = ``conv_final``).
- Det head: ``binarize.{conv1,conv_bn1,conv2,conv_bn2,conv3}`` <-> ``binarize_head.{conv_down,conv_up,
  conv_final}``, ``cbn_layer.{last_3,last_1}`` <-> ``local_refinement_module.convolution_{backbone,final}``.
  The DB threshold branch (training only) has no place in transformers and is not written.
- Rec: ``neck.{conv1,conv2,conv3,conv4,conv1x1}`` <-> ``head.encoder.conv_block.{0..4}``, SVTR blocks
  ``norm1/norm2/mixer.qkv/mixer.proj/mlp`` <-> ``layer_norm1/layer_norm2/self_attn.qkv/self_attn.projection/
  mlp``, ``head.fc`` <-> ``head.head``.

LayerNorm eps: transformers' SVTR uses one ``layer_norm_eps`` (1e-6 by default) for every norm, PaddleOCR
1e-5 inside the blocks and 1e-6 after them. :func:`rec_to_pxtorch` builds the PaddleOCR form (the weights
are Paddle's; pass ``layer_norm_eps`` to ``create_model`` to reproduce transformers instead), and
:func:`rec_from_pxtorch` writes the blocks' eps (a model with two eps values then differs in transformers
only in its final LayerNorm, 1e-5 instead of 1e-6).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from . import HFLayout, LayoutError, StateDict, register_layout

__all__ = ["det_from_pxtorch", "det_to_pxtorch", "rec_from_pxtorch", "rec_to_pxtorch"]

DET_MODEL_TYPE = "pp_ocrv5_server_det"
REC_MODEL_TYPE = "pp_ocrv5_server_rec"
_DET_ARCH = "pp_ocrv5_server_det"
_REC_ARCH = "pp_ocrv5_server_rec"

# transformers' IntraclassBlock config: [kernel, stride, padding] per conv (tests/pp_ocrv5_server_det, PaddleX).
_ICB_RATIOS = ((7, "long"), (5, "mid"), (3, "short"))
INTRACLASS_BLOCK_CONFIG: dict[str, list] = {
    "reduce_channel": [1, 1, 0],
    "return_channel": [1, 1, 0],
    **{f"vertical_long_to_small_conv_{r}ratio": [[k, 1], [1, 1], [k // 2, 0]] for k, r in _ICB_RATIOS},
    **{f"horizontal_small_to_long_conv_{r}ratio": [[1, k], [1, 1], [0, k // 2]] for k, r in _ICB_RATIOS},
    **{f"symmetric_conv_long_{r}ratio": [[k, k], [1, 1], [k // 2, k // 2]] for k, r in _ICB_RATIOS},
}
# HGNetV2Config defaults (they are PP-HGNetV2-B4's det numbers) and the rec overrides transformers'
# PPOCRV5ServerRecConfig applies to its backbone: used for fields a Hub config leaves out.
_HGNETV2_DEFAULTS: dict[str, Any] = {
    "stem_channels": [3, 32, 48],
    "stem_strides": [2, 1, 1, 2, 1],
    "stage_in_channels": [48, 128, 512, 1024],
    "stage_mid_channels": [48, 96, 192, 384],
    "stage_out_channels": [128, 512, 1024, 2048],
    "stage_num_blocks": [1, 1, 3, 1],
    "stage_downsample": [False, True, True, True],
    "stage_light_block": [False, False, True, True],
    "stage_kernel_size": [3, 3, 5, 5],
    "stage_numb_of_layers": [6, 6, 6, 6],
    "stage_downsample_strides": [2, 2, 2, 2],
    "use_learnable_affine_block": False,
    "hidden_act": "relu",
}
_HGNETV2_REC_DEFAULTS = {
    **_HGNETV2_DEFAULTS,
    "stage_downsample": [True, True, True, True],
    "stem_strides": [2, 1, 1, 1, 1],
    "stage_downsample_strides": [[2, 1], [1, 2], [2, 1], [2, 1]],
}


class _KeyMap:
    """Ordered prefix renames between pxtorch and transformers keys.

    Each rule is a pair of key prefixes; ``{name}`` in a prefix stands for a decimal index and carries
    over to the other side. The first rule whose prefix matches renames the key; the rest of the key
    (``weight``, ``running_mean`` ...) is kept.
    """

    _FIELD = re.compile(r"\{(\w+)\}")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.rules = [(self._regex(px), px, self._regex(hf), hf) for px, hf in pairs]

    @classmethod
    def _regex(cls, prefix: str) -> re.Pattern[str]:
        parts = cls._FIELD.split(prefix)
        return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[0-9]+)" for i, p in enumerate(parts)))

    def to_hf(self, key: str) -> str | None:
        for px_re, _, _, hf in self.rules:
            m = px_re.match(key)
            if m:
                return hf.format(**m.groupdict()) + key[m.end() :]
        return None

    def to_pxtorch(self, key: str) -> str | None:
        for _, px, hf_re, _ in self.rules:
            m = hf_re.match(key)
            if m:
                return px.format(**m.groupdict()) + key[m.end() :]
        return None


def _conv_bn(
    px: str, hf: str, bn_hf: str = "normalization", conv_px: str = "conv", bn_px: str = "bn"
) -> list[tuple[str, str]]:
    return [(f"{px}.{conv_px}.", f"{hf}.convolution."), (f"{px}.{bn_px}.", f"{hf}.{bn_hf}.")]


def _backbone_rules() -> list[tuple[str, str]]:
    px, hf = "backbone.", "model.backbone."
    rules = []
    for n in ("1", "2a", "2b", "3", "4"):
        rules += _conv_bn(f"{px}stem.stem{n}", f"{hf}embedder.stem{n}")
    stage, hf_stage = f"{px}stages.{{s}}", f"{hf}encoder.stages.{{s}}"
    block, hf_block = f"{stage}.blocks.{{b}}", f"{hf_stage}.blocks.{{b}}"
    rules += _conv_bn(f"{stage}.downsample", f"{hf_stage}.downsample")
    rules += _conv_bn(f"{block}.layers.{{l}}.conv{{c}}", f"{hf_block}.layers.{{l}}.conv{{c}}")  # light layers
    rules += _conv_bn(f"{block}.layers.{{l}}", f"{hf_block}.layers.{{l}}")
    rules += _conv_bn(f"{block}.aggregation_squeeze_conv", f"{hf_block}.aggregation.0")
    rules += _conv_bn(f"{block}.aggregation_excitation_conv", f"{hf_block}.aggregation.1")
    return rules


def _det_rules() -> list[tuple[str, str]]:
    rules = _backbone_rules()
    for px, hf in (
        ("ins_conv", "input_channel_adjustment_convolution"),
        ("inp_conv", "input_feature_projection_convolution"),
        ("pan_head_conv", "path_aggregation_head_convolution"),
        ("pan_lat_conv", "path_aggregation_lateral_convolution"),
    ):
        rules.append((f"neck.{px}.{{i}}.", f"model.neck.{hf}.{{i}}."))
    for n in range(1, 5):
        px, hf = f"neck.incl{n}.", f"model.neck.intraclass_blocks.{n - 1}."
        rules += [
            (f"{px}conv1x1_reduce_channel.", f"{hf}conv_reduce_channel."),
            (f"{px}conv1x1_return_channel.", f"{hf}conv_final.convolution."),
            (f"{px}bn.", f"{hf}conv_final.norm."),
        ]
        for k, r in _ICB_RATIOS:
            rules += [
                (f"{px}v_layer_{k}x1.", f"{hf}vertical_long_to_small_conv_{r}ratio."),
                (f"{px}q_layer_1x{k}.", f"{hf}horizontal_small_to_long_conv_{r}ratio."),
                (f"{px}c_layer_{k}x{k}.", f"{hf}symmetric_conv_long_{r}ratio."),
            ]
    b, hb = "head.binarize.", "head.binarize_head."
    rules += [
        (f"{b}conv1.", f"{hb}conv_down.convolution."),
        (f"{b}conv_bn1.", f"{hb}conv_down.norm."),
        (f"{b}conv2.", f"{hb}conv_up.convolution."),
        (f"{b}conv_bn2.", f"{hb}conv_up.norm."),
        (f"{b}conv3.", f"{hb}conv_final."),
        *_conv_bn("head.cbn_layer.last_3", "head.local_refinement_module.convolution_backbone", bn_hf="norm"),
        ("head.cbn_layer.last_1.", "head.local_refinement_module.convolution_final."),
    ]
    return rules


def _rec_rules() -> list[tuple[str, str]]:
    rules = _backbone_rules()
    for i, name in enumerate(("conv1", "conv2", "conv3", "conv4", "conv1x1")):
        rules += _conv_bn(f"neck.{name}", f"head.encoder.conv_block.{i}", bn_px="norm")
    blk, hblk = "neck.svtr_block.{i}.", "head.encoder.svtr_block.{i}."
    rules += [
        (f"{blk}norm1.", f"{hblk}layer_norm1."),
        (f"{blk}norm2.", f"{hblk}layer_norm2."),
        (f"{blk}mixer.qkv.", f"{hblk}self_attn.qkv."),
        (f"{blk}mixer.proj.", f"{hblk}self_attn.projection."),
        (f"{blk}mlp.fc1.", f"{hblk}mlp.fc1."),
        (f"{blk}mlp.fc2.", f"{hblk}mlp.fc2."),
        ("neck.norm.", "head.encoder.norm."),
        ("head.fc.", "head.head."),
    ]
    return rules


_DET_KEYS = _KeyMap(_det_rules())
_REC_KEYS = _KeyMap(_rec_rules())


def _rename_to_pxtorch(hf_state: StateDict, keys: _KeyMap, model_type: str) -> StateDict:
    out: StateDict = {}
    unknown = []
    for k, v in hf_state.items():
        new = keys.to_pxtorch(k)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    if unknown:
        raise LayoutError(
            f"{model_type}: {len(unknown)} tensor(s) with no pxtorch counterpart, e.g. {unknown[:5]} "
            "(expected the ...ForObjectDetection / ...ForTextRecognition checkpoint of the released architecture)"
        )
    for k in [k for k in out if k.endswith(".running_mean")]:  # transformers may drop the BN step counters
        out.setdefault(k.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out


def _rename_to_hf(model: nn.Module, keys: _KeyMap, skip: tuple[str, ...] = ()) -> StateDict:
    out: StateDict = {}
    unknown = []
    for k, v in model.state_dict().items():
        if k.startswith(skip):
            continue
        new = keys.to_hf(k)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v.detach().clone().contiguous()
    if unknown:
        raise LayoutError(f"{model.architecture}: no transformers name for {unknown[:5]}")
    return out


def _pair(s: Any) -> list[int]:
    return [int(s), int(s)] if isinstance(s, int) else [int(v) for v in s]


def _normalised(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg[k] for k in _HGNETV2_DEFAULTS}
    out["stage_downsample_strides"] = [_pair(s) for s in out["stage_downsample_strides"]]
    out["stem_strides"] = [int(s) for s in out["stem_strides"]]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _hgnetv2_config(stem_channels: tuple[int, ...], stages: tuple[tuple, ...], det: bool) -> dict[str, Any]:
    """transformers' ``hgnet_v2`` config for a PP-HGNetV2 stem/stage table (see :mod:`pxtorch.models.hgnet_v2`)."""
    cfg = {
        "model_type": "hgnet_v2",
        "stem_channels": list(stem_channels),
        "stem_strides": [2, 1, 1, 2 if det else 1, 1],
        "stage_in_channels": [s[0] for s in stages],
        "stage_mid_channels": [s[1] for s in stages],
        "stage_out_channels": [s[2] for s in stages],
        "stage_num_blocks": [s[3] for s in stages],
        "stage_downsample": [s[4] for s in stages],
        "stage_light_block": [s[5] for s in stages],
        "stage_kernel_size": [s[6] for s in stages],
        "stage_numb_of_layers": [s[7] for s in stages],
        "stage_downsample_strides": [s[8] if isinstance(s[8], int) else list(s[8]) for s in stages],
        "use_learnable_affine_block": False,
        "hidden_act": "relu",
        "out_features": [f"stage{i + 1}" for i in range(len(stages))],
    }
    cfg["depths"] = cfg["stage_num_blocks"]  # transformers only takes the stage count from these two
    cfg["hidden_sizes"] = cfg["stage_out_channels"]
    return cfg


def _backbone_config(backbone: nn.Module) -> dict[str, Any]:
    from ...models.hgnet_v2 import PPHGNetV2

    if not isinstance(backbone, PPHGNetV2):
        raise LayoutError(f"transformers' hgnet_v2 cannot hold a {type(backbone).__name__} backbone")
    return _hgnetv2_config(backbone.stem_channels, backbone.stage_config, backbone.det)


def _check_backbone(hf_config: dict[str, Any], det: bool, model_type: str) -> None:
    """Raise :class:`LayoutError` unless the Hub backbone is pxtorch's PP-HGNetV2-B4 (det or rec strides)."""
    from ...models.hgnet_v2 import HGNETV2_B4_DET, HGNETV2_B4_REC, HGNETV2_B4_STEM

    given = {**(_HGNETV2_DEFAULTS if det else _HGNETV2_REC_DEFAULTS), **(hf_config.get("backbone_config") or {})}
    if given.get("model_type", "hgnet_v2") != "hgnet_v2":
        raise LayoutError(f"{model_type}: backbone '{given['model_type']}' is not hgnet_v2")
    expected = _hgnetv2_config(HGNETV2_B4_STEM, HGNETV2_B4_DET if det else HGNETV2_B4_REC, det)
    want = _normalised(expected)
    diffs = [f"{k}={v!r} (pxtorch: {want[k]!r})" for k, v in _normalised(given).items() if v != want[k]]
    out_features = list(given.get("out_features") or ["stage4"])
    if det and out_features != expected["out_features"]:
        diffs.append(f"out_features={out_features!r} (pxtorch: {expected['out_features']!r})")
    if not det and out_features[-1] != "stage4":
        diffs.append(f"out_features={out_features!r} (the recogniser reads stage4)")
    if diffs:
        raise LayoutError(f"{model_type}: the backbone is not PP-HGNetV2-B4: " + "; ".join(diffs))


def _expect(hf_config: dict[str, Any], model_type: str, **expected: Any) -> None:
    """Raise :class:`LayoutError` when a given config value differs from what pxtorch builds (absent = default)."""
    diffs = [
        f"{k}={hf_config[k]!r} (pxtorch: {v!r})"
        for k, v in expected.items()
        if k in hf_config and _nested_lists(hf_config[k]) != _nested_lists(v)
    ]
    if diffs:
        raise LayoutError(f"{model_type}: a configuration pxtorch does not build: " + "; ".join(diffs))


def det_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers ``pp_ocrv5_server_det`` -> (``"pp_ocrv5_server_det"``, ``{}``, pxtorch state)."""
    _check_backbone(hf_config, det=True, model_type=DET_MODEL_TYPE)
    icb = hf_config.get("intraclass_block_config")
    if icb is not None and _nested_lists(icb) != INTRACLASS_BLOCK_CONFIG:
        raise LayoutError(f"{DET_MODEL_TYPE}: intraclass_block_config {icb!r} differs from PaddleOCR's IntraCLBlock")
    _expect(
        hf_config,
        DET_MODEL_TYPE,
        neck_out_channels=256,
        reduce_factor=2,
        intraclass_block_number=4,
        scale_factor=2,
        scale_factor_list=[1, 2, 4, 8],
        kernel_list=[3, 2, 2],
        hidden_act="relu",
        interpolate_mode="nearest",
    )
    return _DET_ARCH, {}, _rename_to_pxtorch(hf_state, _DET_KEYS, DET_MODEL_TYPE)


def det_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``pp_ocrv5_server_det`` -> (transformers config dict, state dict); the threshold branch is dropped."""
    if getattr(model, "architecture", None) != _DET_ARCH:
        raise LayoutError(f"{DET_MODEL_TYPE} holds {_DET_ARCH} only, not {getattr(model, 'architecture', model)!r}")
    neck, head = model.neck, model.head
    if neck.out_channels != 256 or head.cbn_layer.last_1.in_channels != neck.out_channels // 4:
        raise LayoutError(f"{DET_MODEL_TYPE}: transformers builds a 256-channel neck with the 'large' local module")
    config = {
        "model_type": DET_MODEL_TYPE,
        "architectures": ["PPOCRV5ServerDetForObjectDetection"],
        "backbone_config": _backbone_config(model.backbone),
        "interpolate_mode": "nearest",
        "neck_out_channels": neck.out_channels,
        "reduce_factor": 2,
        "intraclass_block_number": 4,
        "intraclass_block_config": _nested_lists(INTRACLASS_BLOCK_CONFIG),
        "scale_factor": 2,
        "scale_factor_list": [1, 2, 4, 8],
        "hidden_act": "relu",
        "kernel_list": [3, 2, 2],
    }
    return config, _rename_to_hf(model, _DET_KEYS, skip=("head.thresh.",))


def rec_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers ``pp_ocrv5_server_rec`` -> (``"pp_ocrv5_server_rec"``, kwargs, pxtorch state).

    kwargs carry the sizes that differ from the registry default (``num_classes``, SVTR ``dims``/``depth``/
    ``kernel_size``); the LayerNorm eps stays PaddleOCR's (see the module docstring).
    """
    _check_backbone(hf_config, det=False, model_type=REC_MODEL_TYPE)
    _expect(hf_config, REC_MODEL_TYPE, mlp_ratio=2.0, num_attention_heads=8, qkv_bias=True, hidden_act="silu")
    kwargs: dict[str, Any] = {}
    num_classes = int(hf_config.get("head_out_channels", 18385))
    if num_classes != 18385:
        kwargs["num_classes"] = num_classes
    hidden = int(hf_config.get("hidden_size", 120))
    if hidden != 120:
        kwargs.update(dims=hidden, hidden_dims=hidden)
    if int(hf_config.get("depth", 2)) != 2:
        kwargs["depth"] = int(hf_config["depth"])
    kernel = list(hf_config.get("conv_kernel_size") or [1, 3])
    if kernel != [1, 3]:
        kwargs["kernel_size"] = kernel
    return _REC_ARCH, kwargs, _rename_to_pxtorch(hf_state, _REC_KEYS, REC_MODEL_TYPE)


def rec_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``pp_ocrv5_server_rec`` -> (transformers config dict, state dict)."""
    if getattr(model, "architecture", None) != _REC_ARCH:
        raise LayoutError(f"{REC_MODEL_TYPE} holds {_REC_ARCH} only, not {getattr(model, 'architecture', model)!r}")
    neck = model.neck
    blocks = list(neck.svtr_block)
    hidden = neck.norm.normalized_shape[0]
    if neck.out_channels != hidden:
        raise LayoutError(
            f"{REC_MODEL_TYPE}: transformers' SVTR neck needs dims == hidden_dims ({neck.out_channels} != {hidden})"
        )
    if not blocks:
        raise LayoutError(f"{REC_MODEL_TYPE}: transformers' SVTR neck has at least one block")
    mixer = blocks[0].mixer
    config = {
        "model_type": REC_MODEL_TYPE,
        "architectures": ["PPOCRV5ServerRecForTextRecognition"],
        "backbone_config": _backbone_config(model.backbone),
        "hidden_act": "silu",
        "hidden_size": hidden,
        "mlp_ratio": blocks[0].mlp.fc1.out_features / hidden,
        "depth": len(blocks),
        "head_out_channels": model.head.fc.out_features,
        "conv_kernel_size": list(neck.conv1.conv.kernel_size),
        "qkv_bias": mixer.qkv.bias is not None,
        "num_attention_heads": mixer.num_heads,
        "attention_dropout": 0.0,
        "layer_norm_eps": float(blocks[0].norm1.eps),
    }
    return config, _rename_to_hf(model, _REC_KEYS)


def _nested_lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nested_lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nested_lists(v) for v in obj]
    return obj


register_layout(HFLayout(DET_MODEL_TYPE, (_DET_ARCH,), det_to_pxtorch, det_from_pxtorch))
register_layout(HFLayout(REC_MODEL_TYPE, (_REC_ARCH,), rec_to_pxtorch, rec_from_pxtorch))
