"""Layout / object-detection picture in the manner of PaddleX's ``DetResult`` (``draw_box``).

Each box is outlined in its class colour (colours assigned to labels in order of first appearance from a
fixed palette), line width ``max(W, H) * 0.002`` (at least 1 px), with ``"{label} {score:.2f}"`` on a filled
tag above the box's top-left corner (inside the box when there is no room above).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["LAYOUT_PALETTE", "draw_layout_boxes"]

#: RGB colours, cycled by first appearance of each label
LAYOUT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 56, 56),
    (0, 148, 255),
    (72, 249, 10),
    (255, 157, 151),
    (146, 204, 23),
    (255, 112, 31),
    (0, 212, 187),
    (132, 56, 255),
    (255, 178, 29),
    (26, 147, 52),
    (82, 0, 133),
    (203, 56, 255),
    (0, 24, 236),
    (255, 55, 199),
    (61, 219, 134),
    (44, 153, 168),
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        from .visualize import _truetype, find_font

        return _truetype(str(find_font("text 0.99")), size)
    except Exception:  # no usable font file: PIL's built-in bitmap font
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1
            return ImageFont.load_default()


def draw_layout_boxes(image_bgr: np.ndarray, boxes: Sequence[dict[str, Any]]) -> Image.Image:
    """Draw PaddleX-style ``boxes`` (``{cls_id, label, score, coordinate: [x1, y1, x2, y2]}``).

    Args:
        image_bgr: ``HxWx3`` uint8 BGR (not modified).
    Returns:
        RGB ``PIL.Image`` of size ``(W, H)``.
    """
    img = np.asarray(image_bgr)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got shape {img.shape} dtype {img.dtype}")
    out = Image.fromarray(np.ascontiguousarray(img[:, :, ::-1]))
    draw = ImageDraw.Draw(out)
    width = max(1, int(max(out.size) * 0.002))
    font = _font(int(0.018 * out.width) + 2)
    colors: dict[str, tuple[int, int, int]] = {}
    for box in boxes:
        label = str(box["label"])
        if label not in colors:
            colors[label] = LAYOUT_PALETTE[len(colors) % len(LAYOUT_PALETTE)]
        color = colors[label]
        x1, y1, x2, y2 = (float(v) for v in box["coordinate"][:4])
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        text = f"{label} {float(box['score']):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 if y1 - th - 2 >= 0 else y1
        draw.rectangle([x1, ty, x1 + tw + 2, ty + th + 2], fill=color)
        draw.text((x1 + 1, ty + 1 - top), text, fill=(255, 255, 255), font=font)
    return out
