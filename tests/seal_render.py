"""Rendered round seals for the seal tests: a red ring, text along the upper arc, a star, optional middle line.

The look follows PaddleX's seal samples (red ink on white, 300-600 px across, characters upright along
the arc with their tops pointing outwards). Glyphs come from Noto Sans CJK, a pxtorch dependency
(``noto-cjk-sans-otc``, OFL-1.1), found through :func:`pxtorch.processing.visualize.find_font`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pxtorch.processing.visualize import find_font

__all__ = ["Seal", "render_arc_band", "render_seal"]

RED = (205, 32, 38)


@dataclass(frozen=True)
class Seal:
    """One seal: ``arc_text`` along the top, ``middle_text`` (optional) straight below the star."""

    arc_text: str
    middle_text: str = ""
    diameter: int = 400
    arc_degrees: float = 250.0  # angular extent of the arc text
    canvas: int = 0  # image side; 0: diameter + 2 x 40 px margin


def _font(text: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(find_font(text)), size)


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.382
        a = math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy - rad * math.sin(a)))
    draw.polygon(pts, fill=RED)


def _glyph(ch: str, font: ImageFont.FreeTypeFont, color: tuple[int, int, int]) -> Image.Image:
    """A square RGBA tile of one character, centred, ``color`` on transparent."""
    size = int(font.size * 1.6)
    tile = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((size / 2, size / 2), ch, font=font, fill=(*color, 255), anchor="mm")
    return tile


def _draw_arc_text(
    img: Image.Image,
    text: str,
    center: tuple[float, float],
    radius: float,
    degrees: float,
    size: int,
    color: tuple[int, int, int] = RED,
) -> None:
    """Characters centred on a circle of ``radius``, spread over ``degrees`` centred on the top, clockwise,
    each turned so that its top points away from the centre."""
    font = _font(text, size)
    n = len(text)
    step = math.radians(degrees) / (n - 1) if n > 1 else 0.0
    start = -step * (n - 1) / 2
    for i, ch in enumerate(text):
        phi = start + i * step  # 0 = top, positive = clockwise
        tile = _glyph(ch, font, color).rotate(-math.degrees(phi), resample=Image.BICUBIC)
        x = center[0] + radius * math.sin(phi)
        y = center[1] - radius * math.cos(phi)
        img.alpha_composite(tile, (round(x - tile.width / 2), round(y - tile.height / 2)))


def render_seal(seal: Seal) -> np.ndarray:
    """The seal as an ``HxWx3`` uint8 **BGR** image."""
    side = seal.canvas or seal.diameter + 80
    img = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    cx = cy = side / 2
    r = seal.diameter / 2
    ring = max(3, int(r * 0.05))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=RED, width=ring)
    size = int(r * 0.2)
    _draw_arc_text(img, seal.arc_text, (cx, cy), r - ring - size * 0.75, seal.arc_degrees, size)
    _star(draw, cx, cy, r * 0.22)
    if seal.middle_text:
        font = _font(seal.middle_text, int(r * 0.14))
        draw.text((cx, cy + r * 0.45), seal.middle_text, font=font, fill=RED, anchor="mm")
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def render_arc_band(
    text: str, radius: int = 220, size: int = 44, spacing: float = 1.15, points: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Only ``text`` along an arc (red on white, no ring or star; characters ``spacing x size`` apart
    along the arc), cropped to the band's rows.

    Returns:
        ``(image, polygon)``: ``HxWx3`` uint8 BGR and the int32 ``[2 * points, 2]`` annular sector that
        encloses the text (outer arc left to right, then inner arc back), as a detector would outline it.
    """
    side = 2 * radius + 2 * size + 40
    img = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    span = (len(text) - 1) * spacing * size / radius
    _draw_arc_text(img, text, (side / 2, side / 2), radius, math.degrees(span), size)
    rgb = np.asarray(img.convert("RGB"))
    top = max(int(side / 2 - radius - size), 0)
    bottom = int(side / 2 - radius * math.cos(span / 2) + size)
    half = span / 2 + 0.75 * size / radius  # half a character beyond the first and last centres
    angles = np.linspace(-half, half, points)
    outer, inner = radius + 0.8 * size, radius - 0.8 * size
    arc_out = np.stack([side / 2 + outer * np.sin(angles), side / 2 - outer * np.cos(angles) - top], 1)
    arc_in = np.stack([side / 2 + inner * np.sin(angles[::-1]), side / 2 - inner * np.cos(angles[::-1]) - top], 1)
    poly = np.round(np.concatenate([arc_out, arc_in])).astype(np.int32)
    return np.ascontiguousarray(rgb[top:bottom, :, ::-1]), poly
