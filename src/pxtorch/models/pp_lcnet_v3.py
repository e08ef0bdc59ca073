"""PP-LCNetV3 backbone (PP-OCRv4/v5 mobile det and rec).

Facts from PaddleOCR ``ppocr/modeling/backbones/rec_lcnetv3.py`` (Apache-2.0): stage table,
``make_divisible(v, 16)``, learnable re-parameterisable depthwise/pointwise layers with learnable
affine blocks, SE with hardsigmoid slope 1/6 in the last stage, the det 1x1 ``layer_list`` projections
``int([16, 24, 56, 480] * scale)`` and the rec ``avg_pool2d(kernel=(3, 2))`` head. Parameter names
follow PaddleOCR's module paths so Paddle checkpoints map by name.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct, LearnableRepLayer, SEModule
from ..layers import make_divisible as _make_divisible
from ..layers.fusion import cached_fold, inference_fusion_active

__all__ = ["NET_CONFIG_DET", "NET_CONFIG_REC", "LCNetV3Block", "PPLCNetV3", "make_divisible"]

Stride = int | tuple[int, int]
# Per stage: (dw kernel, in channels, out channels, stride, use SE) at scale 1.0.
NET_CONFIG_DET: dict[str, list[tuple[int, int, int, Stride, bool]]] = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 4,
    "blocks6": [(5, 256, 512, 2, True), (5, 512, 512, 1, True), (5, 512, 512, 1, False), (5, 512, 512, 1, False)],
}
NET_CONFIG_REC: dict[str, list[tuple[int, int, int, Stride, bool]]] = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 1, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, (2, 1), False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, (1, 2), False)] + [(5, 256, 256, 1, False)] * 4,
    "blocks6": [
        (5, 256, 512, (2, 1), True),
        (5, 512, 512, 1, True),
        (5, 512, 512, (2, 1), False),
        (5, 512, 512, 1, False),
    ],
}
_DET_PROJ = (16, 24, 56, 480)
_STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")


def make_divisible(v: float, divisor: int = 16) -> int:
    """Channel rounding of this family (divisor 16); see :func:`pxtorch.layers.make_divisible`."""
    return _make_divisible(v, divisor)


class LCNetV3Block(nn.Module):
    """Depthwise rep layer -> optional SE -> pointwise rep layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: Stride,
        dw_size: int,
        use_se: bool,
        conv_kxk_num: int,
        deploy: bool,
    ) -> None:
        super().__init__()
        self.dw_conv = LearnableRepLayer(
            in_channels,
            in_channels,
            dw_size,
            stride,
            groups=in_channels,
            num_conv_branches=conv_kxk_num,
            deploy=deploy,
        )
        self.se = SEModule(in_channels, slope=0.1666667) if use_se else None  # Paddle hardsigmoid default slope
        self.pw_conv = LearnableRepLayer(in_channels, out_channels, 1, 1, num_conv_branches=conv_kxk_num, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.se is None and self.dw_conv.deploy and self.pw_conv.deploy and inference_fusion_active(self):
            return self._forward_inference(x)
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)

    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Deploy form without autograd: the depthwise activation's affine ``s * h + t`` is folded into the
        1x1 pointwise conv (exact: no padding), saving two passes over the depthwise output."""
        dw, pw = self.dw_conv, self.pw_conv
        if dw.act is None:
            return pw(dw.conv_inference(x))
        h = F.hardswish(dw.conv_inference(x), inplace=True)
        s, t = dw.act.lab.scale, dw.act.lab.bias

        def fold() -> tuple[torch.Tensor, torch.Tensor]:
            w, b = pw.folded_conv()
            return w * s, b + t * w.sum(dim=(1, 2, 3))

        conv, lab = pw.reparam_conv, pw.lab
        w, b = cached_fold(self, (conv.weight, conv.bias, lab.scale, lab.bias, s, t), fold)
        out = F.conv2d(h, w, b)
        if pw.act is not None:
            out = F.hardswish(out, inplace=True).mul_(pw.act.lab.scale).add_(pw.act.lab.bias)
        return out


def _reduction(strides: list[Stride]) -> tuple[int, int]:
    h = w = 1
    for s in strides:
        sh, sw = (s, s) if isinstance(s, int) else s
        h, w = h * sh, w * sw
    return h, w


class PPLCNetV3(nn.Module):
    """PP-LCNetV3.

    ``det=True``: input ``[B, 3, H, W]`` (H, W multiples of 32) -> four maps at strides 4/8/16/32 with
    ``out_channels`` channels (after the 1x1 ``layer_list`` projections).
    ``det=False``: input ``[B, 3, 48, W]`` -> ``[B, C, 1, W / 8]`` (avg-pool (3, 2) of the last stage).
    PaddleOCR pools adaptively to 40 steps in training mode; pxtorch always uses the eval pooling so
    the output shape never depends on the mode (identical for the 320-px training width).

    Args:
        scale: width multiplier (0.75 det, 0.95 rec for PP-OCRv4/v5 mobile).
        conv_kxk_num: kxk branches per rep layer in the training form.
        deploy: build the re-parameterised (exported) form.
    """

    def __init__(self, scale: float = 1.0, det: bool = False, conv_kxk_num: int = 4, deploy: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.det = det
        config = NET_CONFIG_DET if det else NET_CONFIG_REC
        self.conv1 = ConvBNAct(3, make_divisible(16 * scale), 3, stride=2, padding=1)
        strides: list[Stride] = [2]
        self.feature_info: list[dict] = []
        for name in _STAGES:
            blocks = []
            for k, in_c, out_c, s, se in config[name]:
                blocks.append(
                    LCNetV3Block(
                        make_divisible(in_c * scale), make_divisible(out_c * scale), s, k, se, conv_kxk_num, deploy
                    )
                )
                strides.append(s)
            setattr(self, name, nn.Sequential(*blocks))
            if det and name != "blocks2":
                red = _reduction(strides)
                self.feature_info.append(
                    dict(num_chs=make_divisible(config[name][-1][2] * scale), reduction=red[0], module=name)
                )
        if det:
            in_chs = [f["num_chs"] for f in self.feature_info]
            self.out_channels = [int(c * scale) for c in _DET_PROJ]
            self.layer_list = nn.ModuleList(nn.Conv2d(i, o, 1) for i, o in zip(in_chs, self.out_channels, strict=True))
            for info, out_c, i in zip(self.feature_info, self.out_channels, range(4), strict=True):
                info.update(num_chs=out_c, module=f"layer_list.{i}")
        else:
            self.out_channels = make_divisible(512 * scale)
            self.pool = nn.AvgPool2d(kernel_size=(3, 2), stride=(3, 2))
            red = _reduction([*strides, (3, 2)])
            self.feature_info.append(dict(num_chs=self.out_channels, reduction=red, module="pool"))

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """Backbone-relative PaddleOCR name -> pxtorch name.

        Older exports (PP-OCRv4) call a rep layer's affine block ``w``/``b`` and its activation
        ``activation``; current PaddleOCR uses ``lab`` and ``act.lab``. Unused tensors map to ``None``.
        """
        if name.endswith("id_tensor") or name.startswith("conv1.hardswish"):
            return None
        name = re.sub(r"\.(dw_conv|pw_conv)\.w$", r".\1.lab.scale", name)
        name = re.sub(r"\.(dw_conv|pw_conv)\.b$", r".\1.lab.bias", name)
        return re.sub(r"\.activation\.(scale|bias)$", r".act.lab.\1", name)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = self.blocks2(self.conv1(x))
        outs = []
        for name in _STAGES[1:]:
            x = getattr(self, name)(x)
            outs.append(x)
        if self.det:
            return [proj(o) for proj, o in zip(self.layer_list, outs, strict=True)]
        return self.pool(x)
