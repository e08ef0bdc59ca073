"""Reading-order sorting of detected text boxes (PaddleX ``SortQuadBoxes`` / ``SortPolyBoxes``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["sort_poly_boxes", "sort_quad_boxes"]


def sort_quad_boxes(polys: np.ndarray | Sequence[np.ndarray], row_tolerance: float = 10) -> list[np.ndarray]:
    """Top-to-bottom, left-to-right order of quads ``[N, 4, 2]``.

    Sort by the first point's ``(y, x)``; then, walking down the list, move a box left past its
    predecessors while they lie on the same row (first points less than ``row_tolerance`` px apart
    vertically) and start further right.
    """
    boxes = sorted(np.asarray(polys), key=lambda b: (b[0][1], b[0][0]))
    for i in range(len(boxes) - 1):
        for j in range(i, -1, -1):
            same_row = abs(int(boxes[j + 1][0][1]) - int(boxes[j][0][1])) < row_tolerance
            if same_row and boxes[j + 1][0][0] < boxes[j][0][0]:
                boxes[j], boxes[j + 1] = boxes[j + 1], boxes[j]
            else:
                break
    return boxes


def sort_poly_boxes(polys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Polygons ``[N_i, 2]`` ordered by their top-most y (seal text)."""
    if len(polys) == 0:
        return list(polys)
    order = np.argsort(np.array([p[:, 1].min() for p in polys]))
    return [polys[i] for i in order]
