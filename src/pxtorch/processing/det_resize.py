"""PaddleX ``DetResizeForTest`` (resize type 0): limit a side, round both sides to multiples of 32."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["det_resize", "det_target_size"]


def det_target_size(
    height: int, width: int, limit_side_len: int = 960, limit_type: str = "max", max_side_limit: int = 4000
) -> tuple[int, int]:
    """The ``(H, W)`` a ``height x width`` image is resized to before detection.

    - ``"max"``: shrink so the long side is at most ``limit_side_len`` (never enlarges);
    - ``"min"``: enlarge so the short side is at least ``limit_side_len`` (never shrinks);
    - ``"resize_long"``: scale the long side to exactly ``limit_side_len``;
    then cap the long side at ``max_side_limit`` and round each side to a multiple of 32 (Python
    ``round``, at least 32).
    """
    if limit_type == "max":
        ratio = limit_side_len / max(height, width) if max(height, width) > limit_side_len else 1.0
    elif limit_type == "min":
        ratio = limit_side_len / min(height, width) if min(height, width) < limit_side_len else 1.0
    elif limit_type == "resize_long":
        ratio = limit_side_len / max(height, width)
    else:
        raise ValueError(f"limit_type must be 'min', 'max' or 'resize_long', got {limit_type!r}")
    resize_h, resize_w = int(height * ratio), int(width * ratio)
    if max(resize_h, resize_w) > max_side_limit:
        ratio = max_side_limit / max(resize_h, resize_w)
        resize_h, resize_w = int(resize_h * ratio), int(resize_w * ratio)
    return max(int(round(resize_h / 32) * 32), 32), max(int(round(resize_w / 32) * 32), 32)


def det_resize(
    img: np.ndarray, limit_side_len: int = 960, limit_type: str = "max", max_side_limit: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``img`` (HxWxC uint8) for detection.

    Images with ``h + w < 64`` are first zero-padded to at least 32x32 (bottom/right), as PaddleX does.

    Returns:
        ``(resized, shape)`` with ``shape = [src_h, src_w, ratio_h, ratio_w]`` (float64) for mapping
        boxes back.
    """
    src_h, src_w = img.shape[:2]
    if src_h + src_w < 64:
        padded = np.zeros((max(32, src_h), max(32, src_w), img.shape[2]), dtype=img.dtype)
        padded[:src_h, :src_w] = img
        img = padded
    h, w = img.shape[:2]
    resize_h, resize_w = det_target_size(h, w, limit_side_len, limit_type, max_side_limit)
    resized = cv2.resize(img, (resize_w, resize_h))
    return resized, np.array([src_h, src_w, resize_h / h, resize_w / w])
