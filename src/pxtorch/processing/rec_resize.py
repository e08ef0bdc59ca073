"""Recognition/classification input preparation (PaddleX ``OCRReisizeNormImg``, PaddleOCR ``ClsResizeImg``)."""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["cls_resize_norm", "pad_batch", "rec_resize_norm"]


def rec_resize_norm(img: np.ndarray, height: int = 48, min_width: int = 320, max_width: int = 3200) -> np.ndarray:
    """Resize a text-line crop to ``height`` keeping its aspect ratio and normalise to [-1, 1].

    Width: ``W = int(height * max(min_width / height, w / h))``; wider than ``max_width`` -> squeezed to
    ``max_width``; otherwise the crop is resized to ``min(ceil(height * w / h), W)`` and zero-padded on
    the right to ``W``. Returns float32 ``[3, height, W]``.
    """
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty crop of shape {img.shape}")
    target_w = int(height * max(min_width / height, w / h))
    if target_w > max_width:
        resized_w, target_w = max_width, max_width
    else:
        resized_w = min(math.ceil(height * w / h), target_w)
    resized = cv2.resize(img, (resized_w, height)).astype(np.float32)
    out = np.zeros((3, height, target_w), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def cls_resize_norm(img: np.ndarray, shape: tuple[int, int, int] = (3, 48, 192)) -> np.ndarray:
    """PaddleOCR ``ClsResizeImg``: keep the ratio, cap at ``shape`` width, normalise, right-pad. ``[3, H, W]``."""
    _, height, width = shape
    h, w = img.shape[:2]
    resized_w = min(width, math.ceil(height * w / h))
    resized = cv2.resize(img, (resized_w, height)).astype(np.float32)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def pad_batch(items: list[np.ndarray]) -> np.ndarray:
    """Stack ``[C, H, W_i]`` arrays into ``[B, C, H, max W_i]``, zero-padding on the right (PaddleX ``ToBatch``)."""
    width = max(a.shape[2] for a in items)
    out = np.zeros((len(items), *items[0].shape[:2], width), dtype=np.float32)
    for i, a in enumerate(items):
        out[i, :, :, : a.shape[2]] = a
    return out
