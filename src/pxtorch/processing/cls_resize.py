"""Image-classifier input preparation (PaddleX ``ClasPredictor``: ``ResizeImage`` / ``CropImage`` / ``NormalizeImage``).

Facts from PaddleX ``paddlex/inference/models/image_classification/predictor.py`` and
``paddlex/inference/models/common/vision/processors.py``: the image is read as RGB; ``ResizeImage(resize_short)``
is ``ResizeByShort``: scale ``s = resize_short / min(h, w)``, size ``(round(w * s), round(h * s))`` (Python
``round``), cv2 ``INTER_LINEAR`` unless the config names another interpolation; ``ResizeImage(size=[w, h])``
stretches to exactly ``w x h``; ``CropImage(size)`` cuts the centre, ``x1 = (w - cw) // 2``,
``y1 = (h - ch) // 2``; ``NormalizeImage`` computes ``x * (scale / std) - mean / std`` per channel.
"""

from __future__ import annotations

import cv2
import numpy as np

from .._pretrained import PreprocessCfg
from .image import normalize, to_chw

__all__ = ["center_crop", "classification_input", "resize_short"]

_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def resize_short(img: np.ndarray, target: int, interpolation: str = "linear") -> np.ndarray:
    """Resize so that the short side is ``target`` px, keeping the ratio (PaddleX ``ResizeByShort``)."""
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty image of shape {img.shape}")
    s = target / min(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=_INTERP[interpolation])


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centred ``height x width`` window (PaddleX ``Crop(mode="C")``); smaller images raise."""
    h, w = img.shape[:2]
    if h < height or w < width:
        raise ValueError(f"image ({w}x{h}) is smaller than the crop ({width}x{height})")
    x1, y1 = (w - width) // 2, (h - height) // 2
    return img[y1 : y1 + height, x1 : x1 + width]


def classification_input(img: np.ndarray, p: PreprocessCfg) -> np.ndarray:
    """A BGR uint8 ``HxWx3`` image -> the classifier input ``[3, H, W]`` float32 described by ``p``.

    ``p.resize``: ``"short_side_crop"`` (short side to ``p.resize_short``, centre crop ``p.input_size``) or
    ``"stretch"`` (resize to exactly ``p.input_size``). Channels are put in ``p.channel_order`` first.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got shape {img.shape}")
    if p.input_size is None:
        raise ValueError("the preprocessing config has no input_size")
    _, height, width = p.input_size
    if p.channel_order == "RGB":
        img = img[:, :, ::-1]
    if p.resize == "short_side_crop":
        if p.resize_short is None:
            raise ValueError("resize 'short_side_crop' needs resize_short")
        img = center_crop(resize_short(np.ascontiguousarray(img), p.resize_short, p.interpolation), height, width)
    elif p.resize == "stretch":
        img = cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=_INTERP[p.interpolation])
    else:
        raise ValueError(f"classification_input handles 'short_side_crop' and 'stretch', not {p.resize!r}")
    return to_chw(normalize(img, p.mean, p.std, p.scale))
