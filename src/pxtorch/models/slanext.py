"""SLANeXt (SLANeXt_wired / SLANeXt_wireless) table structure recogniser: SAM-style ViT-B encoder -> SLA head.

Facts from transformers 5.x ``models/slanext`` (``SLANeXtForTableRecognition``, model_type ``slanext``) and
PaddleX ``table_structure_recognition/modeling/slanext.py`` (a ``Vary_VIT_B`` encoder, i.e. SAM's
``ImageEncoderViT``):

- patch embedding: Conv 16x16 stride 16 (3 -> 768) on a 512x512 input -> ``[B, 32, 32, 768]`` (channels
  last) plus a learned absolute position embedding ``[1, 32, 32, 768]``;
- 12 pre-norm transformer blocks (LayerNorm eps 1e-6, 12 heads, MLP 768 -> 3072 -> 768 with exact GELU),
  windowed attention (14x14 windows, the 32x32 grid zero-padded to 42x42) except the global blocks
  2, 5, 8, 11; every attention adds SAM's decomposed relative position terms (``rel_pos_h``/``rel_pos_w``);
- neck: Conv1x1 768 -> 256 (no bias), channels-first LayerNorm, Conv3x3 256 -> 256 (no bias), LayerNorm;
- ``net_2``: Conv3x3 stride 2 (256 -> 512, no bias) -> ``[B, 16*16, 512]`` flattened for the head;
- SLA head with ``hidden_size=512`` and the 50 classes of ``slanet_plus`` but **no loc (cell box) head**.

Module names follow the Paddle/SAM ones (``patch_embed.proj``, ``blocks.i.attn.qkv``, ``neck.0..3``,
``net_2``); :mod:`pxtorch.convert.hf_layout.slanext` maps them onto transformers' names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg
from .._registry import register_model
from .slanet import SLANET_PLUS_LABELS, SLAHead

__all__ = ["SLANeXt", "SLANeXtHead", "SLANeXtViT"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``[B, C, H, W]`` map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PatchEmbed(nn.Module):
    """``[B, 3, H, W]`` -> ``[B, H/p, W/p, D]`` (channels last)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def _rel_pos(size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative position table ``[2S-1, C]`` -> ``[S, S, C]`` for query/key length ``S`` (resized if needed)."""
    length = 2 * size - 1
    if rel_pos.shape[0] != length:
        rel_pos = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()
    coords = torch.arange(size, device=rel_pos.device)
    index = coords[:, None] - coords[None, :] + (size - 1)
    return rel_pos[index]


class Attention(nn.Module):
    """Multi-head self-attention with decomposed relative position terms.

    ``forward([B, H, W, D])`` -> ``[B, H, W, D]``.
    """

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)  # [B*nH, HW, c]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        rh = _rel_pos(h, self.rel_pos_h)  # [H, H, c]
        rw = _rel_pos(w, self.rel_pos_w)  # [W, W, c]
        rq = q.reshape(b * self.num_heads, h, w, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", rq, rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", rq, rw)
        attn = (attn.view(-1, h, w, h, w) + rel_h[..., None] + rel_w[..., None, :]).view(-1, h * w, h * w)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(out)


class MLPBlock(nn.Module):
    """``lin1 -> GELU -> lin2`` on the last dimension."""

    def __init__(self, dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.lin2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; ``window_size > 0`` attends inside zero-padded windows. ``[B, H, W, D]``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, window_size: int, grid: tuple[int, int], eps: float
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, grid if window_size == 0 else (window_size, window_size))
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLPBlock(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        ws = self.window_size
        if ws > 0:
            b, h, w, c = y.shape
            ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
            y = F.pad(y, (0, 0, 0, pw, 0, ph))
            hp, wp = h + ph, w + pw
            y = y.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)
            y = self.attn(y)
            y = y.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
            y = y[:, :h, :w, :]
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class SLANeXtViT(nn.Module):
    """SAM-style ViT encoder + neck + ``net_2``: ``[B, 3, S, S]`` -> ``[B, (S/32)^2, out_channels]``."""

    def __init__(
        self,
        img_size: int = 512,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        neck_channels: int = 256,
        out_channels: int = 512,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        grid = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0], grid[1], embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_dim, 0 if i in global_attn_indexes else window_size, grid, eps)
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, neck_channels, 1, bias=False),
            LayerNorm2d(neck_channels, eps=eps),
            nn.Conv2d(neck_channels, neck_channels, 3, padding=1, bias=False),
            LayerNorm2d(neck_channels, eps=eps),
        )
        self.net_2 = nn.Conv2d(neck_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.out_channels = out_channels
        self.feature_info: list[dict] = [
            dict(num_chs=neck_channels, reduction=patch_size, module="neck"),
            dict(num_chs=out_channels, reduction=2 * patch_size, module="net_2"),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if x.shape[1:3] != self.pos_embed.shape[1:3]:
            raise ValueError(
                f"SLANeXt: input grid {tuple(x.shape[1:3])} does not match the position embedding "
                f"{tuple(self.pos_embed.shape[1:3])}; use the model's input size"
            )
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.net_2(self.neck(x.permute(0, 3, 1, 2)))
        return x.flatten(2).transpose(1, 2).contiguous()


class SLANeXtHead(SLAHead):
    """:class:`~pxtorch.models.slanet.SLAHead` without the loc head (SLANeXt predicts the structure only).

    ``forward(feats [B, N, C], targets=None)`` -> ``(structure_probs [B, T, K], loc [B, T, 0])``: the loc
    output is an empty tensor so that the table pipeline's ``(structure, loc)`` contract holds.
    """

    def __init__(self, in_channels: int, hidden_size: int = 512, num_classes: int = 50, max_text_length: int = 500):
        super().__init__(in_channels, hidden_size, num_classes, max_text_length, loc_reg_num=1)
        del self.loc_generator

    def _step(
        self, hidden: torch.Tensor, feats: torch.Tensor, feats_proj: torch.Tensor, chars: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        onehot = F.one_hot(chars, self.num_classes).to(feats.dtype)
        hidden, _ = self.structure_attention_cell(hidden, feats, onehot, feats_proj)
        return hidden, self.structure_generator(hidden), hidden.new_zeros(hidden.shape[0], 0)


class SLANeXt(nn.Module):
    """Table structure recogniser. ``forward([B, 3, 512, 512])`` -> ``(structure_probs [B, T, 50], loc [B, T, 0])``.

    ``structure_probs`` are softmax probabilities over :data:`~pxtorch.models.slanet.SLANET_PLUS_LABELS`
    (greedy decoding, ``T <= max_text_length + 1 = 501``, stopping once every item emitted ``eos``). SLANeXt has
    no cell-box head: ``loc`` is an empty ``[B, T, 0]`` tensor, kept for the ``(structure, loc)`` contract of
    SLANet_plus. ``forward(x, targets)`` decodes with teacher forcing (training).
    """

    outputs_probabilities = True

    def __init__(self, backbone: SLANeXtViT, head: SLANeXtHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_info = prefixed_feature_info(backbone.feature_info)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> encoder features ``[B, (S/32)^2, 512]``."""
        return self.backbone(image_input(x))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.forward_features(x), targets)


def _create_slanext(variant: str, pretrained: bool = False, **kwargs) -> SLANeXt:
    def build(
        img_size: int = 512,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        neck_channels: int = 256,
        out_channels: int = 512,
        hidden_size: int = 512,
        num_classes: int = 50,
        max_text_length: int = 500,
        deploy: bool = False,
    ) -> SLANeXt:
        # ``deploy`` is accepted for a uniform API; SLANeXt has no re-parameterisable branches.
        backbone = SLANeXtViT(
            img_size,
            patch_size,
            embed_dim,
            depth,
            num_heads,
            mlp_dim,
            window_size,
            tuple(global_attn_indexes),
            neck_channels,
            out_channels,
        )
        head = SLANeXtHead(out_channels, hidden_size, num_classes, max_text_length)
        return SLANeXt(backbone, head)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs: dict[str, dict] = dict(slanext_wired={}, slanext_wireless={})


def _cfg(variant: str, paddlex_name: str, kind: str) -> PretrainedCfg:
    return PretrainedCfg(
        architecture=variant,
        task="table_structure_recognition",
        paddlex_name=paddlex_name,
        paddleocr_name=None,
        description=f"{paddlex_name} table structure recogniser ({kind} tables; SAM ViT-B encoder + SLA head)",
        preprocess=PreprocessCfg(
            channel_order="BGR",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            resize="long_side_pad",
            input_size=(3, 512, 512),
        ),
        num_classes=50,
        labels=SLANET_PLUS_LABELS,
        weight_form="train",
        license="Apache-2.0",
        origin_url=f"https://huggingface.co/PaddlePaddle/{paddlex_name}_safetensors",
        postprocess=dict(max_text_length=500, merge_no_span_structure=True),
        hf_hub_id=f"PaddlePaddle/{paddlex_name}_safetensors",
        hf_hub_layout="paddle-hf",
        sources=(),
    )


default_cfgs = {
    "slanext_wired": _cfg("slanext_wired", "SLANeXt_wired", "wired (bordered)"),
    "slanext_wireless": _cfg("slanext_wireless", "SLANeXt_wireless", "wireless (borderless)"),
}


@register_model
def slanext_wired(pretrained: bool = False, **kwargs) -> SLANeXt:
    return _create_slanext("slanext_wired", pretrained, **kwargs)


@register_model
def slanext_wireless(pretrained: bool = False, **kwargs) -> SLANeXt:
    return _create_slanext("slanext_wireless", pretrained, **kwargs)
