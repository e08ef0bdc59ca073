"""CSP-PAN neck: PaddleDetection ``ppdet/modeling/necks/csp_pan.py`` and PaddleOCR ``ppocr/modeling/necks/csp_pan.py``.

Both sources build the same blocks (Apache-2.0); they differ only in two places, both covered here by
constructor arguments:

- PaddleDetection (PicoDet v1 / ``PicoDet_layout_1x``) can add a fourth, stride-doubled output level
  (``num_features=4``: ``first_top_conv(lateral[-1]) + second_top_conv(outs[-1])``, both stride-2) and
  upsamples by a fixed factor 2 (``upsample="scale"``);
- PaddleOCR (SLANet / SLANet_plus) has no extra level and upsamples to the size of the finer map
  (``upsample="size"``, which also handles odd sizes).

Activations follow Paddle: ``F.hardswish`` (``x * relu6(x + 3) / 6``) or ``F.leaky_relu`` (slope 0.01).
Module names follow the Paddle dygraph names (``conv_t.convs.N``, ``top_down_blocks.N.main_conv`` ...,
``dwconv``/``bn1``/``pwconv``/``bn2``) so Paddle checkpoints map by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv_bn import ConvBNAct

__all__ = ["CSPPAN", "CSPLayer", "ChannelT", "DPModule", "DarknetBottleneck", "csp_activation"]


def csp_activation(name: str | None) -> nn.Module:
    """``"hard_swish"``/``"hardswish"``, ``"leaky_relu"`` (Paddle slope 0.01) or ``None``."""
    if name is None:
        return nn.Identity()
    if name in ("hard_swish", "hardswish"):
        return nn.Hardswish()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    raise ValueError(f"unknown CSP-PAN activation {name!r}; expected 'hard_swish', 'leaky_relu' or None")


def _conv_bn(in_c: int, out_c: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None) -> ConvBNAct:
    """Paddle ``ConvBNLayer``: conv (no bias, padding ``(k - 1) // 2``) -> BN -> act; names ``conv``/``bn``."""
    block = ConvBNAct(in_c, out_c, k, stride, padding=(k - 1) // 2, groups=groups, act=None)
    block.act = csp_activation(act)
    return block


class DPModule(nn.Module):
    """Depthwise kxk conv + BN + act, then pointwise 1x1 conv + BN + act (``[B, C, H, W] -> [B, C, H/s, W/s]``)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, act: str = "hard_swish"
    ):
        super().__init__()
        pad = (kernel_size - 1) // 2
        # Paddle sets groups=out_channel for the depthwise conv (in == out everywhere it is used)
        self.dwconv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, groups=out_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.pwconv = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = csp_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.dwconv(x)))
        return self.act(self.bn2(self.pwconv(x)))


def _conv_func(use_depthwise: bool, in_c: int, out_c: int, k: int, stride: int, act: str) -> nn.Module:
    return DPModule(in_c, out_c, k, stride, act) if use_depthwise else _conv_bn(in_c, out_c, k, stride, act=act)


class DarknetBottleneck(nn.Module):
    """``conv1`` (1x1) -> ``conv2`` (kxk; DPModule if depthwise), + input if ``add_identity`` and C_in == C_out."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        expansion: float = 0.5,
        add_identity: bool = True,
        use_depthwise: bool = False,
        act: str = "hard_swish",
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = _conv_bn(in_channels, hidden, 1, act=act)
        self.conv2 = _conv_func(use_depthwise, hidden, out_channels, kernel_size, 1, act)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage-partial block: ``final_conv(cat(blocks(main_conv(x)), short_conv(x)))``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        expand_ratio: float = 0.5,
        num_blocks: int = 1,
        add_identity: bool = True,
        use_depthwise: bool = False,
        act: str = "hard_swish",
    ) -> None:
        super().__init__()
        mid = int(out_channels * expand_ratio)
        self.main_conv = _conv_bn(in_channels, mid, 1, act=act)
        self.short_conv = _conv_bn(in_channels, mid, 1, act=act)
        self.final_conv = _conv_bn(2 * mid, out_channels, 1, act=act)
        self.blocks = nn.Sequential(
            *[
                DarknetBottleneck(mid, mid, kernel_size, 1.0, add_identity, use_depthwise, act)
                for _ in range(num_blocks)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        main = self.blocks(self.main_conv(x))
        return self.final_conv(torch.cat((main, short), dim=1))


class ChannelT(nn.Module):
    """Paddle ``Channel_T``: one 1x1 ConvBN+act per level mapping ``in_channels[i]`` to ``out_channels``."""

    def __init__(self, in_channels: list[int], out_channels: int, act: str = "hard_swish") -> None:
        super().__init__()
        self.convs = nn.ModuleList([_conv_bn(c, out_channels, 1, act=act) for c in in_channels])

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(x) for conv, x in zip(self.convs, xs, strict=True)]


class CSPPAN(nn.Module):
    """Path aggregation network with CSP blocks: ``forward(list of L maps) -> list of L (+1) maps``.

    Input ``i`` is ``[B, in_channels[i], H_i, W_i]`` from fine to coarse (each level half the size of the
    previous one); every output has ``out_channels`` channels and the size of its input level. With
    ``num_features == len(in_channels) + 1`` a further level at half the coarsest size is appended.

    Args:
        in_channels: channels of each input level, fine to coarse (e.g. LCNet x1.0 ``[128, 256, 512]``).
        out_channels: channels of every level after the 1x1 lateral convs (PicoDet layout: 128; SLANet: 96).
        kernel_size: kernel of the depthwise/regular convs in the CSP blocks and down-samplers (Paddle: 5).
        num_features: number of output levels: ``len(in_channels)`` (PaddleOCR, ppdet default) or
            ``len(in_channels) + 1`` (ppdet ``num_features=4`` for 3 inputs: the extra stride-2 top level).
        num_csp_blocks: DarknetBottlenecks per CSP block (1 in every Paddle config).
        use_depthwise: DPModule (depthwise + pointwise) instead of a plain ConvBN for the kxk convs.
        act: ``"hard_swish"`` (all Paddle configs) or ``"leaky_relu"``.
        upsample: ``"scale"`` = nearest x2 (ppdet) or ``"size"`` = nearest to the finer map's size (PaddleOCR).

    Attributes:
        out_channels: list, one entry per output level.
        num_outs: number of output levels.
    """

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        kernel_size: int = 5,
        num_features: int | None = None,
        num_csp_blocks: int = 1,
        use_depthwise: bool = True,
        act: str = "hard_swish",
        upsample: str = "scale",
    ) -> None:
        super().__init__()
        levels = len(in_channels)
        num_features = levels if num_features is None else num_features
        if num_features not in (levels, levels + 1):
            raise ValueError(f"num_features must be {levels} or {levels + 1}, got {num_features}")
        if upsample not in ("scale", "size"):
            raise ValueError(f"upsample must be 'scale' or 'size', got {upsample!r}")
        self.in_channels = list(in_channels)
        self.num_outs = num_features
        self.out_channels = [out_channels] * num_features
        self.upsample_mode = upsample
        c = out_channels
        self.conv_t = ChannelT(self.in_channels, c, act)
        if num_features == levels + 1:
            self.first_top_conv = _conv_func(use_depthwise, c, c, kernel_size, 2, act)
            self.second_top_conv = _conv_func(use_depthwise, c, c, kernel_size, 2, act)
        else:
            self.first_top_conv = None
            self.second_top_conv = None

        def csp() -> CSPLayer:
            return CSPLayer(2 * c, c, kernel_size, 0.5, num_csp_blocks, False, use_depthwise, act)

        self.top_down_blocks = nn.ModuleList([csp() for _ in range(levels - 1)])
        self.downsamples = nn.ModuleList(
            [_conv_func(use_depthwise, c, c, kernel_size, 2, act) for _ in range(levels - 1)]
        )
        self.bottom_up_blocks = nn.ModuleList([csp() for _ in range(levels - 1)])

    def _up(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.upsample_mode == "size":
            return F.interpolate(x, size=like.shape[-2:], mode="nearest")
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"CSPPAN expects {len(self.in_channels)} levels, got {len(inputs)}")
        lateral = self.conv_t(list(inputs))
        levels = len(lateral)
        inner = [lateral[-1]]
        for idx in range(levels - 1, 0, -1):
            low = lateral[idx - 1]
            block = self.top_down_blocks[levels - 1 - idx]
            inner.insert(0, block(torch.cat([self._up(inner[0], low), low], dim=1)))
        outs = [inner[0]]
        for idx in range(levels - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], dim=1)))
        if self.first_top_conv is not None:
            outs.append(self.first_top_conv(lateral[-1]) + self.second_top_conv(outs[-1]))
        return outs
