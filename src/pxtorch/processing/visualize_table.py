"""Drawings of table results (PaddleX ``TableRecResult`` / ``TableRecognitionResult`` images)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

__all__ = ["draw_cell_boxes", "draw_cell_polygons"]


def draw_cell_polygons(image_bgr: np.ndarray, bbox: Sequence[Sequence[float]]) -> Image.Image:
    """Cell quadrilaterals ``[N, 8]`` (x1, y1, ..., x4, y4) in green on the image (module result ``res``)."""
    canvas = np.ascontiguousarray(image_bgr.copy())
    for box in bbox:
        pts = np.asarray(box, dtype=np.float64).reshape(-1, 2).round().astype(np.int32)
        cv2.polylines(canvas, [pts], True, (0, 255, 0), 2)
    return Image.fromarray(np.ascontiguousarray(canvas[:, :, ::-1]))


def draw_cell_boxes(image_bgr: np.ndarray, boxes_per_table: Sequence[Sequence[Sequence[float]]]) -> Image.Image:
    """``table_cell_img``: every table's ``cell_box_list`` (xyxy) as red rectangles, width 2."""
    img = Image.fromarray(np.ascontiguousarray(image_bgr[:, :, ::-1]))
    draw = ImageDraw.Draw(img)
    for boxes in boxes_per_table:
        for box in boxes:
            x1, y1, x2, y2 = (int(v) for v in box[:4])
            draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=(255, 0, 0), width=2)
    return img
