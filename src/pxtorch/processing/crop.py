"""Perspective crops of text quads (PaddleX ``get_rotate_crop_image``)."""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import min_area_box

__all__ = ["crop_by_quad", "crop_quad"]


def crop_quad(img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp the quad ``[4, 2]`` (TL, TR, BR, BL) of ``img`` to an upright rectangle.

    Width is the longer of the top/bottom edges, height the longer of the side edges; cubic
    interpolation with replicated borders. Crops with ``h / w >= 1.5`` are rotated 90 degrees
    counter-clockwise (vertical text), as PaddleX does.
    """
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    if width < 1 or height < 1:
        raise ValueError(f"degenerate quad {pts.tolist()}")
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(pts, dst)
    out = cv2.warpPerspective(img, m, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if out.shape[0] / out.shape[1] >= 1.5:
        out = np.rot90(out)
    return out


def crop_by_quad(img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """PaddleX ``CropByPolys("quad")``: crop the minimum-area rectangle of a detected quad ``[4, 2]``.

    The quad is first replaced by the min-area rectangle of its integer points (ordered TL, TR, BR,
    BL), then warped upright by :func:`crop_quad`.
    """
    box, _ = min_area_box(np.asarray(poly).reshape(-1, 2).astype(np.int32))
    return crop_quad(img, box)
