"""PP-HGNetV2 and PP-HGNet backbones (the server text detectors and recognisers).

Facts from PaddleOCR ``ppocr/modeling/backbones/rec_pphgnetv2.py`` (Apache-2.0): ``PPHGNetV2_B4`` stem
``[3, 32, 48]``; ``StemBlock`` with 2x2 "SAME" convs and a 2x2 stride-1 max-pool beside them, ``stem3``
stride 1 for text recognition; ``HGV2_Block`` = 6 plain (stages 1-2) or light (1x1 + depthwise kxk,
stages 3-4) conv layers, all outputs concatenated and aggregated by a squeeze (C/2) and an excitation
1x1 conv, residual from the second block of a stage on; ``HGV2_Stage`` = optional depthwise 3x3
downsample (no activation) + blocks; the det stage table (stride 2, no downsample in stage 1) and the
rec table (strides (2, 1), (1, 2), (2, 1), (2, 1), every stage downsampling) and ``avg_pool2d((3, 2))``
at the end of the rec variant. ``ppocr/modeling/backbones/rec_hgnet.py``: ``PPHGNet_small`` (PP-OCRv4
server) = three 3x3 stem convs, a 3x3/2 max-pool for det only, ``HG_Block`` with one 1x1 aggregation conv
and ESE attention, same det/rec stride pattern. Parameter names follow PaddleOCR's module paths so Paddle
checkpoints map by name.

timm's ``hgnet.py`` implements both networks for ImageNet, but its modules do not fit PaddleOCR's layout:
its blocks name the aggregation ``aggregation.{0,1}`` (PaddleOCR ``aggregation_squeeze_conv`` /
``aggregation_excitation_conv`` and ``aggregation_conv`` / ``att``), its v1 stem always max-pools and
nests ``stem.stem``, its v2 stem always has a stride-2 ``stem3`` and its network always strides by 2, so
neither the det checkpoints' names nor the rec strides fit. pxtorch therefore builds the blocks itself from
:class:`~pxtorch.layers.ConvBNAct` (whose BatchNorm is folded into the convolution at inference) and
reuses timm's ``EseModule``, which is PaddleOCR's ``ESEModule`` exactly (``conv`` 1x1 with bias on the
global mean, sigmoid gate). The tests use timm's networks as an independent numerical reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.hgnet import EseModule
from torch import nn

from ..layers import ConvBNAct

__all__ = [
    "HGNETV2_B4_DET",
    "HGNETV2_B4_REC",
    "HGNET_SMALL_DET",
    "HGNET_SMALL_REC",
    "PPHGNet",
    "PPHGNetV2",
    "pphgnet_small",
    "pphgnetv2_b4",
]

Stride = int | tuple[int, int]
# PP-HGNetV2 stage: (in, mid, out, blocks, downsample, light_block, kernel, layers per block, downsample stride).
V2StageCfg = tuple[int, int, int, int, bool, bool, int, int, Stride]
HGNETV2_B4_STEM = (3, 32, 48)
HGNETV2_B4_DET: tuple[V2StageCfg, ...] = (
    (48, 48, 128, 1, False, False, 3, 6, 2),
    (128, 96, 512, 1, True, False, 3, 6, 2),
    (512, 192, 1024, 3, True, True, 5, 6, 2),
    (1024, 384, 2048, 1, True, True, 5, 6, 2),
)
HGNETV2_B4_REC: tuple[V2StageCfg, ...] = (
    (48, 48, 128, 1, True, False, 3, 6, (2, 1)),
    (128, 96, 512, 1, True, False, 3, 6, (1, 2)),
    (512, 192, 1024, 3, True, True, 5, 6, (2, 1)),
    (1024, 384, 2048, 1, True, True, 5, 6, (2, 1)),
)
# PP-HGNet stage: (in, mid, out, blocks, downsample, downsample stride); 3x3 layers, ``layer_num`` per block.
V1StageCfg = tuple[int, int, int, int, bool, Stride]
HGNET_SMALL_STEM = (64, 64, 128)
HGNET_SMALL_DET: tuple[V1StageCfg, ...] = (
    (128, 128, 256, 1, False, 2),
    (256, 160, 512, 1, True, 2),
    (512, 192, 768, 2, True, 2),
    (768, 224, 1024, 1, True, 2),
)
HGNET_SMALL_REC: tuple[V1StageCfg, ...] = (
    (128, 128, 256, 1, True, (2, 1)),
    (256, 160, 512, 1, True, (1, 2)),
    (512, 192, 768, 2, True, (2, 1)),
    (768, 224, 1024, 1, True, (2, 1)),
)


def _pair(s: Stride) -> tuple[int, int]:
    return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


def _reduction(strides: list[Stride]) -> tuple[int, int]:
    h = w = 1
    for s in strides:
        sh, sw = _pair(s)
        h, w = h * sh, w * sw
    return h, w


def _paddle_name(name: str) -> str | None:
    """Backbone-relative PaddleOCR name -> pxtorch name (the same); the ImageNet head PaddleOCR builds but
    never calls (``last_conv``, ``fc``) maps to ``None``."""
    return None if name.startswith(("last_conv.", "fc.", "lab.")) else name


class LightConvBNAct(nn.Module):
    """1x1 conv+BN (no activation) -> depthwise kxk conv+BN+ReLU (PaddleOCR's ``LightConvBNAct``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class HGV2Block(nn.Module):
    """``layer_num`` conv layers whose outputs (and the input) are concatenated, then squeezed to C/2 and
    excited back to C by 1x1 conv+BN+ReLU; ``residual`` adds the input. ``[B, C_in, H, W] -> [B, C_out, H, W]``."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int,
        layer_num: int,
        residual: bool,
        light_block: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        layers: list[nn.Module] = []
        for i in range(layer_num):
            c_in = in_channels if i == 0 else mid_channels
            if light_block:
                layers.append(LightConvBNAct(c_in, mid_channels, kernel_size))
            else:
                layers.append(ConvBNAct(c_in, mid_channels, kernel_size, act="relu"))
        self.layers = nn.ModuleList(layers)
        total = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total, out_channels // 2, 1, act="relu")
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        h = x
        for layer in self.layers:
            h = layer(h)
            outs.append(h)
        h = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(torch.cat(outs, dim=1)))
        return h + x if self.residual else h


class HGV2Stage(nn.Module):
    """Optional depthwise 3x3 downsample (conv+BN, no activation) followed by ``block_num`` blocks."""

    def __init__(self, cfg: V2StageCfg) -> None:
        super().__init__()
        in_c, mid_c, out_c, block_num, downsample, light, kernel, layer_num, stride = cfg
        self.downsample = ConvBNAct(in_c, in_c, 3, stride, groups=in_c) if downsample else None
        self.blocks = nn.Sequential(
            *(
                HGV2Block(in_c if i == 0 else out_c, mid_c, out_c, kernel, layer_num, residual=i > 0, light_block=light)
                for i in range(block_num)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class StemBlock(nn.Module):
    """PP-HGNetV2 stem: ``[B, 3, H, W] -> [B, out, H / 4, W / 4]`` (``H / 2`` high and wide with ``text_rec``).

    ``stem1`` (3x3/2) feeds two paths, a 2x2 max-pool and ``stem2a`` -> ``stem2b`` (2x2 convs), whose
    outputs are concatenated for ``stem3`` (3x3, stride 2; 1 for text recognition) and ``stem4`` (1x1).
    Paddle's "SAME" padding of the 2x2 kernels is one zero row/column at the bottom/right; the pool sees the
    same zero padding, which cannot win a max over ReLU outputs.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, text_rec: bool = False) -> None:
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, 2, act="relu")
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, padding=0, act="relu")
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, padding=0, act="relu")
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, 1 if text_rec else 2, act="relu")
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, act="relu")
        self.pool = nn.MaxPool2d(kernel_size=2, stride=1)
        self.stride: Stride = 2 if text_rec else 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(self.stem1(x), (0, 1, 0, 1))
        x2 = self.stem2b(F.pad(self.stem2a(x), (0, 1, 0, 1)))
        x = torch.cat([self.pool(x), x2], dim=1)
        return self.stem4(self.stem3(x))


class PPHGNetV2(nn.Module):
    """PP-HGNetV2 (``use_lab=False`` variants such as B4).

    ``det=True``: ``[B, 3, H, W]`` (H, W multiples of 32) -> the four stage outputs at strides 4/8/16/32
    (``out_channels`` channels). ``det=False``: ``[B, 3, 48, W]`` -> ``[B, C, 1, W / 8]`` (avg-pool (3, 2)
    of the last stage). PaddleOCR pools adaptively to 40 steps in training mode; pxtorch always uses the
    eval pooling so the output shape never depends on the mode (identical for the 320-px training width).
    """

    def __init__(self, stem_channels: tuple[int, int, int], stage_config: tuple[V2StageCfg, ...], det: bool) -> None:
        super().__init__()
        self.det = det
        self.stem_channels = tuple(stem_channels)
        self.stage_config = tuple(stage_config)
        self.stem = StemBlock(*stem_channels, text_rec=not det)
        self.stages = nn.ModuleList(HGV2Stage(cfg) for cfg in stage_config)
        strides: list[Stride] = [self.stem.stride]
        self.feature_info: list[dict] = []
        for i, cfg in enumerate(stage_config):
            if cfg[4]:
                strides.append(cfg[8])
            if det:
                self.feature_info.append(dict(num_chs=cfg[2], reduction=_reduction(strides)[0], module=f"stages.{i}"))
        if det:
            self.out_channels: list[int] | int = [cfg[2] for cfg in stage_config]
        else:
            self.out_channels = stage_config[-1][2]
            self.pool = nn.AvgPool2d(kernel_size=(3, 2), stride=(3, 2))
            red = _reduction([*strides, (3, 2)])
            self.feature_info.append(dict(num_chs=self.out_channels, reduction=red, module="pool"))

    paddle_key_map = staticmethod(_paddle_name)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs if self.det else self.pool(x)


class HGBlock(nn.Module):
    """PP-HGNet block: ``layer_num`` 3x3 conv layers, concatenation with the input, one 1x1 aggregation
    conv and ESE attention; ``residual`` adds the input."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, layer_num: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList(
            ConvBNAct(in_channels if i == 0 else mid_channels, mid_channels, 3, act="relu") for i in range(layer_num)
        )
        self.aggregation_conv = ConvBNAct(in_channels + layer_num * mid_channels, out_channels, 1, act="relu")
        self.att = EseModule(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        h = x
        for layer in self.layers:
            h = layer(h)
            outs.append(h)
        h = self.att(self.aggregation_conv(torch.cat(outs, dim=1)))
        return h + x if self.residual else h


class HGStage(nn.Module):
    """Optional depthwise 3x3 downsample (conv+BN, no activation) followed by ``block_num`` PP-HGNet blocks."""

    def __init__(self, cfg: V1StageCfg, layer_num: int) -> None:
        super().__init__()
        in_c, mid_c, out_c, block_num, downsample, stride = cfg
        self.downsample = ConvBNAct(in_c, in_c, 3, stride, groups=in_c) if downsample else None
        self.blocks = nn.Sequential(
            *(HGBlock(in_c if i == 0 else out_c, mid_c, out_c, layer_num, residual=i > 0) for i in range(block_num))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNet(nn.Module):
    """PP-HGNet (v1), as PaddleOCR builds it for PP-OCRv4 server det/rec.

    Stem: three 3x3 conv+BN+ReLU (the first with stride 2). ``det=True``: a 3x3/2 max-pool follows and the
    four stage outputs (strides 4/8/16/32) are returned. ``det=False``: ``[B, 3, 48, W] -> [B, C, 1, W / 8]``
    (avg-pool (3, 2) of the last stage; eval pooling in both modes, see :class:`PPHGNetV2`).
    """

    def __init__(
        self, stem_channels: tuple[int, ...], stage_config: tuple[V1StageCfg, ...], layer_num: int, det: bool
    ) -> None:
        super().__init__()
        self.det = det
        chs = (3, *stem_channels)
        self.stem = nn.Sequential(
            *(ConvBNAct(chs[i], chs[i + 1], 3, 2 if i == 0 else 1, act="relu") for i in range(len(chs) - 1))
        )
        self.stages = nn.ModuleList(HGStage(cfg, layer_num) for cfg in stage_config)
        strides: list[Stride] = [2, 2] if det else [2]
        self.feature_info: list[dict] = []
        for i, cfg in enumerate(stage_config):
            if cfg[4]:
                strides.append(cfg[5])
            if det:
                self.feature_info.append(dict(num_chs=cfg[2], reduction=_reduction(strides)[0], module=f"stages.{i}"))
        if det:
            self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.out_channels: list[int] | int = [cfg[2] for cfg in stage_config]
        else:
            self.pool = nn.AvgPool2d(kernel_size=(3, 2), stride=(3, 2))
            self.out_channels = stage_config[-1][2]
            self.feature_info.append(
                dict(num_chs=self.out_channels, reduction=_reduction([*strides, (3, 2)]), module="pool")
            )

    paddle_key_map = staticmethod(_paddle_name)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = self.stem(x)
        if self.det:
            x = self.pool(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs if self.det else self.pool(x)


def pphgnetv2_b4(det: bool) -> PPHGNetV2:
    """PaddleOCR's ``PPHGNetV2_B4`` (PP-OCRv5 server det with ``det=True``, server rec with ``det=False``)."""
    return PPHGNetV2(HGNETV2_B4_STEM, HGNETV2_B4_DET if det else HGNETV2_B4_REC, det=det)


def pphgnet_small(det: bool) -> PPHGNet:
    """PaddleOCR's ``PPHGNet_small`` (PP-OCRv4 server det with ``det=True``, server rec with ``det=False``)."""
    return PPHGNet(HGNET_SMALL_STEM, HGNET_SMALL_DET if det else HGNET_SMALL_REC, layer_num=6, det=det)
