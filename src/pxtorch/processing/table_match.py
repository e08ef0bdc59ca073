"""OCR lines -> table cells -> ``pred_html`` (PaddleX ``table_recognition`` v1 post-processing).

Rules from PaddleX ``pipelines/table_recognition/table_recognition_post_processing.py`` and
``layout_parsing/utils.py``:

- the table's OCR lines are those whose ``rec_boxes`` overlap the table box by more than 3 px in both
  directions (``get_sub_regions_ocr_res``), kept in the overall OCR order;
- cell boxes (8 corner values, ``int``) are shifted by the table crop's top-left, turned into
  ``[x1, y1, x2, y2]`` by min/max and clipped to the image;
- each OCR box goes to the cell with the smallest ``(1 - IoU, L1 distance)``, where the distance is
  ``|Δx1| + |Δy1| + |Δx2| + |Δy2| + min(|Δx1| + |Δy1|, |Δx2| + |Δy2|)`` (first minimum wins);
- a cell's texts are joined in OCR order (optionally sorted by y-projection): with several texts, a leading
  space, ``<b>``/``</b>`` are stripped and a space is put between texts; texts are HTML-escaped; a cell
  whose first text starts with ``<b>`` is wrapped in ``<b>…</b>``;
- a table with no cell or no OCR line gets ``" ".join(structure)`` as its HTML.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "box_distance",
    "box_iou",
    "cells_to_image_boxes",
    "get_html_result",
    "match_table_and_ocr",
    "neighbor_text_indices",
    "sub_region_ocr",
    "table_recognition_result",
]


def box_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """PaddleX's L1 box distance (corner sum plus the smaller corner pair)."""
    d1 = abs(b[0] - a[0]) + abs(b[1] - a[1])
    d2 = abs(b[2] - a[2]) + abs(b[3] - a[3])
    return d1 + d2 + min(d1, d2)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (0 when they do not intersect with positive area)."""
    left, right = max(a[0], b[0]), min(a[2], b[2])
    top, bottom = max(a[1], b[1]), min(a[3], b[3])
    if left >= right or top >= bottom:
        return 0.0
    inter = (right - left) * (bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def _overlap_indices(src: np.ndarray, ref: np.ndarray, min_overlap: float = 3) -> list[int]:
    if len(src) == 0:
        return []
    w = np.minimum(ref[2], src[:, 2]) - np.maximum(ref[0], src[:, 0])
    h = np.minimum(ref[3], src[:, 3]) - np.maximum(ref[1], src[:, 1])
    return [int(i) for i in np.where((w > min_overlap) & (h > min_overlap))[0]]


def sub_region_ocr(ocr: dict[str, Any], box: Sequence[float]) -> dict[str, Any]:
    """The OCR lines of ``ocr`` (``rec_polys/rec_texts/rec_scores/rec_boxes``) overlapping ``box`` by > 3 px."""
    boxes = np.asarray(ocr["rec_boxes"]).reshape(-1, 4)
    keep = set(_overlap_indices(boxes, np.asarray(box, dtype=np.float64)))
    idx = [i for i in range(len(boxes)) if i in keep]
    return {
        "rec_polys": [ocr["rec_polys"][i] for i in idx],
        "rec_texts": [ocr["rec_texts"][i] for i in idx],
        "rec_scores": np.asarray([ocr["rec_scores"][i] for i in idx], dtype=np.float32),
        "rec_boxes": np.asarray([boxes[i] for i in idx], dtype=boxes.dtype).reshape(-1, 4),
    }


def neighbor_text_indices(boxes: np.ndarray, table_box: Sequence[float]) -> list[int]:
    """OCR lines just above/at the top edge of a table (PaddleX ``get_neighbor_boxes_idx``)."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    if len(boxes) == 0:
        return []
    w = np.minimum(table_box[2], boxes[:, 2]) - np.maximum(table_box[0], boxes[:, 0])
    h = np.minimum(table_box[3], boxes[:, 3]) - np.maximum(table_box[1], boxes[:, 1])
    return [int(i) for i in np.where((w > 0) & (h < 3) & (h > -15))[0]]


def cells_to_image_boxes(bbox: np.ndarray, offset: tuple[float, float], image_size: tuple[int, int]) -> np.ndarray:
    """Cell corners ``[N, 8]`` of a table crop -> ``[N, 4]`` xyxy boxes in the full image, clipped.

    ``offset`` is the crop's ``(x, y)`` top-left; ``image_size`` the full image's ``(height, width)``.
    """
    if len(bbox) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    pts = np.asarray(bbox, dtype=np.float64).reshape(-1, 4, 2) + np.asarray(offset, dtype=np.float64)
    boxes = np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
    h, w = image_size
    return np.clip(boxes, 0, [w, h, w, h])


def _y_projection_order(boxes: list[Sequence[float]], thresh: float = 0.7) -> list[int]:
    """Indices of ``boxes`` grouped into lines by vertical overlap, lines top-down, boxes left-right."""
    if not boxes:
        return []
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1])
    lines: list[list[int]] = [[order[0]]]
    y0, y1 = boxes[order[0]][1], boxes[order[0]][3]
    for i in order[1:]:
        b0, b1 = boxes[i][1], boxes[i][3]
        overlap = max(0, min(y1, b1) - max(y0, b0))
        min_h = min(y1 - y0, b1 - b0)
        if min_h > 0 and overlap / min_h > thresh:
            lines[-1].append(i)
            y0, y1 = min(y0, b0), max(y1, b1)
        else:
            lines.append([i])
            y0, y1 = b0, b1
    return [i for line in lines for i in sorted(line, key=lambda k: boxes[k][0])]


def match_table_and_ocr(
    cell_boxes: Sequence[Sequence[float]], ocr_boxes: Sequence[Sequence[float]], sort_by_y_projection: bool = False
) -> dict[int, list[int]]:
    """``{cell index: [OCR indices]}``: each OCR box goes to its best cell (smallest ``(1 - IoU, distance)``)."""
    matched: dict[int, list[int]] = {}
    if len(cell_boxes) == 0:
        return matched
    for i, ocr_box in enumerate(np.asarray(ocr_boxes, dtype=np.float32).reshape(-1, 4)):
        keys = [(1.0 - box_iou(cell, ocr_box), box_distance(cell, ocr_box)) for cell in cell_boxes]
        best = min(range(len(keys)), key=lambda j: keys[j])
        matched.setdefault(best, []).append(i)
    if sort_by_y_projection:
        for cell, idx in matched.items():
            order = _y_projection_order([list(ocr_boxes[i]) for i in idx])
            matched[cell] = [idx[k] for k in order]
    return matched


def _escape(content: str) -> str:
    if content.startswith("<b>") and content.endswith("</b>"):
        return "<b>" + html_lib.escape(content[3:-4], quote=True) + "</b>"
    return html_lib.escape(content, quote=True)


def get_html_result(matched: dict[int, list[int]], texts: Sequence[str], structure: Sequence[str]) -> str:
    """Fill the cells of ``structure`` (HTML-wrapped tokens) with their matched ``texts``."""
    out = list(structure[:3])
    td = 0
    for tag in structure[3:-3]:
        if "</td>" not in tag:
            out.append(tag)
            continue
        if tag == "<td></td>":
            out.append("<td>")
        idx = matched.get(td)
        if idx:
            bold = texts[idx[0]].startswith("<b>") and len(idx) > 1
            if bold:
                out.append("<b>")
            for k, i in enumerate(idx):
                content = texts[i]
                if len(idx) > 1:
                    if not content:
                        continue
                    if content[0] == " ":
                        content = content[1:]
                    if content.startswith("<b>"):
                        content = content[3:]
                    if content.endswith("</b>"):
                        content = content[:-4]
                    if not content:
                        continue
                    if k != len(idx) - 1 and content[-1] != " ":
                        content += " "
                    out.append(html_lib.escape(content, quote=True))
                else:
                    out.append(_escape(content))
            if bold:
                out.append("</b>")
        out.append("</td>" if tag == "<td></td>" else tag)
        td += 1
    out.extend(structure[-3:])
    return "".join(out)


def table_recognition_result(
    table_box: Sequence[float],
    structure: Sequence[str],
    bbox: np.ndarray,
    overall_ocr: dict[str, Any],
    image_size: tuple[int, int],
    sort_by_y_projection: bool = False,
) -> dict[str, Any]:
    """One table's ``{cell_box_list, table_ocr_pred, pred_html}`` (PaddleX ``get_table_recognition_res``).

    Args:
        table_box: the table region ``[x1, y1, x2, y2]`` in the image (its top-left is the crop offset).
        structure: HTML-wrapped structure tokens; ``bbox``: the cells' int corners ``[N, 8]`` in crop pixels.
        overall_ocr: OCR of the whole image (``rec_polys/rec_texts/rec_scores/rec_boxes``).
        image_size: ``(height, width)`` of the whole image.
    """
    table_ocr = sub_region_ocr(overall_ocr, table_box)
    offset = (float(table_box[0]), float(table_box[1]))
    cells = cells_to_image_boxes(bbox, offset, image_size)
    if len(bbox) == 0 or len(table_ocr["rec_boxes"]) == 0:
        return {"cell_box_list": cells, "table_ocr_pred": table_ocr, "pred_html": " ".join(structure)}
    matched = match_table_and_ocr(cells, table_ocr["rec_boxes"], sort_by_y_projection)
    html = get_html_result(matched, table_ocr["rec_texts"], structure)
    return {"cell_box_list": cells, "table_ocr_pred": table_ocr, "pred_html": html}
