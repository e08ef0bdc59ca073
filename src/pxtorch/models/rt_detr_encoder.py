"""RT-DETR hybrid encoder: AIFI (one transformer layer on the last level) + CCFM (FPN/PAN of CSP-RepVGG blocks).

Facts from PaddleDetection ``ppdet/modeling/transformers/hybrid_encoder.py`` (Apache-2.0) and transformers'
``RTDetrHybridEncoder`` (the numerical reference): 1x1 conv+BN input projections to ``hidden_dim``; the
AIFI layer is a post-norm transformer encoder layer (8 heads, GELU FFN of 1024) whose queries/keys get a
fixed 2D sin-cos position embedding ``[sin(y w), cos(y w), sin(x w), cos(x w)]``, ``w_k = T^(-k / (C/4))``
(computed in float64 as transformers does); top-down FPN: 1x1 lateral conv (SiLU), nearest 2x upsampling,
concatenation with the finer level, ``CSPRepLayer``; bottom-up PAN: 3x3/2 conv (SiLU), concatenation,
``CSPRepLayer``. ``CSPRepLayer`` = two 1x1 conv+BN+SiLU branches, three ``RepVggBlock`` (3x3 conv+BN plus
1x1 conv+BN, summed, SiLU) on the first, sum, then a 1x1 ``conv3`` when the expansion changes the width.

``RepVggBlock`` has a deploy form (one 3x3 conv with bias, ``conv``) reached with ``reparameterize()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct
from ..layers.conv_bn import fuse_bn
from .rt_detr_decoder import MultiHeadAttention

__all__ = [
    "CSPRepLayer",
    "HybridEncoder",
    "HybridEncoderWithMask",
    "MaskFeatFPN",
    "RepVggBlock",
    "TransformerEncoderLayer",
    "sincos_position_embedding",
]


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, act: str | None = "swish") -> ConvBNAct:
    return ConvBNAct(c_in, c_out, k, stride, act=act, bn_name="norm")


class RepVggBlock(nn.Module):
    """``silu(bn(conv3x3(x)) + bn(conv1x1(x)))``; ``deploy=True`` holds the fused 3x3 conv (``conv``)."""

    def __init__(self, channels: int, deploy: bool = False) -> None:
        super().__init__()
        self.channels = channels
        if deploy:
            self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        else:
            self.conv1 = _conv(channels, channels, 3, act=None)
            self.conv2 = _conv(channels, channels, 1, act=None)
        self.act = nn.SiLU()

    @property
    def deploy(self) -> bool:
        return hasattr(self, "conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.act(self.conv(x))
        return self.act(self.conv1(x) + self.conv2(x))

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel and bias equal to the two branches (eval-mode BatchNorms)."""
        k3, b3 = fuse_bn(self.conv1.conv.weight, self.conv1.norm)
        k1, b1 = fuse_bn(self.conv2.conv.weight, self.conv2.norm)
        return k3 + F.pad(k1, (1, 1, 1, 1)), b3 + b1

    def reparameterize(self) -> None:
        """Fuse the branches into ``conv`` (in place; idempotent)."""
        if self.deploy:
            return
        kernel, bias = self.fused_kernel_bias()
        conv = nn.Conv2d(self.channels, self.channels, 3, 1, 1).to(kernel)
        conv.weight.data.copy_(kernel)
        conv.bias.data.copy_(bias)
        del self.conv1, self.conv2
        self.conv = conv


class CSPRepLayer(nn.Module):
    """``conv3(bottlenecks(conv1(x)) + conv2(x))``: ``[B, C_in, H, W] -> [B, C_out, H, W]``."""

    def __init__(
        self, in_channels: int, out_channels: int, num_blocks: int = 3, expansion: float = 1.0, deploy: bool = False
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = _conv(in_channels, hidden, 1)
        self.conv2 = _conv(in_channels, hidden, 1)
        self.bottlenecks = nn.Sequential(*(RepVggBlock(hidden, deploy) for _ in range(num_blocks)))
        self.conv3 = _conv(hidden, out_channels, 1) if hidden != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


def sincos_position_embedding(
    h: int, w: int, dim: int, temperature: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``[1, H * W, dim]`` 2D sin-cos embedding, rows in ``y``-major order (float64 arithmetic)."""
    pos_dim = dim // 4
    omega = 1.0 / temperature ** (torch.arange(pos_dim, dtype=torch.float64, device=device) / pos_dim)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=device),
        torch.arange(w, dtype=torch.float64, device=device),
        indexing="ij",
    )
    out_y = grid_y.flatten().outer(omega)
    out_x = grid_x.flatten().outer(omega)
    emb = torch.cat([out_y.sin(), out_y.cos(), out_x.sin(), out_x.cos()], dim=1)
    return emb.to(dtype).unsqueeze(0)


class TransformerEncoderLayer(nn.Module):
    """Post-norm encoder layer (AIFI): ``[B, L, C]`` + position ``[1, L, C]`` -> ``[B, L, C]``."""

    def __init__(self, d_model: int = 256, num_heads: int = 8, dim_feedforward: int = 1024) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = src + pos
        src = self.norm1(src + self.self_attn(q, q, src))
        return self.norm2(src + self.linear2(F.gelu(self.linear1(src))))


class TransformerEncoder(nn.Module):
    """``num_layers`` encoder layers (``layers.{i}``)."""

    def __init__(self, num_layers: int, **layer_kwargs: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(**layer_kwargs) for _ in range(num_layers))

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            src = layer(src, pos)
        return src


class HybridEncoder(nn.Module):
    """Backbone maps ``[B, C_l, H_l, W_l]`` (strides 8/16/32) -> ``hidden_dim`` maps at the same strides."""

    def __init__(
        self,
        in_channels: tuple[int, ...] = (512, 1024, 2048),
        hidden_dim: int = 256,
        use_encoder_idx: tuple[int, ...] = (2,),
        num_encoder_layers: int = 1,
        num_heads: int = 8,
        dim_feedforward: int = 1024,
        expansion: float = 1.0,
        pe_temperature: float = 10000.0,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.use_encoder_idx = tuple(use_encoder_idx)
        self.pe_temperature = pe_temperature
        self.out_channels = [hidden_dim] * len(in_channels)
        self.input_proj = nn.ModuleList(_conv(c, hidden_dim, 1, act=None) for c in in_channels)
        self.encoder = nn.ModuleList(
            TransformerEncoder(
                num_encoder_layers, d_model=hidden_dim, num_heads=num_heads, dim_feedforward=dim_feedforward
            )
            for _ in self.use_encoder_idx
        )
        n = len(in_channels) - 1
        self.lateral_convs = nn.ModuleList(_conv(hidden_dim, hidden_dim, 1) for _ in range(n))
        self.fpn_blocks = nn.ModuleList(CSPRepLayer(2 * hidden_dim, hidden_dim, 3, expansion, deploy) for _ in range(n))
        self.downsample_convs = nn.ModuleList(_conv(hidden_dim, hidden_dim, 3, 2) for _ in range(n))
        self.pan_blocks = nn.ModuleList(CSPRepLayer(2 * hidden_dim, hidden_dim, 3, expansion, deploy) for _ in range(n))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        proj = [p(f) for p, f in zip(self.input_proj, feats, strict=True)]
        for encoder, idx in zip(self.encoder, self.use_encoder_idx, strict=True):
            x = proj[idx]
            b, c, h, w = x.shape
            pos = sincos_position_embedding(h, w, c, self.pe_temperature, x.device, x.dtype)
            y = encoder(x.flatten(2).transpose(1, 2), pos)
            proj[idx] = y.transpose(1, 2).reshape(b, c, h, w)
        n = len(proj) - 1
        inner = [proj[-1]]  # coarse -> fine
        for i, (lateral, block) in enumerate(zip(self.lateral_convs, self.fpn_blocks, strict=True)):
            top = lateral(inner[-1])
            inner[-1] = top
            up = F.interpolate(top, scale_factor=2.0, mode="nearest")
            inner.append(block(torch.cat([up, proj[n - i - 1]], dim=1)))
        inner.reverse()  # fine -> coarse
        outs = [inner[0]]
        for i, (down, block) in enumerate(zip(self.downsample_convs, self.pan_blocks, strict=True)):
            outs.append(block(torch.cat([down(outs[-1]), inner[i + 1]], dim=1)))
        return outs


class ScaleHead(nn.Module):
    """``log2(stride / base)`` (at least one) 3x3 conv+BN+SiLU layers, each followed by a bilinear 2x upsampling
    when ``stride != base`` (``layers`` holds both, as transformers' ``PPDocLayoutV3ScaleHead``)."""

    def __init__(self, in_channels: int, channels: int, stride: int, base_stride: int) -> None:
        super().__init__()
        n = max(1, int(math.log2(stride) - math.log2(base_stride)))
        layers: list[nn.Module] = []
        for k in range(n):
            layers.append(_conv(in_channels if k == 0 else channels, channels, 3))
            if stride != base_stride:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MaskFeatFPN(nn.Module):
    """Sum of per-level scale heads (upsampled to the finest level) -> 3x3 conv+BN+SiLU (PP-DocLayoutV3)."""

    def __init__(self, in_channels: list[int], strides: list[int], channels: int = 64, out_channels: int = 64) -> None:
        super().__init__()
        order = sorted(range(len(strides)), key=lambda i: strides[i])
        self.reorder_index = order
        self.scale_heads = nn.ModuleList(
            ScaleHead(in_channels[i], channels, strides[i], strides[order[0]]) for i in order
        )
        self.output_conv = _conv(channels, out_channels, 3)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = [feats[i] for i in self.reorder_index]
        out = self.scale_heads[0](x[0])
        for head, feat in zip(self.scale_heads[1:], x[1:], strict=True):
            out = out + F.interpolate(head(feat), size=out.shape[2:], mode="bilinear", align_corners=False)
        return self.output_conv(out)


class EncoderMaskOutput(nn.Module):
    """3x3 conv+BN+SiLU then a 1x1 conv (with bias) to ``num_prototypes`` mask prototypes."""

    def __init__(self, in_channels: int, num_prototypes: int) -> None:
        super().__init__()
        self.base_conv = _conv(in_channels, in_channels, 3)
        self.conv = nn.Conv2d(in_channels, num_prototypes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.base_conv(x))


class HybridEncoderWithMask(HybridEncoder):
    """PP-DocLayoutV3's encoder: :class:`HybridEncoder` plus mask prototypes ``[B, P, H / 4, W / 4]`` from the
    PAN outputs (``mask_feature_head``, upsampled 2x bilinear) and the stride-4 backbone map
    (``encoder_mask_lateral``), projected by ``encoder_mask_output``."""

    def __init__(
        self,
        in_channels: tuple[int, ...] = (512, 1024, 2048),
        x4_channels: int = 128,
        hidden_dim: int = 256,
        mask_channels: tuple[int, int] = (64, 64),
        num_prototypes: int = 32,
        deploy: bool = False,
    ) -> None:
        super().__init__(in_channels, hidden_dim, expansion=1.0, deploy=deploy)
        strides = [8, 16, 32]
        self.mask_feature_head = MaskFeatFPN([hidden_dim] * 3, strides, mask_channels[0], mask_channels[1])
        self.encoder_mask_lateral = _conv(x4_channels, mask_channels[1], 3)
        self.encoder_mask_output = EncoderMaskOutput(mask_channels[1], num_prototypes)

    def forward_with_mask(self, feats: list[torch.Tensor], x4: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        outs = super().forward(feats)
        mask = F.interpolate(self.mask_feature_head(outs), scale_factor=2, mode="bilinear", align_corners=False)
        mask = mask + self.encoder_mask_lateral(x4)
        return outs, self.encoder_mask_output(mask)
