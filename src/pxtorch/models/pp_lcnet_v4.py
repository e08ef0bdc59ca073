"""PP-LCNetV4 backbone (PP-OCRv6 det and rec).

Facts from PaddleOCR ``ppocr/modeling/backbones/rec_lcnetv4.py`` (Apache-2.0), cross-checked with
rapidocr 3.10's PyTorch port, transformers' ``pp_lcnet_v4`` and the PP-OCRv6 ONNX graphs:

- stage tables per size (tiny/small/medium) for det (HGNetV2-style branch stem, four stages at
  strides 4/8/16/32) and rec (branch stem, or for tiny rec a two-conv "simple" stem with GELU;
  stages ``blocks2..blocks6`` with (2, 1) strides, then avg-pool (3, 2));
- the stem's 2x2 convs and 2x2 max-pool use Paddle's ``padding="SAME"`` (one row/column on the
  bottom/right), every conv+BN of the stem has ReLU;
- each block: token mixer (``RepDWConv`` when stride 1 and in == out, else a depthwise conv+BN),
  optional SE (hardsigmoid slope 1/6), then a GELU MLP of two 1x1 conv+BN (expand x2, compress), with
  a residual from after the token mixer when stride 1 and in == out.

Parameter names follow PaddleOCR's module paths in the training form. The deploy form (what Paddle's
exported models contain) folds every conv+BN into one conv with bias (kept under ``conv``) and the
three ``RepDWConv`` branches into ``reparam_conv``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import SEModule
from ..layers.fusion import fold_bn

__all__ = ["NET_CONFIG_DET", "NET_CONFIG_REC", "ConvBN", "LCNetV4Block", "PPLCNetV4", "RepDWConv"]

Stride = int | tuple[int, int]
Block = tuple[int, int, int, Stride, bool]  # (dw kernel, in channels, out channels, stride, use SE)

NET_CONFIG_DET: dict[str, dict] = {
    "tiny": dict(
        stem=(16, 32),
        blocks_s1=[(3, 32, 32, 1, True), (3, 32, 32, 1, False)],
        blocks_s2=[(3, 32, 48, 2, False), (3, 48, 48, 1, True), (3, 48, 48, 1, False)],
        blocks_s3=[(3, 48, 64, 2, False)] + [(3, 64, 64, 1, True), (3, 64, 64, 1, False)] * 2,
        blocks_s4=[(3, 64, 160, 2, False), (3, 160, 160, 1, True), (3, 160, 160, 1, False)],
    ),
    "small": dict(
        stem=(24, 48),
        blocks_s1=[(3, 48, 48, 1, True), (3, 48, 48, 1, False)],
        blocks_s2=[(3, 48, 96, 2, False), (3, 96, 96, 1, True), (3, 96, 96, 1, False)],
        blocks_s3=[(3, 96, 192, 2, False)] + [(3, 192, 192, 1, True), (3, 192, 192, 1, False)] * 2,
        blocks_s4=[(3, 192, 384, 2, False), (3, 384, 384, 1, True), (3, 384, 384, 1, False)],
    ),
    "medium": dict(
        stem=(64, 128),
        blocks_s1=[(3, 128, 128, 1, True), (3, 128, 128, 1, False)],
        blocks_s2=[(3, 128, 256, 2, False), (3, 256, 256, 1, True), (3, 256, 256, 1, False)],
        blocks_s3=[(3, 256, 512, 2, False)] + [(3, 512, 512, 1, True), (3, 512, 512, 1, False)] * 2,
        blocks_s4=[(3, 512, 896, 2, False), (3, 896, 896, 1, True), (3, 896, 896, 1, False)],
    ),
}
NET_CONFIG_REC: dict[str, dict] = {
    "tiny": dict(
        stem=(24, 48),
        stem_type="simple",
        blocks2=[(3, 48, 48, 1, True)],
        blocks3=[(3, 48, 48, 1, False)],
        blocks4=[(3, 48, 96, (2, 1), False), (3, 96, 96, 1, True), (3, 96, 96, 1, False)],
        blocks5=[(3, 96, 160, (2, 1), False), (3, 160, 160, 1, True)] + [(3, 160, 160, 1, False)] * 2,
        blocks6=[],
    ),
    "small": dict(
        stem=(48, 96),
        stem_type="branch",
        blocks2=[(3, 96, 96, 1, True)],
        blocks3=[(3, 96, 96, 1, False)] * 2,
        blocks4=[(3, 96, 192, (2, 1), False)] + [(3, 192, 192, 1, True), (3, 192, 192, 1, False)] * 3,
        blocks5=[(3, 192, 384, (2, 1), False), (3, 384, 384, 1, True), (3, 384, 384, 1, False)],
        blocks6=[],
    ),
    "medium": dict(
        stem=(64, 128),
        stem_type="branch",
        blocks2=[(3, 128, 128, 1, True)],
        blocks3=[(3, 128, 256, 1, False), (3, 256, 256, 1, False), (3, 256, 256, 1, True)],
        blocks4=[(3, 256, 512, (2, 1), False)] + [(3, 512, 512, 1, True), (3, 512, 512, 1, False)] * 3,
        blocks5=[(3, 512, 768, (2, 1), False), (3, 768, 768, 1, True), (3, 768, 768, 1, False)],
        blocks6=[],
    ),
}
DET_STAGES = ("blocks_s1", "blocks_s2", "blocks_s3", "blocks_s4")
REC_STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")
_SE_SLOPE = 0.1666667  # Paddle's nn.Hardsigmoid default (the graphs carry alpha=0.1666667)


class SameUpperConv2d(nn.Conv2d):
    """Conv with Paddle's ``padding="SAME"`` for a 2x2 kernel at stride 1: one zero row/column bottom/right.

    The padding happens inside the module, so the module's input is the unpadded map (as in the graphs).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (0, 1, 0, 1)))


class ConvBN(nn.Module):
    """PaddleOCR's ``Conv2D_BN`` / ``ConvBNAct``: bias-free conv -> BatchNorm (-> ReLU when ``act``).

    Deploy form: one conv with bias (``conv``) and no ``bn``. Input ``[B, C_in, H, W]`` ->
    ``[B, C_out, H / s, W / s]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: Stride = 1,
        padding: int | None = None,
        groups: int = 1,
        act: bool = False,
        same_upper: bool = False,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2 if padding is None else padding
        conv_cls = SameUpperConv2d if same_upper else nn.Conv2d
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=deploy)
        self.bn = None if deploy else nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU() if act else nn.Identity()
        self.deploy = deploy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The deploy-form ``(weight, bias)``."""
        if self.bn is None:
            return self.conv.weight.clone(), self.conv.bias.clone()
        return fold_bn(self.conv.weight, self.conv.bias, self.bn)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the BatchNorm into the conv (in place, idempotent)."""
        if self.bn is None:
            return
        weight, bias = self.fused_kernel_bias()
        conv = self.conv
        fused = type(conv)(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, groups=conv.groups
        ).to(device=weight.device, dtype=weight.dtype)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.conv, self.bn, self.deploy = fused, None, True


class RepDWConv(nn.Module):
    """Re-parameterisable depthwise conv: ``bn(convbn_kxk(x) + conv_1x1(x) + x)``; deploy: ``reparam_conv``."""

    def __init__(self, channels: int, kernel_size: int = 3, deploy: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.deploy = deploy
        pad = (kernel_size - 1) // 2
        if deploy:
            self.reparam_conv = nn.Conv2d(channels, channels, kernel_size, 1, pad, groups=channels)
        else:
            self.conv = ConvBN(channels, channels, kernel_size, 1, pad, groups=channels)
            self.conv1 = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
            self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.reparam_conv(x)
        return self.bn(self.conv(x) + self.conv1(x) + x)

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The deploy-form ``(weight [C, 1, k, k], bias [C])`` equivalent to the three branches."""
        if self.deploy:
            return self.reparam_conv.weight.clone(), self.reparam_conv.bias.clone()
        p = self.kernel_size // 2
        w, b = self.conv.fused_kernel_bias()
        w = w + F.pad(self.conv1.weight, [p, p, p, p])
        w[:, 0, p, p] += 1.0  # the identity branch
        return fold_bn(w, b, self.bn)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.deploy:
            return
        weight, bias = self.fused_kernel_bias()
        k, c = self.kernel_size, self.channels
        self.reparam_conv = nn.Conv2d(c, c, k, 1, (k - 1) // 2, groups=c).to(device=weight.device, dtype=weight.dtype)
        self.reparam_conv.weight.copy_(weight)
        self.reparam_conv.bias.copy_(bias)
        del self.conv, self.conv1, self.bn
        self.deploy = True


class LCNetV4Block(nn.Module):
    """Token mixer (+ SE) -> GELU channel MLP, residual when stride 1 and in == out.

    ``[B, C_in, H, W]`` -> ``[B, C_out, H / s_h, W / s_w]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: Stride,
        dw_size: int,
        use_se: bool,
        expand_ratio: int = 2,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        self.has_residual = in_channels == out_channels and stride == 1
        mixer: list[tuple[str, nn.Module]] = []
        if self.has_residual:
            mixer.append(("rep_dw", RepDWConv(in_channels, dw_size, deploy=deploy)))
        else:
            mixer.append(
                ("dw_conv", ConvBN(in_channels, in_channels, dw_size, stride, groups=in_channels, deploy=deploy))
            )
        if use_se:
            mixer.append(("se", SEModule(in_channels, reduction=4, slope=_SE_SLOPE)))
        self.token_mixer = nn.Sequential(OrderedDict(mixer))
        hidden = int(in_channels * expand_ratio)
        self.channel_mixer = nn.Sequential(
            OrderedDict(
                expand=ConvBN(in_channels, hidden, 1, deploy=deploy),
                act=nn.GELU(),
                compress=ConvBN(hidden, out_channels, 1, deploy=deploy),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_mixer(x)
        return x + self.channel_mixer(x) if self.has_residual else self.channel_mixer(x)


class StemBlock(nn.Module):
    """HGNetV2-style branch stem, stride 4: ``[B, 3, H, W]`` -> ``[B, out, H / 4, W / 4]``."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, deploy: bool = False) -> None:
        super().__init__()
        self.stem1 = ConvBN(in_channels, mid_channels, 3, 2, act=True, deploy=deploy)
        self.stem2a = ConvBN(mid_channels, mid_channels // 2, 2, 1, 0, act=True, same_upper=True, deploy=deploy)
        self.stem2b = ConvBN(mid_channels // 2, mid_channels, 2, 1, 0, act=True, same_upper=True, deploy=deploy)
        self.stem3 = ConvBN(mid_channels * 2, mid_channels, 3, 2, act=True, deploy=deploy)
        self.stem4 = ConvBN(mid_channels, out_channels, 1, 1, act=True, deploy=deploy)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))
        # Paddle's "SAME" max-pool pads bottom/right; x is a ReLU output, so zero padding is exact.
        x1 = self.pool(F.pad(x, (0, 1, 0, 1)))
        return self.stem4(self.stem3(torch.cat([x1, x2], dim=1)))


def _simple_stem(stem: tuple[int, int], deploy: bool) -> nn.Sequential:
    """Tiny rec stem: conv3x3/2+BN -> GELU -> conv3x3/2+BN (names ``0`` and ``2`` as in Paddle)."""
    mid, out = stem
    return nn.Sequential(ConvBN(3, mid, 3, 2, deploy=deploy), nn.GELU(), ConvBN(mid, out, 3, 2, deploy=deploy))


def _stride_hw(s: Stride) -> tuple[int, int]:
    return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


class PPLCNetV4(nn.Module):
    """PP-LCNetV4.

    ``det=True``: ``[B, 3, H, W]`` (H, W multiples of 32) -> four maps at strides 4/8/16/32 with
    ``out_channels`` channels.
    ``det=False``: ``[B, 3, 48, W]`` -> ``[B, C, 1, W / 8]`` (avg-pool (3, 2) of the last stage; like
    pxtorch's PP-LCNetV3, the eval pooling is used in training too).

    Args:
        model_size: ``"tiny"``, ``"small"`` or ``"medium"``.
        deploy: build the re-parameterised (exported) form.
    """

    def __init__(self, model_size: str = "small", det: bool = False, deploy: bool = False) -> None:
        super().__init__()
        table = NET_CONFIG_DET if det else NET_CONFIG_REC
        if model_size not in table:
            raise ValueError(
                f"PP-LCNetV4 {'det' if det else 'rec'} size must be one of {sorted(table)}, got {model_size!r}"
            )
        cfg = table[model_size]
        self.det = det
        self.model_size = model_size
        stem_name = "stem" if det else "conv1"
        if not det and cfg["stem_type"] == "simple":
            setattr(self, stem_name, _simple_stem(cfg["stem"], deploy))
        else:
            setattr(self, stem_name, StemBlock(3, *cfg["stem"], deploy=deploy))
        h = w = 4
        self.feature_info: list[dict] = []
        self.stage_names = DET_STAGES if det else REC_STAGES
        channels = cfg["stem"][1]
        for name in self.stage_names:
            blocks = []
            for k, in_c, out_c, s, se in cfg[name]:
                blocks.append(LCNetV4Block(in_c, out_c, s, k, se, deploy=deploy))
                sh, sw = _stride_hw(s)
                h, w, channels = h * sh, w * sw, out_c
            setattr(self, name, nn.Sequential(*blocks))
            if det:
                self.feature_info.append(dict(num_chs=channels, reduction=h, module=name))
        if det:
            self.out_channels: list[int] | int = [f["num_chs"] for f in self.feature_info]
        else:
            self.out_channels = channels
            self.pool = nn.AvgPool2d(kernel_size=(3, 2), stride=(3, 2))
            self.feature_info.append(dict(num_chs=channels, reduction=(h * 3, w * 2), module="pool"))

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """Backbone-relative PaddleOCR name -> pxtorch name (identical in the training form)."""
        return name

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = (self.stem if self.det else self.conv1)(x)
        outs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outs.append(x)
        if self.det:
            return outs
        return self.pool(x)
