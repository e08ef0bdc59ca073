"""PaddleX's layout post-processing after a detector (``DetPostProcess.apply``).

Source: PaddleX ``paddlex/inference/models/object_detection/processors.py`` (Apache-2.0). Input is a
``[N, 6]`` array of rows ``(cls_id, score, x1, y1, x2, y2)`` in source pixels; the steps, in PaddleX order:

1. ``threshold``: a float keeps ``score > threshold``; a dict ``{cls_id: th}`` does that per class (classes
   missing from the dict use 0.5) and regroups the rows by class id ascending.
2. ``layout_nms``: greedy NMS over all classes by descending score; a box is dropped when its IoU with a kept
   box is ``>= 0.6`` (same class) or ``>= 0.98`` (other class); IoU with ``+1`` pixel areas. Rows come out
   in descending score order.
3. Large-image filter (models with an ``image`` label): with more than one box, an ``image`` box covering
   more than 82% (landscape, ``w > h``) or 93% of the page is dropped, unless that would drop everything.
4. ``layout_merge_bboxes_mode``: box *i* is "contained" in *j* when ``inter / area(i) >= 0.9``; a
   ``formula`` box is never contained in a non-formula box. ``"large"`` drops contained boxes;
   ``"small"`` drops boxes that contain another unless they are themselves contained; ``"union"`` keeps all.
   A dict ``{cls_id: mode}`` applies ``"large"`` only to containers of that class and ``"small"`` only to
   boxes of that class, and-ing the keep masks.
5. ``layout_unclip_ratio``: scale width and height about the centre by ``r``, ``(rw, rh)`` or, per class,
   ``{cls_id: (rw, rh)}``.
6. Clip to the image; boxes with no area left are dropped.

Deviations: an ``int`` threshold counts as a float (PaddleX silently skips filtering for ints), and an empty
result after any step returns ``[]`` instead of failing on an empty array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_containment",
    "filter_large_image",
    "layout_nms_keep",
    "layout_postprocess",
    "merge_boxes",
    "restructure_boxes",
    "threshold_boxes",
    "unclip_boxes",
]

MERGE_MODES = ("union", "large", "small")


def threshold_boxes(boxes: np.ndarray, threshold: float | Mapping[int, float]) -> np.ndarray:
    """Step 1: score filter (float, or ``{cls_id: th}`` with 0.5 for classes not listed)."""
    if isinstance(threshold, Mapping):
        parts = []
        for cat in np.unique(boxes[:, 0]):
            cat_boxes = boxes[boxes[:, 0] == cat]
            th = float(threshold.get(int(cat), 0.5))
            parts.append(cat_boxes[(cat_boxes[:, 1] > th) & (cat_boxes[:, 0] > -1)])
        return np.vstack(parts) if parts else boxes[:0]
    th = float(threshold)
    return boxes[(boxes[:, 1] > th) & (boxes[:, 0] > -1)]


def _iou_plus1(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area_a + area_b - inter))


def layout_nms_keep(boxes: np.ndarray, iou_same: float = 0.6, iou_diff: float = 0.98) -> list[int]:
    """Step 2: indices kept, best score first (PaddleX ``nms``)."""
    order = list(np.argsort(boxes[:, 1])[::-1])
    keep: list[int] = []
    while order:
        cur = int(order[0])
        keep.append(cur)
        rest = []
        for i in order[1:]:
            th = iou_same if boxes[cur, 0] == boxes[i, 0] else iou_diff
            if _iou_plus1(boxes[cur, 2:], boxes[i, 2:]) < th:
                rest.append(i)
        order = rest
    return keep


def filter_large_image(boxes: np.ndarray, img_size: tuple[int, int], labels: Sequence[str]) -> np.ndarray:
    """Step 3: drop page-sized ``image`` boxes; ``img_size`` is ``(w, h)``."""
    if len(boxes) <= 1 or "image" not in labels:
        return boxes
    image_index = list(labels).index("image")
    w, h = img_size
    area_thres = 0.82 if w > h else 0.93
    keep = []
    for box in boxes:
        if box[0] == image_index:
            x1, y1 = max(0.0, box[2]), max(0.0, box[3])
            x2, y2 = min(float(w), box[4]), min(float(h), box[5])
            if (x2 - x1) * (y2 - y1) > area_thres * w * h:
                continue
        keep.append(box)
    return np.array(keep) if keep else boxes


def _contained(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` lies (90% of its area) inside ``b``; rows ``(cls, score, x1, y1, x2, y2)``."""
    area = (a[4] - a[2]) * (a[5] - a[3])
    iw = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
    ih = max(0.0, min(a[5], b[5]) - max(a[3], b[3]))
    return (iw * ih / area if area > 0 else 0) >= 0.9


def check_containment(
    boxes: np.ndarray, formula_index: int | None = None, category_index: int | None = None, mode: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(contains_other, contained_by_other)`` 0/1 flags per box (PaddleX ``check_containment``)."""
    n = len(boxes)
    contains = np.zeros(n, dtype=int)
    contained = np.zeros(n, dtype=int)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if formula_index is not None and boxes[i][0] == formula_index and boxes[j][0] != formula_index:
                continue
            if category_index is not None and mode is not None:
                relevant = (mode == "large" and boxes[j][0] == category_index) or (
                    mode == "small" and boxes[i][0] == category_index
                )
                if not relevant:
                    continue
            if _contained(boxes[i], boxes[j]):
                contained[i] = 1
                contains[j] = 1
    return contains, contained


def merge_boxes(boxes: np.ndarray, mode: str | Mapping[int, str], labels: Sequence[str]) -> np.ndarray:
    """Step 4: ``"large"`` / ``"small"`` / ``"union"`` or ``{cls_id: mode}``."""
    formula_index = list(labels).index("formula") if "formula" in labels else None
    if isinstance(mode, str):
        if mode not in MERGE_MODES:
            raise ValueError(f"layout_merge_bboxes_mode must be one of {MERGE_MODES} or a dict, got {mode!r}")
        if mode == "union":
            return boxes
        contains, contained = check_containment(boxes, formula_index)
        return boxes[contained == 0] if mode == "large" else boxes[(contains == 0) | (contained == 1)]
    keep = np.ones(len(boxes), dtype=bool)
    for cat, cat_mode in mode.items():
        if cat_mode not in MERGE_MODES:
            raise ValueError(f"layout_merge_bboxes_mode values must be one of {MERGE_MODES}, got {cat_mode!r}")
        if cat_mode == "union":
            continue
        contains, contained = check_containment(boxes, formula_index, cat, cat_mode)
        keep &= (contained == 0) if cat_mode == "large" else ((contains == 0) | (contained == 1))
    return boxes[keep]


def _unclip_row(row: np.ndarray, rw: float, rh: float) -> list[float]:
    w, h = row[4] - row[2], row[5] - row[3]
    cx, cy = row[2] + w / 2, row[3] + h / 2
    nw, nh = w * rw, h * rh
    return [row[0], row[1], cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2]


def unclip_boxes(boxes: np.ndarray, ratio: float | Sequence[float] | Mapping[int, Sequence[float]]) -> np.ndarray:
    """Step 5: scale each box about its centre (``r``, ``(rw, rh)`` or ``{cls_id: (rw, rh)}``)."""
    if isinstance(ratio, Mapping):
        rows = [_unclip_row(b, *ratio[int(b[0])]) if int(b[0]) in ratio else list(b) for b in boxes]
        return np.array(rows, dtype=np.float64).reshape(-1, 6)
    rw, rh = (float(ratio), float(ratio)) if isinstance(ratio, (int, float)) else (float(ratio[0]), float(ratio[1]))
    return np.array([_unclip_row(b, rw, rh) for b in boxes], dtype=np.float64).reshape(-1, 6)


def restructure_boxes(boxes: np.ndarray, labels: Sequence[str], img_size: tuple[int, int]) -> list[dict[str, Any]]:
    """Step 6: ``[{cls_id, label, score, coordinate: [x1, y1, x2, y2]}]`` clipped to ``img_size = (w, h)``."""
    w, h = img_size
    out = []
    for box in boxes:
        x1, y1 = max(0.0, float(box[2])), max(0.0, float(box[3]))
        x2, y2 = min(float(w), float(box[4])), min(float(h), float(box[5]))
        if x2 <= x1 or y2 <= y1:
            continue
        cls_id = int(box[0])
        out.append({"cls_id": cls_id, "label": labels[cls_id], "score": float(box[1]), "coordinate": [x1, y1, x2, y2]})
    return out


def _check_unclip(ratio: Any) -> Any:
    if ratio is None or isinstance(ratio, Mapping):
        return ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, tuple, list)):
        raise ValueError(f"layout_unclip_ratio must be a float, (w, h) or a dict, got {ratio!r}")
    if isinstance(ratio, (tuple, list)) and len(ratio) != 2:
        raise ValueError(f"layout_unclip_ratio as a sequence must have 2 entries (w, h), got {ratio!r}")
    return ratio


def layout_postprocess(
    boxes: np.ndarray,
    img_size: tuple[int, int],
    labels: Sequence[str],
    threshold: float | Mapping[int, float] = 0.5,
    layout_nms: bool | None = None,
    layout_unclip_ratio: float | Sequence[float] | Mapping[int, Sequence[float]] | None = None,
    layout_merge_bboxes_mode: str | Mapping[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Detector rows ``[N, 6]`` -> PaddleX ``boxes`` (see the module doc for the steps).

    Args:
        boxes: rows ``(cls_id, score, x1, y1, x2, y2)`` in source pixels.
        img_size: the source image ``(width, height)``.
        labels: class names indexed by ``cls_id``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    layout_unclip_ratio = _check_unclip(layout_unclip_ratio)
    boxes = threshold_boxes(boxes, threshold)
    if layout_nms and len(boxes):
        boxes = boxes[layout_nms_keep(boxes)]
    if len(boxes) > 1:
        boxes = filter_large_image(boxes, img_size, labels)
    if layout_merge_bboxes_mode and len(boxes):
        boxes = merge_boxes(boxes, layout_merge_bboxes_mode, labels)
    if len(boxes) == 0:
        return []
    if layout_unclip_ratio:
        boxes = unclip_boxes(boxes, layout_unclip_ratio)
    return restructure_boxes(boxes, labels, img_size)
