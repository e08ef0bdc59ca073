"""SLANet table structure pre- and post-processing (PaddleX ``table_structure_recognition``).

Preprocessing (PaddleX ``ResizeByLong(488)`` -> ``Normalize`` -> ``Pad(488, 0)`` -> CHW; rapid_table's
``ResizeTableImage`` / ``NormalizeImage`` / ``PaddingTableImage``): the long side is resized to 488
(bilinear), ImageNet mean/std are applied to the BGR pixels as stored, and the result is placed at the
top-left of a zero canvas (zeros *after* normalising). PaddleX rounds the short side (``round``), rapid_table
truncates it (``int``); both are offered.

Decoding (PaddleX/PaddleOCR ``TableLabelDecode``): argmax per step, stop at the first ``eos`` after step 0,
skip ``sos``/``eos``; each ``<td>``, ``<td`` or ``<td></td>`` token takes the step's 8 loc values as a cell
box; the score is the mean max-probability of the kept tokens; the token list is wrapped in
``<html><body><table> ... </table></body></html>``. Boxes are normalised to the padded canvas, so for
SLANet_plus a box in input pixels is ``loc * 488 / ratio`` (PaddleX casts it to int).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from .._pretrained import IMAGENET_MEAN, IMAGENET_STD
from .image import normalize, to_chw

__all__ = [
    "HTML_HEAD",
    "HTML_TAIL",
    "TD_TOKENS",
    "TableInput",
    "TableStructure",
    "decode_table_structure",
    "merge_structure_tokens",
    "table_resize_pad",
]

HTML_HEAD = ("<html>", "<body>", "<table>")
HTML_TAIL = ("</table>", "</body>", "</html>")
TD_TOKENS = frozenset({"<td>", "<td", "<td></td>"})


@dataclass(frozen=True)
class TableInput:
    """A preprocessed table image: ``image`` float32 ``[3, S, S]`` and the resize facts for decoding."""

    image: np.ndarray
    ori_size: tuple[int, int]  # (width, height) of the input image
    ratio: float  # S / long side
    pad_size: tuple[int, int]  # (width, height) of the padded canvas


@dataclass(frozen=True)
class TableStructure:
    """Decoded structure: ``structure`` tokens (HTML-wrapped), cell ``bbox`` float ``[N, 8]``, mean score."""

    structure: list[str]
    bbox: np.ndarray
    structure_score: float


def merge_structure_tokens(tokens: Sequence[str]) -> list[str]:
    """Decoder classes of a structure dictionary: ``sos``, tokens (``<td></td>`` added, ``<td>`` removed), ``eos``."""
    merged = [t for t in tokens if t != "<td>"]
    if "<td></td>" not in merged:
        merged.append("<td></td>")
    return ["sos", *merged, "eos"]


def table_resize_pad(
    image: np.ndarray,
    size: int = 488,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    rounding: Literal["round", "floor"] = "round",
) -> TableInput:
    """BGR uint8 ``[H, W, 3]`` -> :class:`TableInput` with a ``[3, size, size]`` float32 image.

    Args:
        rounding: how the resized short side is rounded: ``"round"`` (PaddleX ``ResizeByLong``) or
            ``"floor"`` (rapid_table / PaddleOCR ``ResizeTableImage``).
    """
    h, w = image.shape[:2]
    ratio = size / float(max(h, w))
    if rounding == "round":
        rh, rw = round(h * ratio), round(w * ratio)
    elif rounding == "floor":
        rh, rw = int(h * ratio), int(w * ratio)
    else:
        raise ValueError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    rh, rw = max(1, min(size, rh)), max(1, min(size, rw))
    resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    canvas[:rh, :rw] = normalize(resized, mean, std)
    return TableInput(to_chw(canvas), (w, h), ratio, (size, size))


def decode_table_structure(
    structure_probs: np.ndarray,
    loc: np.ndarray,
    labels: Sequence[str],
    pad_size: tuple[int, int],
    ori_size: tuple[int, int],
    box_scale: Literal["padded", "original"] = "padded",
) -> TableStructure:
    """One image's model outputs -> :class:`TableStructure` (PaddleX ``TableLabelDecode.decode``).

    Args:
        structure_probs: ``[T, K]`` probabilities over ``labels`` (``sos`` first, ``eos`` last).
        loc: ``[T, L]`` sigmoid cell corners (``L = 8``: x1, y1, x2, y1, x2, y2, x1, y2).
        pad_size: ``(width, height)`` of the padded model input.
        ori_size: ``(width, height)`` of the image before resizing.
        box_scale: ``"padded"`` (SLANet_plus, SLANeXt: loc relative to the padded canvas, box =
            ``loc * pad / ratio``) or ``"original"`` (PaddleX's ``SLANet``: box = ``loc * ori``).

    Returns:
        float boxes in input-image pixels (PaddleX casts them with ``astype(int)``).
    """
    end_idx = len(labels) - 1
    ignored = {0, end_idx}
    idx = structure_probs.argmax(axis=1)
    score = structure_probs.max(axis=1)
    pw, ph = pad_size
    ow, oh = ori_size
    if box_scale == "padded":
        ratio = min(pw / ow, ph / oh)
        sx, sy = pw / ratio, ph / ratio
    else:
        sx, sy = float(ow), float(oh)
    tokens: list[str] = []
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    for t in range(len(idx)):
        c = int(idx[t])
        if t > 0 and c == end_idx:
            break
        if c in ignored:
            continue
        text = labels[c]
        if text in TD_TOKENS:
            box = np.array(loc[t], dtype=np.float64).copy()
            box[0::2] *= sx
            box[1::2] *= sy
            boxes.append(box)
        tokens.append(text)
        scores.append(float(score[t]))
    bbox = np.stack(boxes) if boxes else np.zeros((0, loc.shape[-1]), dtype=np.float64)
    mean_score = float(np.mean(scores)) if scores else 0.0
    return TableStructure([*HTML_HEAD, *tokens, *HTML_TAIL], bbox, mean_score)
