"""PaddleOCR's MobileNetV3: the rec/cls variant (rec-style strides) and the detection variant.

Facts from PaddleOCR ``ppocr/modeling/backbones/rec_mobilenet_v3.py`` and ``det_mobilenet_v3.py``
(Apache-2.0): block tables, ``make_divisible(v, 8)``, (s, 1) strides for the rec/cls variant,
SE with hardsigmoid slope 0.2, final 2x2 max-pool. The detection variant (PP-OCRv3 det: large x0.5,
``disable_se``) uses square strides, cuts the blocks into four stages at the stride-2 blocks (the
first stride-2 block of the large table stays in stage 0) and ends stage 3 with the 1x1 ``cls_ch_squeeze``
conv; its four outputs are at strides 4/8/16/32. Parameter names follow PaddleOCR.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct, SEModule
from ..layers import make_divisible as _make_divisible

__all__ = ["MobileNetV3", "MobileNetV3Det", "ResidualUnit"]

# (kernel, expansion, out channels, use SE, activation, stride index or 1) at scale 1.0.
_LARGE = [
    (3, 16, 16, False, "relu", 0),
    (3, 64, 24, False, "relu", 1),
    (3, 72, 24, False, "relu", None),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", None),
    (5, 120, 40, True, "relu", None),
    (3, 240, 80, False, "hardswish", None),
    (3, 200, 80, False, "hardswish", None),
    (3, 184, 80, False, "hardswish", None),
    (3, 184, 80, False, "hardswish", None),
    (3, 480, 112, True, "hardswish", None),
    (3, 672, 112, True, "hardswish", None),
    (5, 672, 160, True, "hardswish", 3),
    (5, 960, 160, True, "hardswish", None),
    (5, 960, 160, True, "hardswish", None),
]
_SMALL = [
    (3, 16, 16, True, "relu", 0),
    (3, 72, 24, False, "relu", 1),
    (3, 88, 24, False, "relu", None),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", None),
    (5, 240, 40, True, "hardswish", None),
    (5, 120, 48, True, "hardswish", None),
    (5, 144, 48, True, "hardswish", None),
    (5, 288, 96, True, "hardswish", 3),
    (5, 576, 96, True, "hardswish", None),
    (5, 576, 96, True, "hardswish", None),
]
_SQUEEZE = {"large": 960, "small": 576}
# Per-block strides of the detection variant (det_mobilenet_v3.py); square, unlike the rec strides above.
_DET_STRIDES = {
    "large": (1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1),
    "small": (2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1),
}


def make_divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of this family (divisor 8); see :func:`pxtorch.layers.make_divisible`."""
    return _make_divisible(v, divisor)


class ResidualUnit(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> optional SE -> 1x1 linear (+ shortcut)."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int | tuple[int, int],
        use_se: bool,
        act: str,
    ) -> None:
        super().__init__()
        self.if_shortcut = stride == 1 and in_channels == out_channels
        self.expand_conv = ConvBNAct(in_channels, mid_channels, 1, act=act)
        self.bottleneck_conv = ConvBNAct(mid_channels, mid_channels, kernel_size, stride, groups=mid_channels, act=act)
        self.mid_se = SEModule(mid_channels, slope=0.2) if use_se else None
        self.linear_conv = ConvBNAct(mid_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.if_shortcut else y


class MobileNetV3(nn.Module):
    """MobileNetV3 with recognition strides: ``[B, 3, H, W]`` -> ``[B, C, H / 32, W / 4]``.

    Args:
        model_name: ``"small"`` or ``"large"``.
        scale: width multiplier (0.35 for the text-line classifier).
        strides: the four stride values of the down-sampling blocks; each becomes ``(s, 1)``.
            Defaults as PaddleOCR: small ``[2, 2, 2, 2]``, large ``[1, 2, 2, 2]``.
    """

    def __init__(self, model_name: str = "small", scale: float = 0.5, strides: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if model_name not in _SQUEEZE:
            raise ValueError(f"model_name must be 'small' or 'large', got {model_name!r}")
        table = _SMALL if model_name == "small" else _LARGE
        strides = tuple(strides or ((2, 2, 2, 2) if model_name == "small" else (1, 2, 2, 2)))
        inplanes = make_divisible(16 * scale)
        self.conv1 = ConvBNAct(3, inplanes, 3, stride=2, padding=1, act="hardswish")
        blocks, total_h = [], 2
        for k, exp, c, se, act, s_idx in table:
            if s_idx is None:
                stride: int | tuple[int, int] = 1
            elif model_name == "large" and s_idx == 0:
                stride = strides[0]
            else:
                stride = (strides[s_idx], 1)
            total_h *= stride if isinstance(stride, int) else stride[0]
            out_c = make_divisible(scale * c)
            blocks.append(ResidualUnit(inplanes, make_divisible(scale * exp), out_c, k, stride, se, act))
            inplanes = out_c
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = make_divisible(scale * _SQUEEZE[model_name])
        self.conv2 = ConvBNAct(inplanes, self.out_channels, 1, act="hardswish")
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.feature_info = [dict(num_chs=self.out_channels, reduction=(total_h * 2, 4), module="pool")]

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """Backbone-relative PaddleOCR names equal pxtorch's."""
        return name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv2(self.blocks(self.conv1(x))))


class MobileNetV3Det(nn.Module):
    """MobileNetV3 detection backbone: ``[B, 3, H, W]`` -> four maps at strides 4, 8, 16, 32.

    A new stage starts at every stride-2 block except the first block(s) of the stem region (index
    <= 2 for ``large``, PaddleOCR's ``start_idx``); the last stage ends with a 1x1 conv to
    ``make_divisible(scale * cls_ch_squeeze)`` channels. ``out_channels`` lists the four widths
    (``[16, 24, 56, 480]`` for large x0.5).

    Args:
        model_name: ``"large"`` or ``"small"``.
        scale: width multiplier (0.5 for PP-OCRv3 det).
        disable_se: drop every SE block (PP-OCRv3 det trains without them).
    """

    def __init__(self, model_name: str = "large", scale: float = 0.5, disable_se: bool = False) -> None:
        super().__init__()
        if model_name not in _SQUEEZE:
            raise ValueError(f"model_name must be 'small' or 'large', got {model_name!r}")
        table = _SMALL if model_name == "small" else _LARGE
        start_idx = 2 if model_name == "large" else 0
        inplanes = make_divisible(16 * scale)
        self.conv = ConvBNAct(3, inplanes, 3, stride=2, padding=1, act="hardswish")
        stages: list[list[nn.Module]] = [[]]
        self.out_channels: list[int] = []
        reduction, reductions = 2, []
        for i, ((k, exp, c, se, act, _), s) in enumerate(zip(table, _DET_STRIDES[model_name], strict=True)):
            if s == 2 and i > start_idx:
                self.out_channels.append(inplanes)
                reductions.append(reduction)
                stages.append([])
            out_c = make_divisible(scale * c)
            stages[-1].append(
                ResidualUnit(inplanes, make_divisible(scale * exp), out_c, k, s, se and not disable_se, act)
            )
            inplanes = out_c
            reduction *= s
        squeeze = make_divisible(scale * _SQUEEZE[model_name])
        stages[-1].append(ConvBNAct(inplanes, squeeze, 1, act="hardswish"))
        self.out_channels.append(squeeze)
        reductions.append(reduction)
        for i, blocks in enumerate(stages):
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
        self.num_stages = len(stages)
        self.feature_info = [
            dict(num_chs=c, reduction=r, module=f"stage{i}")
            for i, (c, r) in enumerate(zip(self.out_channels, reductions, strict=True))
        ]

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """Backbone-relative PaddleOCR names equal pxtorch's."""
        return name

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv(x)
        outs = []
        for i in range(self.num_stages):
            x = getattr(self, f"stage{i}")(x)
            outs.append(x)
        return outs
