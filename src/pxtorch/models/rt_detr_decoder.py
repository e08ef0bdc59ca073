"""RT-DETR transformer: query selection from the encoder memory and the deformable-attention decoder.

Facts from PaddleDetection ``ppdet/modeling/transformers/rtdetr_transformer.py`` and
``deformable_transformer.py`` (Apache-2.0) and transformers' ``modeling_rt_detr.py`` (the numerical
reference): decoder input projections (1x1 conv + BN per level); anchors at cell centres with side
``0.05 * 2**level``, kept where every coordinate lies in ``(0.01, 0.99)`` (``logit`` of the anchor; the
others get the largest float, and the memory is zeroed there before ``enc_output``); ``enc_score_head`` /
``enc_bbox_head`` (3-layer MLP, added to the anchor logits); top-``num_queries`` over the best class score;
the selected memory rows are the decoder queries and the selected boxes the initial references; each decoder
layer is post-norm self-attention (query position = ``query_pos_head(ref)``, a 2-layer MLP on the sigmoid
boxes), multi-scale deformable cross-attention (offsets scaled by ``wh / n_points * 0.5``, bilinear sampling
with zero padding, ``align_corners=False``) and a ReLU FFN; iterative refinement
``ref = sigmoid(bbox_head_i(h) + logit(ref))``. Module names follow PaddleDetection (``self_attn``,
``cross_attn``, ``norm1..3``, ``linear1/2``, ``dec_score_head``, ``dec_bbox_head``). Inference only: the
denoising queries are not built, but ``denoising_class_embed`` is kept so checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct

__all__ = [
    "MLP",
    "DocLayoutV3Transformer",
    "GlobalPointer",
    "MSDeformableAttention",
    "MultiHeadAttention",
    "RTDETRTransformer",
    "TransformerDecoderLayer",
    "inverse_sigmoid",
    "multi_scale_deformable_attention",
]


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``log(x / (1 - x))`` with both terms clamped to ``[eps, 1]`` (``x`` clamped to ``[0, 1]`` first)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (``layers.{i}``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        outs = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, outs, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MultiHeadAttention(nn.Module):
    """Softmax attention with separate ``q_proj/k_proj/v_proj/out_proj``: ``[B, L, C] -> [B, L, C]``."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        b, n, _ = query.shape
        shape = (b, -1, self.num_heads, self.head_dim)
        q = self.q_proj(query).view(shape).transpose(1, 2)
        k = self.k_proj(key).view(shape).transpose(1, 2)
        v = self.v_proj(value).view(shape).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.scaling, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, -1)
        return self.out_proj(out)


def multi_scale_deformable_attention(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Pure-PyTorch multi-scale deformable attention (``F.grid_sample``).

    Args:
        value: ``[B, S, heads, D]``, the levels' ``H_l * W_l`` rows concatenated.
        spatial_shapes: ``(H_l, W_l)`` per level.
        sampling_locations: ``[B, Q, heads, levels, points, 2]`` normalised ``(x, y)`` in ``[0, 1]``.
        attention_weights: ``[B, Q, heads, levels, points]`` (softmaxed over levels x points).

    Returns:
        ``[B, Q, heads * D]``.
    """
    b, _, heads, dim = value.shape
    _, q, _, levels, points, _ = sampling_locations.shape
    grids = 2 * sampling_locations - 1
    samples = []
    start = 0
    for level, (h, w) in enumerate(spatial_shapes):
        v = value[:, start : start + h * w].flatten(2).transpose(1, 2).reshape(b * heads, dim, h, w)
        start += h * w
        grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # [B * heads, Q, points, 2]
        samples.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (torch.stack(samples, dim=-2).flatten(-2) * weights).sum(-1).view(b, heads * dim, q)
    return out.transpose(1, 2)


class MSDeformableAttention(nn.Module):
    """Deformable cross-attention over the flattened multi-scale memory, reference boxes ``(cx, cy, w, h)``."""

    def __init__(self, embed_dim: int = 256, num_heads: int = 8, num_levels: int = 3, num_points: int = 4) -> None:
        super().__init__()
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """``query [B, Q, C]``, ``reference_points [B, Q, 1, 4]``, ``value [B, S, C]`` -> ``[B, Q, C]``."""
        b, q, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        v = self.value_proj(value).view(b, value.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).view(b, q, heads, levels, points, 2)
        weights = self.attention_weights(query).view(b, q, heads, levels * points)
        weights = torch.softmax(weights, dim=-1).view(b, q, heads, levels, points)
        ref = reference_points[:, :, None, :, None, :]
        locations = ref[..., :2] + offsets / points * ref[..., 2:] * 0.5
        return self.output_proj(multi_scale_deformable_attention(v, spatial_shapes, locations, weights))


class TransformerDecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, deformable cross-attention, ReLU FFN."""

    def __init__(
        self,
        d_model: int = 256,
        num_heads: int = 8,
        dim_feedforward: int = 1024,
        num_levels: int = 3,
        num_points: int = 4,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformableAttention(d_model, num_heads, num_levels, num_points)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(
        self,
        tgt: torch.Tensor,
        reference_points: torch.Tensor,
        memory: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt))
        tgt = self.norm2(tgt + self.cross_attn(tgt + query_pos, reference_points, memory, spatial_shapes))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class TransformerDecoder(nn.Module):
    """``num_layers`` decoder layers (``layers.{i}``)."""

    def __init__(self, num_layers: int, **layer_kwargs: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerDecoderLayer(**layer_kwargs) for _ in range(num_layers))


def generate_anchors(
    spatial_shapes: list[tuple[int, int]], grid_size: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor logits ``[1, S, 4]`` (invalid ones = the dtype's max) and the validity mask ``[1, S, 1]``."""
    anchors = []
    for level, (h, w) in enumerate(spatial_shapes):
        ys = torch.arange(h, device=device).to(dtype)
        xs = torch.arange(w, device=device).to(dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        cx = (grid_x + 0.5) / w
        cy = (grid_y + 0.5) / h
        wh = torch.full_like(cx, grid_size * 2.0**level)
        anchors.append(torch.stack([cx, cy, wh, wh], dim=-1).reshape(1, h * w, 4))
    eps = 1e-2
    anchor = torch.cat(anchors, dim=1)
    valid = ((anchor > eps) & (anchor < 1 - eps)).all(-1, keepdim=True)
    logits = torch.log(anchor / (1 - anchor))
    logits = torch.where(valid, logits, torch.full((), torch.finfo(dtype).max, dtype=dtype, device=device))
    return logits, valid


class RTDETRTransformer(nn.Module):
    """Query selection + decoder: encoder feature maps ``[B, C, H_l, W_l]`` -> ``(logits [B, Q, K],
    boxes [B, Q, 4])`` with boxes normalised ``(cx, cy, w, h)``."""

    def __init__(
        self,
        num_classes: int,
        hidden_dim: int = 256,
        num_queries: int = 300,
        in_channels: tuple[int, ...] = (256, 256, 256),
        num_decoder_layers: int = 6,
        num_heads: int = 8,
        dim_feedforward: int = 1024,
        num_points: int = 4,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_queries = num_queries
        levels = len(in_channels)
        self.input_proj = nn.ModuleList(ConvBNAct(c, hidden_dim, 1, bn_name="norm") for c in in_channels)
        self.decoder = TransformerDecoder(
            num_decoder_layers,
            d_model=hidden_dim,
            num_heads=num_heads,
            dim_feedforward=dim_feedforward,
            num_levels=levels,
            num_points=num_points,
        )
        self.denoising_class_embed = nn.Embedding(num_classes + 1, hidden_dim, padding_idx=num_classes)
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, num_layers=2)
        self.enc_output = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim))
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, num_layers=3)
        self.dec_score_head = nn.ModuleList(nn.Linear(hidden_dim, num_classes) for _ in range(num_decoder_layers))
        self.dec_bbox_head = nn.ModuleList(MLP(hidden_dim, hidden_dim, 4, 3) for _ in range(num_decoder_layers))

    def flatten_memory(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Project each level and flatten: ``[B, S, C]`` and the ``(H, W)`` of each level."""
        sources, shapes = [], []
        for proj, feat in zip(self.input_proj, feats, strict=True):
            x = proj(feat)
            shapes.append((x.shape[2], x.shape[3]))
            sources.append(x.flatten(2).transpose(1, 2))
        return torch.cat(sources, dim=1), shapes

    def encoder_proposals(
        self, memory: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder head on every memory row: ``(output_memory [B, S, C], class logits [B, S, K],
        box logits [B, S, 4])`` (box logits include the anchors)."""
        anchors, valid = generate_anchors(shapes, 0.05, memory.device, memory.dtype)
        output_memory = self.enc_output(valid.to(memory.dtype) * memory)
        return output_memory, self.enc_score_head(output_memory), self.enc_bbox_head(output_memory) + anchors

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        memory, shapes = self.flatten_memory(feats)
        output_memory, enc_logits, enc_boxes = self.encoder_proposals(memory, shapes)
        topk = torch.topk(enc_logits.max(-1).values, self.num_queries, dim=1).indices
        ref_unact = enc_boxes.gather(1, topk.unsqueeze(-1).expand(-1, -1, enc_boxes.shape[-1]))
        tgt = output_memory.gather(1, topk.unsqueeze(-1).expand(-1, -1, output_memory.shape[-1]))
        ref = torch.sigmoid(ref_unact)
        for i, layer in enumerate(self.decoder.layers):
            tgt = layer(tgt, ref.unsqueeze(2), memory, shapes, self.query_pos_head(ref))
            ref = torch.sigmoid(self.dec_bbox_head[i](tgt) + inverse_sigmoid(ref))
        return self.dec_score_head[-1](tgt), ref


class GlobalPointer(nn.Module):
    """Pairwise reading-order scores ``q_i . k_j / sqrt(d)``, the lower triangle (j <= i) set to -1e4."""

    def __init__(self, d_model: int = 256, head_size: int = 64) -> None:
        super().__init__()
        self.head_size = head_size
        self.dense = nn.Linear(d_model, 2 * head_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, C] -> [B, L, L]``."""
        b, n, _ = x.shape
        q, k = self.dense(x).reshape(b, n, 2, self.head_size).unbind(dim=2)
        logits = q @ k.transpose(-2, -1) / self.head_size**0.5
        lower = torch.tril(torch.ones(n, n, dtype=torch.bool, device=x.device))
        return logits.masked_fill(lower, -1e4)


def mask_to_box(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Normalised ``(cx, cy, w, h)`` of the pixels set in each ``[..., H, W]`` mask (all zeros when empty)."""
    h, w = mask.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, device=mask.device), torch.arange(w, device=mask.device), indexing="ij")
    xs, ys = xs.to(dtype), ys.to(dtype)
    big = torch.full((), torch.finfo(dtype).max, dtype=dtype, device=mask.device)
    x_in, y_in = xs * mask, ys * mask
    x_max = x_in.flatten(-2).max(-1).values + 1
    x_min = torch.where(mask, x_in, big).flatten(-2).min(-1).values
    y_max = y_in.flatten(-2).max(-1).values + 1
    y_min = torch.where(mask, y_in, big).flatten(-2).min(-1).values
    box = torch.stack([x_min, y_min, x_max, y_max], dim=-1) * mask.any(dim=(-2, -1)).unsqueeze(-1)
    box = box / torch.tensor([w, h, w, h], device=mask.device, dtype=dtype)
    x0, y0, x1, y1 = box.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


class DocLayoutV3Transformer(RTDETRTransformer):
    """PP-DocLayoutV3's decoder: as :class:`RTDETRTransformer`, but the class/box heads are shared with the
    encoder heads (``enc_score_head`` / ``enc_bbox_head``) and applied after ``decoder_norm``; the initial
    references are the boxes of the selected queries' masks (``mask_query_head`` x prototypes > 0); the last
    layer also gives mask logits and reading-order logits (``decoder_order_head`` + ``decoder_global_pointer``).
    """

    def __init__(self, num_classes: int, num_prototypes: int = 32, pointer_head_size: int = 64, **kwargs) -> None:
        super().__init__(num_classes, **kwargs)
        del self.dec_score_head, self.dec_bbox_head
        d = self.enc_output[0].in_features
        self.denoising_class_embed = nn.Embedding(num_classes, d)  # no padding row in this model
        self.decoder_norm = nn.LayerNorm(d)
        self.mask_query_head = MLP(d, d, num_prototypes, num_layers=3)
        self.decoder_order_head = nn.ModuleList(nn.Linear(d, d) for _ in self.decoder.layers)
        self.decoder_global_pointer = GlobalPointer(d, pointer_head_size)

    def _masks(self, query: torch.Tensor, mask_feat: torch.Tensor) -> torch.Tensor:
        b, q, _ = query.shape
        emb = self.mask_query_head(query)
        return torch.bmm(emb, mask_feat.flatten(2)).reshape(b, q, *mask_feat.shape[2:])

    def forward(  # type: ignore[override]
        self, feats: list[torch.Tensor], mask_feat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> ``(logits [B, Q, K], boxes [B, Q, 4], order_logits [B, Q, Q], masks [B, Q, H / 4, W / 4])``."""
        memory, shapes = self.flatten_memory(feats)
        output_memory, enc_logits, _ = self.encoder_proposals(memory, shapes)
        topk = torch.topk(enc_logits.max(-1).values, self.num_queries, dim=1).indices
        tgt = output_memory.gather(1, topk.unsqueeze(-1).expand(-1, -1, output_memory.shape[-1]))
        init_masks = self._masks(self.decoder_norm(tgt), mask_feat)
        ref = torch.sigmoid(inverse_sigmoid(mask_to_box(init_masks > 0, tgt.dtype)))
        for layer in self.decoder.layers:
            tgt = layer(tgt, ref.unsqueeze(2), memory, shapes, self.query_pos_head(ref))
            ref = torch.sigmoid(self.enc_bbox_head(tgt) + inverse_sigmoid(ref))
        out = self.decoder_norm(tgt)
        order = self.decoder_global_pointer(self.decoder_order_head[-1](out))
        return self.enc_score_head(out), ref, order, self._masks(out, mask_feat)
