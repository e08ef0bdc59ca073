"""Image reading and normalisation (numpy in, numpy out)."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

__all__ = ["MAX_IMAGE_PIXELS", "ImageReadError", "decode_image", "normalize", "read_image", "to_chw"]

MAX_IMAGE_PIXELS = 20_000 * 20_000


class ImageReadError(ValueError):
    """An input that cannot be decoded as an image; the message names it."""


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 **BGR** (PaddleX's ``ReadImage(format="BGR")``).

    Decoded like PaddleX's ``cv2.imread(path, cv2.IMREAD_COLOR)`` (see :func:`decode_image`).

    Raises:
        ImageReadError: the file is missing, empty, not an image, or larger than ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return decode_image(data, str(path), max_pixels)


def decode_image(
    data: bytes | bytearray | memoryview | np.ndarray, name: str, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Decode an encoded image file (PNG, JPEG, BMP, ...) held in memory to ``HxWx3`` uint8 BGR.

    The rule is OpenCV's ``IMREAD_COLOR``, which PaddleX's ``ReadImage`` uses: grey is expanded to
    3 channels, alpha is dropped (not composited), 16-bit samples become 8-bit by ``>> 8`` and the
    EXIF orientation is applied. The pixel count in the header is checked against ``max_pixels``
    before any pixel is decoded. ``name`` labels the input in error messages.

    Raises:
        ImageReadError: the data is empty, not an image, or larger than ``max_pixels``.
    """
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    else:
        buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageReadError(f"{name}: empty file")
    pixels = _header_pixels(buf)
    if pixels is not None and pixels[0] > max_pixels:
        raise ImageReadError(f"{name}: {pixels[1]} px is over the {max_pixels} px limit")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise ImageReadError(f"{name}: not a decodable image")
    if img.dtype != np.uint8:  # IMREAD_COLOR yields 8 bits already; guard against exotic decoders
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else cv2.convertScaleAbs(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _header_pixels(data: np.ndarray) -> tuple[int, str] | None:
    """``(pixel count, "WxH")`` from the file header without decoding the pixels (None if unknown)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(memoryview(data))) as im:
                w, h = im.size
                return w * h, f"{w}x{h}"
    except Image.DecompressionBombError as exc:  # over Pillow's own limit: it reports the pixel count
        found = _BOMB_PIXELS.search(str(exc))
        count = int(found.group(1)) if found else 1 << 62
        return count, str(count) if found else "an unknown number of"
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
