"""PaddleOCR's MobileNetV1Enhance: the recognition backbone of PP-OCRv2/v3 (``rec_mv1_enhance.py``).

Facts from PaddleOCR ``ppocr/modeling/backbones/rec_mv1_enhance.py`` (Apache-2.0) and the
``PP-OCRv3_mobile_rec`` config (``scale 0.5, last_conv_stride [1, 2], last_pool_type avg``), checked
against the exported ``ch_PP-OCRv3_rec_infer`` graph: a 3x3 stride-2 stem, 13 depthwise-separable
blocks (kxk depthwise conv-BN-hardswish, optional SE, 1x1 conv-BN-hardswish), SE only in the last two
blocks (hardsigmoid slope 1/6, the Paddle default), rec strides (2, 1) at blocks 4, 6 and 12, the last
block's stride ``last_conv_stride`` and a final 2x2 pool. Every BatchNorm is kept in the exported model.

PaddleOCR names the sub-layers ``_depthwise_conv``, ``_pointwise_conv``, ``_se``, ``_conv`` and
``_batch_norm``; pxtorch drops the leading underscores (:meth:`MobileNetV1Enhance.paddle_key_map`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct, SEModule

__all__ = ["DepthwiseSeparable", "MobileNetV1Enhance"]

Stride = int | tuple[int, int]

# (filters1, filters2, stride, depthwise kernel, use SE) at scale 1.0; ``None`` stride = last_conv_stride.
_BLOCKS: list[tuple[int, int, Stride | None, int, bool]] = [
    (32, 64, 1, 3, False),  # conv2_1
    (64, 128, 1, 3, False),  # conv2_2
    (128, 128, 1, 3, False),  # conv3_1
    (128, 256, (2, 1), 3, False),  # conv3_2
    (256, 256, 1, 3, False),  # conv4_1
    (256, 512, (2, 1), 3, False),  # conv4_2
    *[(512, 512, 1, 5, False)] * 5,  # conv5_1 .. conv5_5
    (512, 1024, (2, 1), 5, True),  # conv5_6
    (1024, 1024, None, 5, True),  # conv6
]


class DepthwiseSeparable(nn.Module):
    """kxk depthwise conv-BN-hardswish -> optional SE -> 1x1 conv-BN-hardswish.

    ``[B, C_in, H, W]`` -> ``[B, C_out, H / s_h, W / s_w]``.
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: Stride, kernel_size: int, use_se: bool
    ) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(
            in_channels, mid_channels, kernel_size, stride, groups=mid_channels, act="hardswish"
        )
        self.se = SEModule(mid_channels, reduction=4, slope=1.0 / 6.0) if use_se else None
        self.pointwise_conv = ConvBNAct(mid_channels, out_channels, 1, act="hardswish")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pointwise_conv(x)


class MobileNetV1Enhance(nn.Module):
    """MobileNetV1Enhance: ``[B, 3, 48, W]`` -> ``[B, 1024 * scale, 1, W / 8]`` (with the v3 settings).

    Args:
        scale: width multiplier (0.5 for PP-OCRv3 rec).
        last_conv_stride: stride of the last block (PP-OCRv3: ``(1, 2)``).
        last_pool_type: ``"avg"`` (PP-OCRv3) or ``"max"`` (PaddleOCR's default).
        last_pool_kernel_size: kernel and stride of the final pool (``(2, 2)`` in the v3 export).
    """

    def __init__(
        self,
        scale: float = 0.5,
        last_conv_stride: Stride = (1, 2),
        last_pool_type: str = "avg",
        last_pool_kernel_size: tuple[int, int] = (2, 2),
    ) -> None:
        super().__init__()
        if last_pool_type not in ("avg", "max"):
            raise ValueError(f"last_pool_type must be 'avg' or 'max', got {last_pool_type!r}")
        last_conv_stride = tuple(last_conv_stride) if isinstance(last_conv_stride, (list, tuple)) else last_conv_stride
        self.conv1 = ConvBNAct(3, int(32 * scale), 3, stride=2, padding=1, act="hardswish")
        blocks, in_c, w = [], int(32 * scale), 2
        for f1, f2, stride, k, se in _BLOCKS:
            stride = last_conv_stride if stride is None else stride
            blocks.append(DepthwiseSeparable(in_c, int(f1 * scale), int(f2 * scale), stride, k, se))
            in_c = int(f2 * scale)
            w *= stride if isinstance(stride, int) else stride[1]
        self.block_list = nn.Sequential(*blocks)
        pool = nn.AvgPool2d if last_pool_type == "avg" else nn.MaxPool2d
        kernel = tuple(last_pool_kernel_size)
        self.pool = pool(kernel_size=kernel, stride=kernel)
        self.out_channels = int(1024 * scale)
        # A 48-px line is 3 rows before the pool, which floors them to one: one output row per 48 input rows.
        self.feature_info = [dict(num_chs=self.out_channels, reduction=(48, w * kernel[1]), module="pool")]

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """Backbone-relative PaddleOCR name -> pxtorch name (PaddleOCR's leading underscores dropped)."""
        for paddle, ours in (
            ("._depthwise_conv.", ".depthwise_conv."),
            ("._pointwise_conv.", ".pointwise_conv."),
            ("._se.", ".se."),
        ):
            name = name.replace(paddle, ours)
        return name.replace("._conv.", ".conv.").replace("._batch_norm.", ".bn.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.block_list(self.conv1(x)))
