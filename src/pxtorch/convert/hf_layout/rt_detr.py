"""RT-DETR-L (PP-DocLayout-L/plus-L, PP-DocBlockLayout, table-cell detectors) <-> transformers' ``rt_detr``.

PaddlePaddle's ``PaddlePaddle/<Model>_safetensors`` checkpoints of these models are transformers'
``RTDetrForObjectDetection`` (``model_type: rt_detr``) with an ``hgnet_v2`` backbone (PaddleX's
``RTDETRConfig``/``DEFAULT_BACKBONE_CONFIG`` = PP-HGNetV2-L). The map is prefix renames; no tensor changes
shape or layout (both sides are PyTorch modules):

- backbone: ``backbone.*`` <-> ``model.backbone.model.*`` with the ``hgnet_v2`` names of
  :mod:`.pp_ocr_server` (``embedder.stemN``, ``encoder.stages``, ``convolution``/``normalization``,
  ``aggregation.{0,1}``); transformers freezes these BatchNorms (no ``num_batches_tracked``);
- encoder: ``neck.input_proj.{i}.{conv,norm}`` <-> ``model.encoder_input_proj.{i}.{0,1}``; the AIFI layer
  ``neck.encoder.{i}.layers.{j}.{self_attn.*_proj, norm1, linear1, linear2, norm2}`` <->
  ``model.encoder.aifi.{i}.layers.{j}.{self_attn.*_proj (out_proj = o_proj), self_attn_layer_norm, mlp.fc1,
  mlp.fc2, final_layer_norm}``; the CCFM convs keep their names (``lateral_convs``, ``fpn_blocks``,
  ``downsample_convs``, ``pan_blocks``);
- decoder: ``transformer.input_proj.{i}`` <-> ``model.decoder_input_proj.{i}.{0,1}``; ``enc_output``,
  ``enc_score_head``, ``enc_bbox_head``, ``denoising_class_embed`` under ``model.``; layers ``self_attn``/
  ``norm1``/``cross_attn``/``norm2``/``linear1``/``linear2``/``norm3`` <-> ``self_attn``/
  ``self_attn_layer_norm``/``encoder_attn``/``encoder_attn_layer_norm``/``mlp.fc1``/``mlp.fc2``/
  ``final_layer_norm``; ``query_pos_head`` <-> ``model.decoder.query_pos_head``; ``dec_score_head.{i}`` /
  ``dec_bbox_head.{i}`` <-> ``model.decoder.class_embed.{i}`` / ``model.decoder.bbox_embed.{i}``.

Checkpoints written by transformers 4.x name ``o_proj`` ``out_proj``, the FFNs ``fc1``/``fc2`` (no ``mlp.``)
and the AIFI list ``encoder.encoder``; they are renamed first, as transformers' own conversion mapping does.

One ``model_type`` serves five pxtorch architectures: ``pxtorch_architecture`` (set by ``from_pretrained``'s
``model_name``) picks one; otherwise the label set does (23 classes = PP-DocLayout-L, 20 = plus-L,
``Region`` = PP-DocBlockLayout, ``cell`` = a table-cell detector, wireless when the config's
``_name_or_path`` says so).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch
from torch import nn

from . import HFLayout, LayoutError, StateDict, register_layout
from .pp_ocr_server import _HGNETV2_DEFAULTS, _conv_bn, _hgnetv2_config, _KeyMap, _normalised, _rename_to_pxtorch

__all__ = ["rt_detr_from_pxtorch", "rt_detr_to_pxtorch"]

MODEL_TYPE = "rt_detr"
ARCHITECTURES = (
    "pp_doclayout_l",
    "pp_doclayout_plus_l",
    "pp_docblocklayout",
    "rt_detr_l_wired_table_cell_det",
    "rt_detr_l_wireless_table_cell_det",
)
_log = logging.getLogger(__name__)
# transformers' conversion_mapping["rt_detr"] (legacy checkpoint names -> current names)
_LEGACY = (
    (re.compile(r"out_proj"), "o_proj"),
    (re.compile(r"layers\.(\d+)\.fc1"), r"layers.\1.mlp.fc1"),
    (re.compile(r"layers\.(\d+)\.fc2"), r"layers.\1.mlp.fc2"),
    (re.compile(r"encoder\.encoder\.(\d+)\.layers"), r"encoder.aifi.\1.layers"),
)


def _backbone_rules() -> list[tuple[str, str]]:
    px, hf = "backbone.", "model.backbone.model."
    rules = []
    for n in ("1", "2a", "2b", "3", "4"):
        rules += _conv_bn(f"{px}stem.stem{n}", f"{hf}embedder.stem{n}")
    stage, hf_stage = f"{px}stages.{{s}}", f"{hf}encoder.stages.{{s}}"
    block, hf_block = f"{stage}.blocks.{{b}}", f"{hf_stage}.blocks.{{b}}"
    rules += _conv_bn(f"{stage}.downsample", f"{hf_stage}.downsample")
    rules += _conv_bn(f"{block}.layers.{{l}}.conv{{c}}", f"{hf_block}.layers.{{l}}.conv{{c}}")
    rules += _conv_bn(f"{block}.layers.{{l}}", f"{hf_block}.layers.{{l}}")
    rules += _conv_bn(f"{block}.aggregation_squeeze_conv", f"{hf_block}.aggregation.0")
    rules += _conv_bn(f"{block}.aggregation_excitation_conv", f"{hf_block}.aggregation.1")
    return rules


def _attention(px: str, hf: str) -> list[tuple[str, str]]:
    return [(f"{px}.{p}_proj.", f"{hf}.{p}_proj.") for p in ("q", "k", "v")] + [(f"{px}.out_proj.", f"{hf}.o_proj.")]


def _rules() -> list[tuple[str, str]]:
    rules = _backbone_rules()
    rules += [
        ("neck.input_proj.{i}.conv.", "model.encoder_input_proj.{i}.0."),
        ("neck.input_proj.{i}.norm.", "model.encoder_input_proj.{i}.1."),
    ]
    aifi, hf_aifi = "neck.encoder.{i}.layers.{j}", "model.encoder.aifi.{i}.layers.{j}"
    rules += _attention(f"{aifi}.self_attn", f"{hf_aifi}.self_attn")
    rules += [
        (f"{aifi}.norm1.", f"{hf_aifi}.self_attn_layer_norm."),
        (f"{aifi}.linear1.", f"{hf_aifi}.mlp.fc1."),
        (f"{aifi}.linear2.", f"{hf_aifi}.mlp.fc2."),
        (f"{aifi}.norm2.", f"{hf_aifi}.final_layer_norm."),
    ]
    for name in ("lateral_convs", "fpn_blocks", "downsample_convs", "pan_blocks"):
        rules.append((f"neck.{name}.", f"model.encoder.{name}."))
    t = "transformer."
    rules += [
        (f"{t}input_proj.{{i}}.conv.", "model.decoder_input_proj.{i}.0."),
        (f"{t}input_proj.{{i}}.norm.", "model.decoder_input_proj.{i}.1."),
        (f"{t}denoising_class_embed.", "model.denoising_class_embed."),
        (f"{t}enc_output.", "model.enc_output."),
        (f"{t}enc_score_head.", "model.enc_score_head."),
        (f"{t}enc_bbox_head.", "model.enc_bbox_head."),
        (f"{t}query_pos_head.", "model.decoder.query_pos_head."),
        (f"{t}dec_score_head.", "model.decoder.class_embed."),
        (f"{t}dec_bbox_head.", "model.decoder.bbox_embed."),
    ]
    layer, hf_layer = f"{t}decoder.layers.{{i}}", "model.decoder.layers.{i}"
    rules += _attention(f"{layer}.self_attn", f"{hf_layer}.self_attn")
    rules += [
        (f"{layer}.norm1.", f"{hf_layer}.self_attn_layer_norm."),
        (f"{layer}.cross_attn.", f"{hf_layer}.encoder_attn."),
        (f"{layer}.norm2.", f"{hf_layer}.encoder_attn_layer_norm."),
        (f"{layer}.linear1.", f"{hf_layer}.mlp.fc1."),
        (f"{layer}.linear2.", f"{hf_layer}.mlp.fc2."),
        (f"{layer}.norm3.", f"{hf_layer}.final_layer_norm."),
    ]
    return rules


_KEYS = _KeyMap(_rules())

# RTDetrConfig values pxtorch builds (a given config must match; absent = transformers' default)
_FIXED: dict[str, Any] = {
    "encoder_hidden_dim": 256,
    "encoder_in_channels": [512, 1024, 2048],
    "feat_strides": [8, 16, 32],
    "encoder_layers": 1,
    "encoder_ffn_dim": 1024,
    "encoder_attention_heads": 8,
    "encode_proj_layers": [2],
    "positional_encoding_temperature": 10000,
    "encoder_activation_function": "gelu",
    "activation_function": "silu",
    "normalize_before": False,
    "hidden_expansion": 1.0,
    "d_model": 256,
    "decoder_in_channels": [256, 256, 256],
    "decoder_ffn_dim": 1024,
    "num_feature_levels": 3,
    "decoder_n_points": 4,
    "decoder_attention_heads": 8,
    "decoder_activation_function": "relu",
    "learn_initial_query": False,
    "layer_norm_eps": 1e-5,
    "batch_norm_eps": 1e-5,
}


def _legacy_renamed(key: str) -> str:
    for pattern, repl in _LEGACY:
        key = pattern.sub(repl, key)
    return key


def _check_config(hf_config: dict[str, Any]) -> None:
    backbone = dict(hf_config.get("backbone_config") or {})
    if backbone.get("model_type", "hgnet_v2") != "hgnet_v2":
        raise LayoutError(
            f"{MODEL_TYPE}: backbone '{backbone['model_type']}' is not hgnet_v2 (pxtorch builds PP-HGNetV2-L)"
        )
    given = _normalised({**_HGNETV2_DEFAULTS, **{k: v for k, v in backbone.items() if k in _HGNETV2_DEFAULTS}})
    want = _normalised(_HGNETV2_DEFAULTS)
    diffs = [f"backbone {k}={v!r} (pxtorch: {want[k]!r})" for k, v in given.items() if v != want[k]]
    out_features = list(backbone.get("out_features") or ["stage2", "stage3", "stage4"])
    if out_features != ["stage2", "stage3", "stage4"]:
        diffs.append(f"backbone out_features={out_features!r} (pxtorch: stage2-4)")
    for k, v in _FIXED.items():
        if k in hf_config and hf_config[k] is not None and _lists(hf_config[k]) != v:
            diffs.append(f"{k}={hf_config[k]!r} (pxtorch: {v!r})")
    if diffs:
        raise LayoutError(f"{MODEL_TYPE}: a configuration pxtorch does not build: " + "; ".join(diffs))
    if hf_config.get("eval_size") is not None:
        _log.warning(
            "%s: eval_size=%r: transformers then drops the AIFI position embedding in eval mode; pxtorch always "
            "adds it (as PaddleDetection does)",
            MODEL_TYPE,
            hf_config["eval_size"],
        )


def _labels(hf_config: dict[str, Any]) -> list[str]:
    id2label = hf_config.get("id2label")
    if id2label:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    return [f"LABEL_{i}" for i in range(int(hf_config.get("num_labels", 0)))]


def _pick_architecture(hf_config: dict[str, Any], num_classes: int) -> str:
    arch = hf_config.get("pxtorch_architecture")
    if arch:
        if arch not in ARCHITECTURES:
            raise LayoutError(f"{MODEL_TYPE} holds {', '.join(ARCHITECTURES)}, not {arch!r}")
        return arch
    labels = [s.lower() for s in _labels(hf_config)]
    if num_classes == 23:
        return "pp_doclayout_l"
    if num_classes == 20:
        return "pp_doclayout_plus_l"
    if labels == ["region"]:
        return "pp_docblocklayout"
    if labels == ["cell"]:
        wireless = "wireless" in str(hf_config.get("_name_or_path", "")).lower()
        return "rt_detr_l_wireless_table_cell_det" if wireless else "rt_detr_l_wired_table_cell_det"
    raise LayoutError(
        f"{MODEL_TYPE}: cannot tell which model a {num_classes}-class checkpoint is (labels {labels[:5]}); "
        f"pass model_name= one of {', '.join(ARCHITECTURES)}"
    )


def rt_detr_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers ``rt_detr`` (HGNetV2-L) -> (architecture, kwargs, pxtorch state)."""
    from ...models.rt_detr import model_cfgs

    _check_config(hf_config)
    state = {_legacy_renamed(k): v for k, v in hf_state.items()}
    if "model.enc_score_head.weight" not in state:
        raise LayoutError(f"{MODEL_TYPE}: no model.enc_score_head.weight; not an RTDetrForObjectDetection checkpoint")
    num_classes = int(state["model.enc_score_head.weight"].shape[0])
    arch = _pick_architecture(hf_config, num_classes)
    kwargs: dict[str, Any] = {}
    if num_classes != model_cfgs[arch]["num_classes"]:
        kwargs["num_classes"] = num_classes
    for key, default in (("num_queries", 300), ("decoder_layers", 6)):
        if int(hf_config.get(key, default)) != default:
            kwargs["num_queries" if key == "num_queries" else "num_decoder_layers"] = int(hf_config[key])
    out = _rename_to_pxtorch(state, _KEYS, MODEL_TYPE)
    return arch, kwargs, out


def _deploy_to_train(state: StateDict) -> StateDict:
    """Write fused ``RepVggBlock``s (``...bottlenecks.{k}.conv``) as transformers' two branches, function-preserving:
    ``conv1`` = the fused kernel with an identity BatchNorm holding the bias, ``conv2`` = zeros."""
    out: StateDict = {}
    for k, v in state.items():
        m = re.match(r"(.*\.bottlenecks\.\d+)\.conv\.(weight|bias)$", k)
        if m is None:
            out[k] = v
            continue
        prefix = m.group(1)
        if m.group(2) == "bias":
            continue
        bias = state[f"{prefix}.conv.bias"]
        c = v.shape[0]
        eps = 1e-5
        out[f"{prefix}.conv1.conv.weight"] = v
        out[f"{prefix}.conv1.norm.weight"] = torch.ones(c, dtype=v.dtype)
        out[f"{prefix}.conv1.norm.bias"] = bias.clone()
        out[f"{prefix}.conv1.norm.running_mean"] = torch.zeros(c, dtype=v.dtype)
        out[f"{prefix}.conv1.norm.running_var"] = torch.full((c,), 1.0 - eps, dtype=v.dtype)
        out[f"{prefix}.conv1.norm.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        out[f"{prefix}.conv2.conv.weight"] = torch.zeros(c, c, 1, 1, dtype=v.dtype)
        out[f"{prefix}.conv2.norm.weight"] = torch.ones(c, dtype=v.dtype)
        out[f"{prefix}.conv2.norm.bias"] = torch.zeros(c, dtype=v.dtype)
        out[f"{prefix}.conv2.norm.running_mean"] = torch.zeros(c, dtype=v.dtype)
        out[f"{prefix}.conv2.norm.running_var"] = torch.ones(c, dtype=v.dtype)
        out[f"{prefix}.conv2.norm.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


def rt_detr_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch RT-DETR-L -> (transformers ``RTDetrConfig`` dict, state dict)."""
    from ...models.hgnet_v2 import HGNETV2_B4_DET, HGNETV2_B4_STEM

    arch = getattr(model, "architecture", None)
    if arch not in ARCHITECTURES:
        raise LayoutError(f"{MODEL_TYPE} holds {', '.join(ARCHITECTURES)}, not {arch!r}")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state = _deploy_to_train(state)
    out: StateDict = {}
    unknown = []
    for k, v in state.items():
        if k.startswith("backbone.") and k.endswith("num_batches_tracked"):
            continue  # transformers' frozen backbone BatchNorms have no step counter
        new = _KEYS.to_hf(k)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    if unknown:
        raise LayoutError(f"{arch}: no transformers name for {unknown[:5]}")
    labels = list(model.pretrained_cfg.labels or [])
    num_classes = model.num_classes
    if len(labels) != num_classes:
        labels = [f"LABEL_{i}" for i in range(num_classes)]
    backbone = _hgnetv2_config(HGNETV2_B4_STEM, HGNETV2_B4_DET, det=True)
    backbone["out_features"] = ["stage2", "stage3", "stage4"]
    config = {
        "model_type": MODEL_TYPE,
        "architectures": ["RTDetrForObjectDetection"],
        "backbone_config": backbone,
        "freeze_backbone_batch_norms": True,
        **_FIXED,
        "num_queries": model.num_queries,
        "decoder_layers": len(model.transformer.decoder.layers),
        "num_labels": num_classes,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "anchor_image_size": None,
        "eval_size": None,
        "disable_custom_kernels": True,
        "pxtorch_architecture": arch,
    }
    return config, out


def _lists(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


register_layout(HFLayout(MODEL_TYPE, ARCHITECTURES, rt_detr_to_pxtorch, rt_detr_from_pxtorch))
