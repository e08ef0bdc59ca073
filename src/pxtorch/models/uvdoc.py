"""UVDoc document unwarping (PaddleX ``UVDoc``, module ``image_unwarping``).

Facts from PaddleX ``paddlex/inference/models/image_unwarping/`` (``modeling/uvdoc.py``, ``_config.py``,
``predictor.py``) and transformers 5.24 ``models/uvdoc``:

* Input: the whole page, BGR, ``/255``, no mean/std (PaddleX ``Normalize(mean=0, std=1, scale=1/255)``);
  the network resizes it to 712x488 (H x W, bilinear, ``align_corners=True``) itself.
* Backbone: two 5x5 stride-2 conv+BN+ReLU stems (3->32->32), three dilated residual stages
  (3 / 4 / 6 blocks, 32 / 64 / 128 channels, the first block of stages 2 and 3 strides by 2 with a
  5x5 conv+BN shortcut; convs have biases and are followed by BN), then six parallel "bridge" branches
  of dilated 3x3 conv+BN+ReLU (dilations 1 | 2 | 5 | 8,3,2 | 12,7,4 | 18,12,6) all fed the same map.
* Head: the six branch outputs concatenated (768 channels) -> 1x1 conv+BN+ReLU (128) -> 5x5 conv+BN+PReLU
  (32, reflect padding) -> 5x5 conv with bias (2, reflect padding).
* Output: a coarse backward map ``[B, 2, 45, 31]`` in ``grid_sample`` coordinates (x, y in [-1, 1]).
  PaddleX upsamples it to the original size (bilinear, ``align_corners=True``) and samples the original
  image with it (:mod:`pxtorch.processing.unwarp`).

Module and parameter names equal PaddleX's dygraph names (and transformers'), so the official
Hugging Face layout maps one to one (:mod:`pxtorch.convert.hf_layout.uvdoc`). No weights ship in any
wheel; they come from ``PaddlePaddle/UVDoc_safetensors`` or a local checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._features import image_input
from .._pretrained import PreprocessCfg, PretrainedCfg
from .._registry import register_model

__all__ = ["UVDocBackbone", "UVDocHead", "UVDocNet"]

#: stem convs: (in, out); 5x5, stride 2
RESNET_HEAD: tuple[tuple[int, int], ...] = ((3, 32), (32, 32))
#: residual stages: (in, out, dilation, downsample) per block
RESNET_CONFIGS: tuple[tuple[tuple[int, int, int, bool], ...], ...] = (
    ((32, 32, 1, False), (32, 32, 3, False), (32, 32, 3, False)),
    ((32, 64, 1, True), (64, 64, 3, False), (64, 64, 3, False), (64, 64, 3, False)),
    (
        (64, 128, 1, True),
        (128, 128, 3, False),
        (128, 128, 3, False),
        (128, 128, 3, False),
        (128, 128, 3, False),
        (128, 128, 3, False),
    ),
)
#: bridge branches: (channels, dilation) per 3x3 conv
STAGE_CONFIGS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((128, 1),),
    ((128, 2),),
    ((128, 5),),
    ((128, 8), (128, 3), (128, 2)),
    ((128, 12), (128, 7), (128, 4)),
    ((128, 18), (128, 12), (128, 6)),
)
UPSAMPLE_SIZE = (712, 488)  # (H, W) the network sees


class UVDocConvLayer(nn.Module):
    """``convolution`` -> ``normalization`` (BN) -> ``activation`` (ReLU, PReLU or none)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = False,
        padding_mode: str = "zeros",
        activation: str | None = "relu",
    ) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.normalization = nn.BatchNorm2d(out_channels)
        if activation == "relu":
            self.activation: nn.Module = nn.ReLU()
        elif activation == "prelu":
            self.activation = nn.PReLU()  # one shared slope, as Paddle's nn.PReLU()
        elif activation is None:
            self.activation = nn.Identity()
        else:
            raise ValueError(f"unsupported activation {activation!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(x)))


class UVDocResidualBlock(nn.Module):
    """Dilated residual block: ``relu(conv_final(conv_start(x)) + conv_down(x))``; biased convs + BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv_down = (
            UVDocConvLayer(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=True, activation=None)
            if downsample
            else nn.Identity()
        )
        pad = dilation * (kernel_size // 2)
        self.conv_start = UVDocConvLayer(in_channels, out_channels, kernel_size, stride, pad, dilation, bias=True)
        self.conv_final = UVDocConvLayer(
            out_channels, out_channels, kernel_size, 1, pad, dilation, bias=True, activation=None
        )
        self.act_fn = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_fn(self.conv_final(self.conv_start(x)) + self.conv_down(x))


class UVDocResNetStage(nn.Module):
    """A sequence of residual blocks (``layers``)."""

    def __init__(self, blocks: Sequence[Sequence], kernel_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            UVDocResidualBlock(cin, cout, kernel_size, dil, bool(down)) for cin, cout, dil, down in blocks
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class UVDocResNet(nn.Module):
    """Stride-2 stems (``resnet_head``), residual stages (``resnet_down``): ``[B,3,H,W] -> [B,128,H/16,W/16]``."""

    def __init__(self, head: Sequence[Sequence[int]], stages: Sequence[Sequence[Sequence]], kernel_size: int) -> None:
        super().__init__()
        self.resnet_head = nn.ModuleList(
            UVDocConvLayer(cin, cout, kernel_size, 2, kernel_size // 2) for cin, cout in head
        )
        self.resnet_down = nn.ModuleList(UVDocResNetStage(blocks, kernel_size) for blocks in stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.resnet_head:
            x = layer(x)
        for stage in self.resnet_down:
            x = stage(x)
        return x


class UVDocBridgeBlock(nn.Module):
    """One bridge branch: dilated 3x3 conv+BN+ReLU layers (``blocks``)."""

    def __init__(self, convs: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(UVDocConvLayer(ch, ch, 3, 1, dil, dil) for ch, dil in convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class UVDocBridge(nn.Module):
    """The parallel bridge branches, each fed the same map; returns their outputs in order."""

    def __init__(self, stages: Sequence[Sequence[Sequence[int]]]) -> None:
        super().__init__()
        self.bridge = nn.ModuleList(UVDocBridgeBlock(convs) for convs in stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [branch(x) for branch in self.bridge]


class UVDocBackbone(nn.Module):
    """``resnet`` + ``bridge``: ``[B, 3, H, W]`` -> six maps ``[B, 128, H/16, W/16]``."""

    def __init__(
        self,
        resnet_head: Sequence[Sequence[int]] = RESNET_HEAD,
        resnet_configs: Sequence[Sequence[Sequence]] = RESNET_CONFIGS,
        stage_configs: Sequence[Sequence[Sequence[int]]] = STAGE_CONFIGS,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.resnet = UVDocResNet(resnet_head, resnet_configs, kernel_size)
        self.bridge = UVDocBridge(stage_configs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.bridge(self.resnet(x))


class UVDocPointPositions2D(nn.Module):
    """5x5 conv+BN+PReLU (``conv_down``) then a biased 5x5 conv (``conv_up``) to 2 channels, reflect padding."""

    def __init__(self, channels: Sequence[Sequence[int]], kernel_size: int, padding_mode: str) -> None:
        super().__init__()
        (c_in, c_mid), (c_mid2, c_out) = channels
        pad = kernel_size // 2
        self.conv_down = UVDocConvLayer(c_in, c_mid, kernel_size, 1, pad, padding_mode=padding_mode, activation="prelu")
        self.conv_up = nn.Conv2d(c_mid2, c_out, kernel_size, padding=pad, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_up(self.conv_down(x))


class UVDocHead(nn.Module):
    """Concatenated bridge maps ``[B, 128*6, h, w]`` -> 1x1 ``bridge_connector`` -> grid ``[B, 2, h, w]``."""

    def __init__(
        self,
        num_branches: int,
        bridge_connector: Sequence[int] = (128, 128),
        out_point_positions2D: Sequence[Sequence[int]] = ((128, 32), (32, 2)),
        kernel_size: int = 5,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        c_in, c_out = bridge_connector
        self.bridge_connector = UVDocConvLayer(c_in * num_branches, c_out, 1)
        self.out_point_positions2D = UVDocPointPositions2D(out_point_positions2D, kernel_size, padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_point_positions2D(self.bridge_connector(x))


class UVDocNet(nn.Module):
    """UVDoc. ``forward``: page ``[B, 3, H, W]`` (BGR, /255, any size) -> backward map ``[B, 2, 45, 31]``.

    The page is first resized to ``upsample_size`` (712x488, bilinear, ``align_corners=True``; a no-op
    for an input of that size). The map holds ``grid_sample`` coordinates (channel 0 = x, 1 = y, in
    [-1, 1]); :func:`pxtorch.processing.unwarp.unwarp_tensor` applies it to the full-resolution page.
    ``feature_info`` strides are relative to the resized 712x488 input.
    """

    output_activation = "identity"

    def __init__(
        self,
        resnet_head: Sequence[Sequence[int]] = RESNET_HEAD,
        resnet_configs: Sequence[Sequence[Sequence]] = RESNET_CONFIGS,
        stage_configs: Sequence[Sequence[Sequence[int]]] = STAGE_CONFIGS,
        kernel_size: int = 5,
        bridge_connector: Sequence[int] = (128, 128),
        out_point_positions2D: Sequence[Sequence[int]] = ((128, 32), (32, 2)),
        padding_mode: str = "reflect",
        upsample_size: Sequence[int] = UPSAMPLE_SIZE,
    ) -> None:
        super().__init__()
        self.upsample_size = (int(upsample_size[0]), int(upsample_size[1]))
        self.backbone = UVDocBackbone(resnet_head, resnet_configs, stage_configs, kernel_size)
        self.head = UVDocHead(len(stage_configs), bridge_connector, out_point_positions2D, kernel_size, padding_mode)
        stride = 2 ** (len(resnet_head) + sum(any(b[3] for b in blocks) for blocks in resnet_configs))
        self.feature_info = [
            dict(num_chs=convs[-1][0], reduction=stride, module=f"backbone.bridge.bridge.{i}")
            for i, convs in enumerate(stage_configs)
        ]
        self.feature_info.append(dict(num_chs=out_point_positions2D[-1][1], reduction=stride, module="head"))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Resize to ``upsample_size`` and run the backbone: six ``[B, 128, 45, 31]`` maps."""
        x = image_input(x)
        x = F.interpolate(x, size=self.upsample_size, mode="bilinear", align_corners=True)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat(self.forward_features(x), dim=1))


def _build_uvdoc(
    resnet_head: Sequence[Sequence[int]] = RESNET_HEAD,
    resnet_configs: Sequence[Sequence[Sequence]] = RESNET_CONFIGS,
    stage_configs: Sequence[Sequence[Sequence[int]]] = STAGE_CONFIGS,
    kernel_size: int = 5,
    bridge_connector: Sequence[int] = (128, 128),
    out_point_positions2D: Sequence[Sequence[int]] = ((128, 32), (32, 2)),
    padding_mode: str = "reflect",
    upsample_size: Sequence[int] = UPSAMPLE_SIZE,
    deploy: bool = False,
) -> UVDocNet:
    # ``deploy`` is accepted for a uniform API; UVDoc has no re-parameterisable branches.
    return UVDocNet(
        resnet_head,
        resnet_configs,
        stage_configs,
        kernel_size,
        bridge_connector,
        out_point_positions2D,
        padding_mode,
        upsample_size,
    )


model_cfgs: dict[str, dict] = dict(uvdoc=dict())

default_cfgs = {
    "uvdoc": PretrainedCfg(
        architecture="uvdoc",
        task="image_unwarping",
        paddlex_name="UVDoc",
        paddleocr_name=None,
        description="UVDoc document unwarping: predicts a 45x31 backward map applied to the full-resolution page",
        preprocess=PreprocessCfg(channel_order="BGR", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resize="none"),
        num_classes=0,
        weight_form="train",
        license="Apache-2.0",
        origin_url="https://huggingface.co/PaddlePaddle/UVDoc_safetensors",
        postprocess=dict(scale=255.0, upsample_size=list(UPSAMPLE_SIZE)),
        sources=(),
        hf_hub_id="PaddlePaddle/UVDoc_safetensors",
        hf_hub_layout="paddle-hf",
    ),
}


@register_model
def uvdoc(pretrained: bool = False, **kwargs) -> UVDocNet:
    return build_model(_build_uvdoc, "uvdoc", pretrained, model_cfgs["uvdoc"], kwargs)
