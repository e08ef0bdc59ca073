"""RT-DETR-L layout and table-cell detectors (PP-DocLayout-L, PP-DocLayout_plus-L, PP-DocBlockLayout,
RT-DETR-L wired/wireless table-cell detectors) and PP-DocLayoutV3 (:class:`PPDocLayoutV3`: the same detector
plus instance-mask prototypes and a reading-order head; transformers' ``pp_doclayout_v3``).

Architecture (PaddleDetection ``configs/rtdetr`` with ``PPHGNetV2`` arch L, PaddleX's PP-DocLayout-L config,
transformers' ``RTDetrForObjectDetection`` with an ``hgnet_v2`` backbone, which PaddlePaddle's
``*_safetensors`` checkpoints use): PP-HGNetV2-L (= the B4 stage table of :mod:`.hgnet_v2`, stage 2-4
outputs at strides 8/16/32) -> :class:`~.rt_detr_encoder.HybridEncoder` (256 channels, AIFI on the stride-32
level, expansion 1.0) -> :class:`~.rt_detr_decoder.RTDETRTransformer` (300 queries, 6 decoder layers, 8 heads,
4 sampling points, 3 levels). ``forward`` returns ``(logits [B, 300, C], boxes [B, 300, 4])``, boxes
normalised ``(cx, cy, w, h)``; :func:`pxtorch.processing.detr_postprocess.detr_postprocess` turns them into
``(cls, score, x1, y1, x2, y2)`` rows (sigmoid scores, top-k over query x class), as PaddleDetection's
``DETRPostProcess``.

Pre-processing follows PaddleX's ``inference.yml`` of each model: RGB, ``Resize`` to a fixed square without
keeping the ratio, ``interp: 2`` (bicubic), ``x / 255`` (layout models: mean 0 / std 1; the table-cell
detectors: ImageNet mean/std). The official weights exist only on the Hugging Face Hub
(``PaddlePaddle/<Model>_safetensors``, transformers' ``rt_detr`` layout, read by
:mod:`pxtorch.convert.hf_layout.rt_detr`); no wheel ships them.

Weight forms: the checkpoints keep BatchNorm next to every convolution (training form). The CCFM's
``RepVggBlock`` (3x3 + 1x1 branches) has a deploy form reached with :func:`pxtorch.reparameterize_model`
(or built directly with ``deploy=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from .._builder import build_model
from .._features import prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg
from .._registry import register_model
from .hgnet_v2 import pphgnetv2_b4
from .rt_detr_decoder import DocLayoutV3Transformer, RTDETRTransformer
from .rt_detr_encoder import HybridEncoder, HybridEncoderWithMask

__all__ = ["RTDETR", "PPDocLayoutV3"]


class RTDETR(nn.Module):
    """RT-DETR with a PP-HGNetV2 backbone: ``[B, 3, H, W]`` (H, W multiples of 32) -> ``(logits, boxes)``.

    Args:
        backbone: returns the four stage outputs; ``return_idx`` picks the levels fed to the encoder.
        neck: the hybrid encoder.
        transformer: query selection + decoder.
    """

    def __init__(
        self, backbone: nn.Module, neck: HybridEncoder, transformer: RTDETRTransformer, return_idx: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.transformer = transformer
        self.return_idx = tuple(return_idx)
        self.num_classes = transformer.num_classes
        self.num_queries = transformer.num_queries
        # the backbone maps fed to the encoder
        self.feature_info = prefixed_feature_info([backbone.feature_info[i] for i in self.return_idx])
        # parameters the inference forward does not differentiate through: denoising queries (training only),
        # the encoder score head (it only picks the top-k queries) and the auxiliary decoder score heads
        last = len(transformer.dec_score_head) - 1
        self.unused_in_forward = (
            "transformer.denoising_class_embed.",
            "transformer.enc_score_head.",
            *(f"transformer.dec_score_head.{i}." for i in range(last)),
        )

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder outputs: ``[B, 256, H / s, W / s]`` for s = 8, 16, 32."""
        feats = self.backbone(x)
        return self.neck([feats[i] for i in self.return_idx])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, 3, H, W]`` -> ``(logits [B, Q, C], boxes [B, Q, 4])`` (boxes: normalised cxcywh)."""
        return self.transformer(self.forward_features(x))


class PPDocLayoutV3(nn.Module):
    """PP-DocLayoutV3: ``[B, 3, H, W]`` (H, W multiples of 32) -> ``(logits [B, Q, C], boxes [B, Q, 4],
    order_logits [B, Q, Q], mask_logits [B, Q, H / 4, W / 4])``.

    The RT-DETR-L detector plus mask prototypes from the stride-4 backbone map and the encoder
    (:class:`~.rt_detr_encoder.HybridEncoderWithMask`), mask-derived initial boxes and a reading-order pointer
    head (:class:`~.rt_detr_decoder.DocLayoutV3Transformer`); transformers' ``PPDocLayoutV3ForObjectDetection``.
    """

    def __init__(self, backbone: nn.Module, neck: HybridEncoderWithMask, transformer: DocLayoutV3Transformer) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.transformer = transformer
        self.num_classes = transformer.num_classes
        self.num_queries = transformer.num_queries
        self.feature_info = prefixed_feature_info(backbone.feature_info)  # strides 4 (mask branch), 8/16/32
        # training-only parameters (see RTDETR): denoising queries and the auxiliary reading-order heads
        last = len(transformer.decoder_order_head) - 1
        self.unused_in_forward = (
            "transformer.denoising_class_embed.",
            *(f"transformer.decoder_order_head.{i}." for i in range(last)),
        )

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Encoder maps at strides 8/16/32 and the mask prototypes ``[B, P, H / 4, W / 4]``."""
        feats = self.backbone(x)
        return self.neck.forward_with_mask(feats[1:], feats[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        feats, mask_feat = self.forward_features(x)
        return self.transformer(feats, mask_feat)


def _create_v3(variant: str, pretrained: bool = False, **kwargs) -> PPDocLayoutV3:
    def build(
        num_classes: int, num_queries: int = 300, num_prototypes: int = 32, deploy: bool = False
    ) -> PPDocLayoutV3:
        backbone = pphgnetv2_b4(det=True)
        chs = backbone.out_channels
        neck = HybridEncoderWithMask(tuple(chs[1:]), chs[0], 256, (64, 64), num_prototypes, deploy=deploy)
        transformer = DocLayoutV3Transformer(
            num_classes, num_prototypes, 64, num_queries=num_queries, in_channels=tuple(neck.out_channels)
        )
        return PPDocLayoutV3(backbone, neck, transformer)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


def _create(variant: str, pretrained: bool = False, **kwargs) -> RTDETR:
    def build(
        num_classes: int,
        num_queries: int = 300,
        num_decoder_layers: int = 6,
        hidden_dim: int = 256,
        deploy: bool = False,
    ) -> RTDETR:
        backbone = pphgnetv2_b4(det=True)
        return_idx = (1, 2, 3)
        in_channels = tuple(backbone.out_channels[i] for i in return_idx)
        neck = HybridEncoder(in_channels, hidden_dim, use_encoder_idx=(2,), expansion=1.0, deploy=deploy)
        transformer = RTDETRTransformer(
            num_classes,
            hidden_dim,
            num_queries,
            tuple(neck.out_channels),
            num_decoder_layers=num_decoder_layers,
        )
        return RTDETR(backbone, neck, transformer, return_idx)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


# PaddleX inference.yml ``label_list`` of PP-DocLayout-L (= PP-DocLayout-S/M) and PP-DocLayout_plus-L
# (the order of PaddleX's PP-StructureV3.yaml per-class settings).
PP_DOCLAYOUT_L_LABELS = (
    "paragraph_title", "image", "text", "number", "abstract", "content", "figure_title", "formula", "table",
    "table_title", "reference", "doc_title", "footnote", "header", "algorithm", "footer", "seal", "chart_title",
    "chart", "formula_number", "header_image", "footer_image", "aside_text",
)  # fmt: skip
PP_DOCLAYOUT_PLUS_L_LABELS = (
    "paragraph_title", "image", "text", "number", "abstract", "content", "figure_table_chart_title", "formula",
    "table", "reference", "doc_title", "footnote", "header", "algorithm", "footer", "seal", "chart",
    "formula_number", "aside_text", "reference_content",
)  # fmt: skip
# PaddleX PP-StructureV3.yaml (LayoutDetection with PP-DocLayout_plus-L), indexed by class id.
# PaddleX inference.yml label_list of PP-DocLayoutV2/V3
PP_DOCLAYOUT_V3_LABELS = (
    "abstract", "algorithm", "aside_text", "chart", "content", "display_formula", "doc_title", "figure_title",
    "footer", "footer_image", "footnote", "formula_number", "header", "header_image", "image", "inline_formula",
    "number", "paragraph_title", "reference", "reference_content", "seal", "table", "text", "vertical_text",
    "vision_footnote",
)  # fmt: skip
_PLUS_L_THRESHOLDS = (
    0.3,
    0.5,
    0.4,
    0.5,
    0.5,
    0.5,
    0.5,
    0.3,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.45,
    0.5,
    0.5,
    0.5,
    0.5,
)
_PLUS_L_MERGE = tuple("large" if i in (0, 1, 7, 16) else "union" for i in range(20))


def _preprocess(size: int, imagenet: bool) -> PreprocessCfg:
    return PreprocessCfg(
        channel_order="RGB",
        mean=IMAGENET_MEAN if imagenet else (0.0, 0.0, 0.0),
        std=IMAGENET_STD if imagenet else (1.0, 1.0, 1.0),
        resize="stretch",
        input_size=(3, size, size),
        interpolation="cubic",
    )


def _cfg(**kwargs) -> PretrainedCfg:
    defaults = dict(
        paddleocr_name=None,
        weight_form="train",
        sources=(),
        license="Apache-2.0",
        hf_hub_layout="paddle-hf",
    )
    return PretrainedCfg(**{**defaults, **kwargs})


_DETR = dict(decoder="detr", num_top_queries=300)

default_cfgs = {
    "pp_doclayout_l": _cfg(
        architecture="pp_doclayout_l",
        task="layout_detection",
        paddlex_name="PP-DocLayout-L",
        preprocess=_preprocess(640, imagenet=False),
        num_classes=23,
        labels=PP_DOCLAYOUT_L_LABELS,
        # PaddleX draw_threshold; layout_nms / unclip / merge as PaddleX's seal_recognition.yaml sets them
        postprocess=dict(
            _DETR, threshold=0.5, layout_nms=True, layout_unclip_ratio=[1.0, 1.0], layout_merge_bboxes_mode="large"
        ),
        description="PP-DocLayout-L: RT-DETR-L layout detector, 23 classes, 640x640; download-only weights",
        origin_url="https://huggingface.co/PaddlePaddle/PP-DocLayout-L",
        hf_hub_id="PaddlePaddle/PP-DocLayout-L_safetensors",
    ),
    "pp_doclayout_plus_l": _cfg(
        architecture="pp_doclayout_plus_l",
        task="layout_detection",
        paddlex_name="PP-DocLayout_plus-L",
        preprocess=_preprocess(800, imagenet=False),
        num_classes=20,
        labels=PP_DOCLAYOUT_PLUS_L_LABELS,
        # PaddleX PP-StructureV3.yaml: per-class thresholds and merge modes (lists indexed by class id)
        postprocess=dict(
            _DETR,
            threshold=0.5,
            threshold_per_class=list(_PLUS_L_THRESHOLDS),
            layout_nms=True,
            layout_unclip_ratio=[1.0, 1.0],
            layout_merge_bboxes_mode=list(_PLUS_L_MERGE),
        ),
        description="PP-DocLayout_plus-L: RT-DETR-L layout detector, 20 classes, 800x800 (PP-StructureV3)",
        origin_url="https://huggingface.co/PaddlePaddle/PP-DocLayout_plus-L",
        hf_hub_id="PaddlePaddle/PP-DocLayout_plus-L_safetensors",
    ),
    "pp_docblocklayout": _cfg(
        architecture="pp_docblocklayout",
        task="layout_detection",
        paddlex_name="PP-DocBlockLayout",
        preprocess=_preprocess(640, imagenet=False),
        num_classes=1,
        labels=("Region",),
        # PaddleX PP-StructureV3.yaml RegionDetection
        postprocess=dict(_DETR, threshold=0.5, layout_nms=True, layout_merge_bboxes_mode="small"),
        description="PP-DocBlockLayout: RT-DETR-L layout-block (region) detector, 1 class, 640x640",
        origin_url="https://huggingface.co/PaddlePaddle/PP-DocBlockLayout",
        hf_hub_id="PaddlePaddle/PP-DocBlockLayout_safetensors",
    ),
    "rt_detr_l_wired_table_cell_det": _cfg(
        architecture="rt_detr_l_wired_table_cell_det",
        task="table_cells_detection",
        paddlex_name="RT-DETR-L_wired_table_cell_det",
        preprocess=_preprocess(640, imagenet=True),
        num_classes=1,
        labels=("cell",),
        # module default 0.5; PaddleX's table_recognition_v2 pipeline calls it with threshold=0.3
        postprocess=dict(_DETR, threshold=0.5, pipeline_threshold=0.3),
        description="RT-DETR-L wired-table cell detector, 1 class, 640x640",
        origin_url="https://huggingface.co/PaddlePaddle/RT-DETR-L_wired_table_cell_det",
        hf_hub_id="PaddlePaddle/RT-DETR-L_wired_table_cell_det_safetensors",
    ),
    "rt_detr_l_wireless_table_cell_det": _cfg(
        architecture="rt_detr_l_wireless_table_cell_det",
        task="table_cells_detection",
        paddlex_name="RT-DETR-L_wireless_table_cell_det",
        preprocess=_preprocess(640, imagenet=True),
        num_classes=1,
        labels=("cell",),
        postprocess=dict(_DETR, threshold=0.5, pipeline_threshold=0.3),
        description="RT-DETR-L wireless-table cell detector, 1 class, 640x640",
        origin_url="https://huggingface.co/PaddlePaddle/RT-DETR-L_wireless_table_cell_det",
        hf_hub_id="PaddlePaddle/RT-DETR-L_wireless_table_cell_det_safetensors",
    ),
    "pp_doclayout_v3": _cfg(
        architecture="pp_doclayout_v3",
        task="layout_detection",
        paddlex_name="PP-DocLayoutV3",
        preprocess=_preprocess(800, imagenet=False),
        num_classes=25,
        labels=PP_DOCLAYOUT_V3_LABELS,
        # four outputs (logits, boxes, order logits, masks): not the plain "detr" decoder
        postprocess=dict(decoder="pp_doclayout_v3", num_top_queries=300, threshold=0.5),
        description="PP-DocLayoutV3: RT-DETR-L layout detector with instance masks and reading order, 25 classes",
        origin_url="https://huggingface.co/PaddlePaddle/PP-DocLayoutV3",
        hf_hub_id="PaddlePaddle/PP-DocLayoutV3_safetensors",
    ),
}
model_cfgs = {name: dict(num_classes=cfg.num_classes) for name, cfg in default_cfgs.items()}


@register_model
def pp_doclayout_l(pretrained: bool = False, **kwargs) -> RTDETR:
    return _create("pp_doclayout_l", pretrained, **kwargs)


@register_model
def pp_doclayout_plus_l(pretrained: bool = False, **kwargs) -> RTDETR:
    return _create("pp_doclayout_plus_l", pretrained, **kwargs)


@register_model
def pp_docblocklayout(pretrained: bool = False, **kwargs) -> RTDETR:
    return _create("pp_docblocklayout", pretrained, **kwargs)


@register_model
def rt_detr_l_wired_table_cell_det(pretrained: bool = False, **kwargs) -> RTDETR:
    return _create("rt_detr_l_wired_table_cell_det", pretrained, **kwargs)


@register_model
def rt_detr_l_wireless_table_cell_det(pretrained: bool = False, **kwargs) -> RTDETR:
    return _create("rt_detr_l_wireless_table_cell_det", pretrained, **kwargs)


@register_model
def pp_doclayout_v3(pretrained: bool = False, **kwargs) -> PPDocLayoutV3:
    return _create_v3("pp_doclayout_v3", pretrained, **kwargs)
