"""PP-DocLayoutV3 <-> transformers' ``pp_doclayout_v3`` (``PPDocLayoutV3ForObjectDetection``).

``PaddlePaddle/PP-DocLayoutV3_safetensors`` uses these names. Everything the RT-DETR-L detectors have maps as
in :mod:`.rt_detr` (the encoder input projections cover stages 2-4; transformers slices off the stage-1 one).
The additions:

- mask branch of the encoder: ``neck.{mask_feature_head, encoder_mask_lateral, encoder_mask_output}`` <->
  ``model.encoder.*`` with ``conv``/``norm`` <-> ``convolution``/``normalization``;
- ``transformer.{decoder_norm, mask_query_head, decoder_order_head, decoder_global_pointer}`` <-> ``model.*``;
- transformers ties ``model.decoder.class_embed`` / ``bbox_embed`` to ``model.enc_score_head`` /
  ``enc_bbox_head`` (the encoder heads win when it loads); pxtorch holds one copy and writes both.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from . import HFLayout, LayoutError, StateDict, register_layout
from .pp_ocr_server import _hgnetv2_config, _KeyMap, _rename_to_pxtorch
from .rt_detr import _FIXED, _check_config, _legacy_renamed, _rules

__all__ = ["v3_from_pxtorch", "v3_to_pxtorch"]

MODEL_TYPE = "pp_doclayout_v3"
ARCH = "pp_doclayout_v3"
_STAGES = ["stage1", "stage2", "stage3", "stage4"]
_TIED = {"model.decoder.class_embed.": "model.enc_score_head.", "model.decoder.bbox_embed.": "model.enc_bbox_head."}


def _conv_layer(px: str, hf: str) -> list[tuple[str, str]]:
    return [(f"{px}.conv.", f"{hf}.convolution."), (f"{px}.norm.", f"{hf}.normalization.")]


def _v3_rules() -> list[tuple[str, str]]:
    rules = [r for r in _rules() if not r[0].startswith(("transformer.dec_score_head", "transformer.dec_bbox_head"))]
    n, h = "neck.", "model.encoder."
    rules += _conv_layer(
        f"{n}mask_feature_head.scale_heads.{{i}}.layers.{{j}}", f"{h}mask_feature_head.scale_heads.{{i}}.layers.{{j}}"
    )
    rules += _conv_layer(f"{n}mask_feature_head.output_conv", f"{h}mask_feature_head.output_conv")
    rules += _conv_layer(f"{n}encoder_mask_lateral", f"{h}encoder_mask_lateral")
    rules += _conv_layer(f"{n}encoder_mask_output.base_conv", f"{h}encoder_mask_output.base_conv")
    rules.append((f"{n}encoder_mask_output.conv.", f"{h}encoder_mask_output.conv."))
    for name in ("decoder_norm", "mask_query_head", "decoder_order_head", "decoder_global_pointer"):
        rules.append((f"transformer.{name}.", f"model.{name}."))
    return rules


_KEYS = _KeyMap(_v3_rules())
_V3_FIXED = {
    "mask_feature_channels": [64, 64],
    "x4_feat_dim": 128,
    "global_pointer_head_size": 64,
    "mask_enhanced": True,
}


def v3_to_pxtorch(hf_state: StateDict, hf_config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """transformers ``pp_doclayout_v3`` -> (``"pp_doclayout_v3"``, kwargs, pxtorch state)."""
    import torch

    backbone = dict(hf_config.get("backbone_config") or {})
    if list(backbone.get("out_features") or _STAGES) != _STAGES:
        raise LayoutError(f"{MODEL_TYPE}: backbone out_features {backbone.get('out_features')!r} (pxtorch: stage1-4)")
    _check_config({**hf_config, "backbone_config": {**backbone, "out_features": _STAGES[1:]}})
    diffs = [
        f"{k}={hf_config[k]!r} (pxtorch: {v!r})"
        for k, v in _V3_FIXED.items()
        if hf_config.get(k) is not None and (list(hf_config[k]) if isinstance(v, list) else hf_config[k]) != v
    ]
    if diffs:
        raise LayoutError(f"{MODEL_TYPE}: a configuration pxtorch does not build: " + "; ".join(diffs))
    state = {_legacy_renamed(k): v for k, v in hf_state.items()}
    if hf_config.get("tie_word_embeddings", True) is False:
        for tied, source in _TIED.items():
            for k in [k for k in state if k.startswith(tied)]:
                src = state.get(source + k.removeprefix(tied))
                if src is None or not torch.equal(src, state[k]):
                    raise LayoutError(
                        f"{MODEL_TYPE}: untied decoder heads ({k}); pxtorch shares them with the encoder's"
                    )
    state = {k: v for k, v in state.items() if not k.startswith(tuple(_TIED))}  # transformers ties them
    if "model.enc_score_head.weight" not in state:
        raise LayoutError(
            f"{MODEL_TYPE}: no model.enc_score_head.weight; not a PPDocLayoutV3ForObjectDetection checkpoint"
        )
    kwargs: dict[str, Any] = {}
    num_classes = int(state["model.enc_score_head.weight"].shape[0])
    if num_classes != 25:
        kwargs["num_classes"] = num_classes
    if int(hf_config.get("num_queries", 300)) != 300:
        kwargs["num_queries"] = int(hf_config["num_queries"])
    if int(hf_config.get("num_prototypes", 32)) != 32:
        kwargs["num_prototypes"] = int(hf_config["num_prototypes"])
    if int(hf_config.get("decoder_layers", 6)) != 6:
        raise LayoutError(f"{MODEL_TYPE}: decoder_layers={hf_config['decoder_layers']} (pxtorch: 6)")
    out = _rename_to_pxtorch(state, _KEYS, MODEL_TYPE)
    return ARCH, kwargs, out


def v3_from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``pp_doclayout_v3`` -> (transformers ``PPDocLayoutV3Config`` dict, state dict)."""
    from ...models.hgnet_v2 import HGNETV2_B4_DET, HGNETV2_B4_STEM
    from .rt_detr import _deploy_to_train

    if getattr(model, "architecture", None) != ARCH:
        raise LayoutError(f"{MODEL_TYPE} holds {ARCH} only, not {getattr(model, 'architecture', model)!r}")
    state = _deploy_to_train({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()})
    out: StateDict = {}
    unknown = []
    for k, v in state.items():
        if k.startswith("backbone.") and k.endswith("num_batches_tracked"):
            continue
        new = _KEYS.to_hf(k)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    if unknown:
        raise LayoutError(f"{ARCH}: no transformers name for {unknown[:5]}")
    for tied, source in _TIED.items():
        for k in [k for k in out if k.startswith(source)]:
            out[tied + k.removeprefix(source)] = out[k].clone()
    labels = list(model.pretrained_cfg.labels or [])
    if len(labels) != model.num_classes:
        labels = [f"LABEL_{i}" for i in range(model.num_classes)]
    backbone = _hgnetv2_config(HGNETV2_B4_STEM, HGNETV2_B4_DET, det=True)
    config = {
        "model_type": MODEL_TYPE,
        "architectures": ["PPDocLayoutV3ForObjectDetection"],
        "backbone_config": backbone,
        "freeze_backbone_batch_norms": True,
        **_FIXED,
        **_V3_FIXED,
        "num_prototypes": model.transformer.mask_query_head.layers[-1].out_features,
        "num_queries": model.num_queries,
        "decoder_layers": len(model.transformer.decoder.layers),
        "num_labels": model.num_classes,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "anchor_image_size": None,
        "eval_size": None,
        "tie_word_embeddings": True,
    }
    return config, out


register_layout(HFLayout(MODEL_TYPE, (ARCH,), v3_to_pxtorch, v3_from_pxtorch))
