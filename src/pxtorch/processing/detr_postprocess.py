"""DETR-family decoding: sigmoid scores, top-k over (query x class), normalised cxcywh -> pixel xyxy.

Equals PaddleDetection's ``DETRPostProcess`` (``use_focal_loss=True``) and transformers'
``RTDetrImageProcessor.post_process_object_detection(use_focal_loss=True)`` before its score threshold: the
scores are ``sigmoid(logits)`` flattened over ``[Q * C]``, the ``num_top_queries`` best are kept (label =
index mod C, query = index div C), and each box ``(cx, cy, w, h)`` becomes ``(cx - w/2, cy - h/2, cx + w/2,
cy + h/2)`` times ``(W, H, W, H)`` of the original image. Thresholds, NMS and box merging are the caller's
(PaddleX's layout rules).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["detr_postprocess"]


def detr_postprocess(
    logits: torch.Tensor | np.ndarray,
    boxes: torch.Tensor | np.ndarray,
    orig_sizes: Sequence[tuple[int, int]],
    num_top_queries: int = 300,
) -> list[np.ndarray]:
    """Decode a batch of DETR outputs.

    Args:
        logits: ``[B, Q, C]`` class logits.
        boxes: ``[B, Q, 4]`` normalised ``(cx, cy, w, h)``.
        orig_sizes: ``(h, w)`` of each original image (the boxes are scaled to it).
        num_top_queries: how many (query, class) pairs to keep per image (at most ``Q * C``).

    Returns:
        One float32 array ``[K, 6]`` per image, rows ``(cls_id, score, x1, y1, x2, y2)`` sorted by
        descending score, ``K = min(num_top_queries, Q * C)``.
    """
    logits_t = torch.as_tensor(logits).detach().float().cpu()
    boxes_t = torch.as_tensor(boxes).detach().float().cpu()
    if logits_t.dim() != 3 or boxes_t.dim() != 3 or boxes_t.shape[:2] != logits_t.shape[:2] or boxes_t.shape[2] != 4:
        raise ValueError(
            f"expected logits [B, Q, C] and boxes [B, Q, 4], got {tuple(logits_t.shape)}, {tuple(boxes_t.shape)}"
        )
    if len(orig_sizes) != logits_t.shape[0]:
        raise ValueError(f"{len(orig_sizes)} sizes for a batch of {logits_t.shape[0]}")
    num_classes = logits_t.shape[2]
    k = min(int(num_top_queries), logits_t.shape[1] * num_classes)
    cxcy, wh = boxes_t[..., :2], boxes_t[..., 2:]
    xyxy = torch.cat([cxcy - 0.5 * wh, cxcy + 0.5 * wh], dim=-1)
    sizes = torch.as_tensor([[w, h, w, h] for h, w in orig_sizes], dtype=xyxy.dtype)
    xyxy = xyxy * sizes[:, None, :]
    scores, index = torch.topk(torch.sigmoid(logits_t).flatten(1), k, dim=-1)
    labels = index % num_classes
    query = index // num_classes
    picked = xyxy.gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
    rows = torch.cat([labels.unsqueeze(-1).to(xyxy.dtype), scores.unsqueeze(-1), picked], dim=-1)
    return [r.numpy().astype(np.float32) for r in rows]
