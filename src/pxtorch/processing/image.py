"""Image reading and normalisation (numpy in, numpy out)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

__all__ = ["ImageReadError", "normalize", "read_image", "to_chw"]

MAX_IMAGE_PIXELS = 20_000 * 20_000


class ImageReadError(ValueError):
    """An input that cannot be decoded as an image; the message names it."""


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 **BGR** (PaddleX's ``ReadImage(format="BGR")``).

    Grey images are expanded to 3 channels and alpha is dropped.

    Raises:
        ImageReadError: the file is missing, empty, not an image, or larger than ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    size = _header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageReadError(f"{path}: {size[0]}x{size[1]} px is over the {max_pixels} px limit")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: not a decodable image")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def _header_size(data: np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` from the file header without decoding the pixels (None if unknown)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as im:
                return im.size
    except Image.DecompressionBombError:
        return (1 << 31, 1)
    except Exception:  # unknown to PIL: let OpenCV decide
        return None


def normalize(
    img: np.ndarray,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    scale: float = 1.0 / 255.0,
) -> np.ndarray:
    """``(img * scale - mean) / std`` per channel, in the image's own channel order; float32 HWC."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    alpha = np.asarray([scale / s for s in std], dtype=np.float32)
    beta = np.asarray([-m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32)
    return img.astype(np.float32) * alpha + beta


def to_chw(img: np.ndarray) -> np.ndarray:
    """HWC -> CHW (contiguous)."""
    return np.ascontiguousarray(img.transpose(2, 0, 1))
