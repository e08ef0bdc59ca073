"""OCR result pictures the way PaddleX 3.x draws them (numpy BGR in, PIL RGB out).

:func:`draw_ocr` follows ``OCRResult._to_img`` (``paddlex/inference/pipelines/ocr/result.py``) with its
helpers ``draw_box_txt_fine``, ``create_font``, ``create_font_vertical`` and ``get_minarea_rect``;
:func:`draw_det_boxes` follows ``TextDetResult._to_img``.

PaddleX draws the text with SIMFANG, which may not be redistributed. pxtorch draws it with openly
licensed (OFL-1.1) fonts that come from two PyPI dependencies: Noto Sans CJK (package
``noto-cjk-sans-otc``: Simplified/Traditional Chinese, kana, Hangul, Latin, Cyrillic) first, then the
Noto Sans faces of ``manimgx-fonts`` (Latin with every accent, Greek, Cyrillic, Arabic, Devanagari and
other scripts, symbols, emoji). Each string is drawn with the first font of that chain that has a
glyph for every one of its characters (else the one that has the most). ``PXTORCH_FONT_PATH`` (or
PaddleX's ``PADDLE_PDX_LOCAL_FONT_FILE_PATH``) names one font file to use for everything instead.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import random
import struct
import unicodedata
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "FONT_ENV_VARS",
    "FontNotFoundError",
    "draw_det_boxes",
    "draw_ocr",
    "find_font",
    "font_chain",
    "missing_glyphs",
]

#: Environment variables naming a font file that replaces the packaged fonts, in order of precedence.
FONT_ENV_VARS = ("PXTORCH_FONT_PATH", "PADDLE_PDX_LOCAL_FONT_FILE_PATH")

# (pip distribution, import name) of the packages the fonts come from.
_CJK_PACKAGE = ("noto-cjk-sans-otc", "noto_cjk_sans_otc")
_CJK_FILE = "NotoSansCJK-Regular.ttc"
_SCRIPTS_PACKAGE = ("manimgx-fonts", "manimgx_fonts")
# Order of the manimgx-fonts faces in the fallback chain: these first, the remaining scripts next,
# then symbols and emoji; italics are left out.
_FIRST_FACES = ("NotoSans[", "NotoSans-Regular", "NotoSansArabic", "NotoSansDevanagari")
_LAST_FACES = ("NotoSansSymbols", "NotoEmoji")
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
# Characters that need no glyph of their own (controls, format marks such as ZWJ or bidi marks).
_NO_GLYPH_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


class FontNotFoundError(FileNotFoundError):
    """A font file (or the pip package that ships it) is missing; the message says what to install or set."""


# --------------------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------------------


def _package_dir(dist: str, module: str) -> Path:
    """The folder of installed package ``module`` (pip name ``dist``) on the file system."""
    try:
        root = resources.files(module)
    except ModuleNotFoundError as exc:
        raise FontNotFoundError(
            f"the OCR visualisation fonts come from the pip package {dist!r}, which is not installed: "
            f"`pip install {dist}` (or set {FONT_ENV_VARS[0]} to a font file)"
        ) from exc
    if not isinstance(root, Path) or not root.is_dir():
        raise FontNotFoundError(f"package {dist!r} is not installed as plain files ({root}); reinstall it with pip")
    return root


def _font_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _FONT_SUFFIXES)


def _face_rank(path: Path) -> tuple[int, int, str]:
    name = path.name
    for i, prefix in enumerate(_FIRST_FACES):
        if name.startswith(prefix):
            return (0, i, name)
    for i, prefix in enumerate(_LAST_FACES):
        if name.startswith(prefix):
            return (2, i, name)
    return (1, 0, name)


@functools.cache
def font_chain() -> tuple[Path, ...]:
    """The packaged fonts in fallback order: Noto Sans CJK, then Noto Sans and its script faces.

    Raises:
        FontNotFoundError: ``noto-cjk-sans-otc`` or ``manimgx-fonts`` is not installed.
    """
    cjk_dir = _package_dir(*_CJK_PACKAGE)
    cjk = cjk_dir / _CJK_FILE
    if not cjk.is_file():  # a later release may rename the file: take the font it ships
        candidates = _font_files(cjk_dir)
        if not candidates:
            raise FontNotFoundError(f"no font file in {cjk_dir}; reinstall `pip install {_CJK_PACKAGE[0]}`")
        cjk = candidates[0]
    scripts = [p for p in _font_files(_package_dir(*_SCRIPTS_PACKAGE)) if "italic" not in p.name.lower()]
    return (cjk, *sorted(scripts, key=_face_rank))


def _env_font() -> Path | None:
    """The font file named by :data:`FONT_ENV_VARS`, or ``None``."""
    ours, paddlex = (os.environ.get(name, "").strip() for name in FONT_ENV_VARS)
    if ours:
        path = Path(ours).expanduser()
        if not path.is_file():
            raise FontNotFoundError(f"{FONT_ENV_VARS[0]}={ours!r} is not a font file")
        return path
    if paddlex:
        path = Path(paddlex).expanduser()
        if path.is_file():
            return path
        # PaddleX ignores this variable when it names no file; so do we, but say so.
        warnings.warn(f"{FONT_ENV_VARS[1]}={paddlex!r} is not a file; using the packaged fonts", stacklevel=3)
    return None


def _needed(text: str) -> list[int]:
    return [ord(c) for c in text if unicodedata.category(c) not in _NO_GLYPH_CATEGORIES]


def find_font(text: str | None = None) -> Path:
    """The font file to draw ``text`` with.

    The file named by ``PXTORCH_FONT_PATH`` (else ``PADDLE_PDX_LOCAL_FONT_FILE_PATH``) when set;
    otherwise, from :func:`font_chain`, the first font with a glyph for every character of ``text``,
    else the one with glyphs for the most (the first of equals). Without ``text``: the main (CJK) font.

    Raises:
        FontNotFoundError: ``PXTORCH_FONT_PATH`` names no file, or a font package is not installed.
    """
    override = _env_font()
    if override is not None:
        return override
    chain = font_chain()
    codepoints = _needed(text) if text else []
    if not codepoints:
        return chain[0]
    best, best_count = chain[0], -1
    for path in chain:
        count = sum(_cmap(path).covers(cp) for cp in codepoints)
        if count == len(codepoints):
            return path
        if count > best_count:
            best, best_count = path, count
    return best


def missing_glyphs(text: str, font_path: str | Path) -> str:
    """The characters of ``text`` (in order, repeated ones once) that the font has no glyph for.

    Controls and format marks (Unicode categories Cc, Cf, Zl, Zp) are never reported.
    """
    cmap = _cmap(Path(font_path))
    return "".join(dict.fromkeys(chr(cp) for cp in _needed(text) if not cmap.covers(cp)))


# --- which characters a font file maps (its OpenType ``cmap``), read without extra dependencies ---


class _Coverage:
    """Sorted, disjoint inclusive code-point ranges that a font maps to a real glyph."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._starts = [lo for lo, _ in merged]
        self._ends = [hi for _, hi in merged]

    def covers(self, codepoint: int) -> bool:
        i = bisect.bisect_right(self._starts, codepoint) - 1
        return i >= 0 and codepoint <= self._ends[i]


def _runs(codepoints: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for cp in sorted(codepoints):
        if runs and cp == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], cp)
        else:
            runs.append((cp, cp))
    return runs


def _cmap_format4(data: bytes, off: int) -> list[tuple[int, int]]:
    seg_count = struct.unpack_from(">H", data, off + 6)[0] // 2
    ends_at = off + 14
    starts_at = ends_at + 2 * seg_count + 2
    deltas_at = starts_at + 2 * seg_count
    range_offsets_at = deltas_at + 2 * seg_count
    ends = struct.unpack_from(f">{seg_count}H", data, ends_at)
    starts = struct.unpack_from(f">{seg_count}H", data, starts_at)
    deltas = struct.unpack_from(f">{seg_count}h", data, deltas_at)
    range_offsets = struct.unpack_from(f">{seg_count}H", data, range_offsets_at)
    mapped: list[int] = []
    for i in range(seg_count):
        start, end = starts[i], min(ends[i], 0xFFFE)
        for cp in range(start, end + 1):
            if range_offsets[i] == 0:
                glyph = (cp + deltas[i]) & 0xFFFF
            else:
                at = range_offsets_at + 2 * i + range_offsets[i] + 2 * (cp - start)
                glyph = struct.unpack_from(">H", data, at)[0] if at + 2 <= len(data) else 0
                glyph = (glyph + deltas[i]) & 0xFFFF if glyph else 0
            if glyph:
                mapped.append(cp)
    return _runs(mapped)


def _cmap_format12(data: bytes, off: int) -> list[tuple[int, int]]:
    n_groups = struct.unpack_from(">I", data, off + 12)[0]
    ranges = []
    for start, end, glyph in struct.iter_unpack(">III", data[off + 16 : off + 16 + 12 * n_groups]):
        if glyph == 0:  # the first code point of the group maps to .notdef
            start += 1
        if start <= end:
            ranges.append((start, end))
    return ranges


@functools.cache
def _cmap(path: Path, index: int | None = None) -> _Coverage:
    """The Unicode coverage of face ``index`` of a ``.ttf/.otf/.ttc`` file (default: :func:`_face_index`)."""
    if index is None:
        index = _face_index(str(path))
    with open(path, "rb") as f:
        head = f.read(12)
        sfnt = 0
        if head[:4] == b"ttcf":
            n_faces = struct.unpack_from(">I", head, 8)[0]
            offsets = struct.unpack(f">{n_faces}I", f.read(4 * n_faces))
            sfnt = offsets[index if 0 <= index < n_faces else 0]
        f.seek(sfnt)
        n_tables = struct.unpack(">4xH6x", f.read(12))[0]
        records = f.read(16 * n_tables)
        for tag, _, table_off, length in struct.iter_unpack(">4sIII", records):
            if tag == b"cmap":
                f.seek(table_off)
                data = f.read(length)
                break
        else:
            raise ValueError(f"{path}: no cmap table (not an OpenType/TrueType font?)")
    ranges: list[tuple[int, int]] = []
    seen: set[int] = set()
    n_subtables = struct.unpack_from(">H", data, 2)[0]
    for platform, encoding, sub_off in struct.iter_unpack(">HHI", data[4 : 4 + 8 * n_subtables]):
        unicode = platform == 0 or (platform == 3 and encoding in (1, 10))
        if not unicode or sub_off in seen:
            continue
        seen.add(sub_off)
        fmt = struct.unpack_from(">H", data, sub_off)[0]
        if fmt == 4:
            ranges += _cmap_format4(data, sub_off)
        elif fmt == 12:
            ranges += _cmap_format12(data, sub_off)
    return _Coverage(ranges)


@functools.cache
def _face_index(path: str) -> int:
    """Which face of a font collection to use: the Simplified Chinese one (PaddleX draws with SIMFANG), else 0."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] != b"ttcf":
        return 0
    n_faces = struct.unpack_from(">I", head, 8)[0]
    for index in range(n_faces):
        family = ImageFont.truetype(path, 10, index=index).getname()[0] or ""
        if family.endswith(" SC") and "Mono" not in family:
            return index
    return 0


@functools.lru_cache(maxsize=512)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    """PaddleX's ``ImageFont.truetype(font_path, size)``; raises ``ValueError`` for ``size < 1`` like PIL."""
    return ImageFont.truetype(path, size, index=_face_index(path))


# --------------------------------------------------------------------------------------------------
# Drawing (PaddleX's OCRResult._to_img and helpers)
# --------------------------------------------------------------------------------------------------


def _fit_font(text: str, box_w: int, box_h: int, font_path: str) -> ImageFont.FreeTypeFont:
    """PaddleX ``create_font``: 0.8 of the box height, shrunk until the line fits the box width."""
    size = int(box_h * 0.8)
    font = _truetype(font_path, size)
    length = font.getlength(text)
    if length > box_w:
        font = _truetype(font_path, int(size * box_w / length))
    return font


def _fit_font_vertical(text: str, box_w: int, box_h: int, font_path: str, scale: float = 1.2) -> ImageFont.FreeTypeFont:
    """PaddleX ``create_font_vertical``: one character per line, at least 10 px, no wider than the box."""
    size = max(int(box_h / max(len(text), 1) * 0.8 * scale), 10)
    font = _truetype(font_path, size)
    widest = max(font.getlength(c) for c in text)
    if widest > box_w:
        font = _truetype(font_path, max(int(size * box_w / widest), 10))
    return font


def _text_layer(size: tuple[int, int], box: np.ndarray, text: str, font_path: str) -> np.ndarray:
    """PaddleX ``draw_box_txt_fine``: ``text`` drawn into a box-sized canvas, warped onto ``box``.

    Args:
        size: ``(W, H)`` of the picture.
        box: ``[4, 2]`` corners TL, TR, BR, BL in pixels.
    Returns:
        ``HxWx3`` uint8 RGB, white except for the text.
    """
    pts = np.asarray(box, dtype=np.float64)
    box_h = int(math.sqrt((pts[0][0] - pts[3][0]) ** 2 + (pts[0][1] - pts[3][1]) ** 2))
    box_w = int(math.sqrt((pts[0][0] - pts[1][0]) ** 2 + (pts[0][1] - pts[1][1]) ** 2))
    canvas = Image.new("RGB", (box_w, box_h), _WHITE)
    draw = ImageDraw.Draw(canvas)
    if box_h > 2 * box_w and box_h > 30:  # tall box: one character under the other
        if text:
            font = _fit_font_vertical(text, box_w, box_h, font_path)
            y = 0
            for char in text:
                draw.text((0, y), char, font=font, fill=_BLACK)
                _, top, _, bottom = font.getbbox(char)
                y += bottom - top + 2
    elif text:
        font = _fit_font(text, box_w, box_h, font_path)
        draw.text((0, 0), text, fill=_BLACK, font=font)
    src = np.float32([[0, 0], [box_w, 0], [box_w, box_h], [0, box_h]])
    matrix = cv2.getPerspectiveTransform(src, np.asarray(box, dtype=np.float32))
    return cv2.warpPerspective(
        np.asarray(canvas, dtype=np.uint8),
        matrix,
        size,
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_WHITE,
    )


def _min_area_rect(points: np.ndarray) -> np.ndarray:
    """PaddleX ``get_minarea_rect``: int32 ``[4, 2]`` corners TL, TR, BR, BL of the minimum-area rectangle."""
    pts = points.astype(np.int32 if np.issubdtype(points.dtype, np.integer) else np.float32)
    corners = sorted(cv2.boxPoints(cv2.minAreaRect(pts)), key=lambda p: p[0])
    left_top, left_bottom = (0, 1) if corners[1][1] > corners[0][1] else (1, 0)
    right_top, right_bottom = (2, 3) if corners[3][1] > corners[2][1] else (3, 2)
    order = (left_top, right_top, right_bottom, left_bottom)
    return np.array([corners[i] for i in order]).astype(np.int32)


def _seal_text_box(poly: np.ndarray) -> np.ndarray:
    """The box PaddleX writes a curved (seal) text line into: a strip at most 20 px high from the middle
    of the polygon's minimum-area rectangle. int32 ``[4, 2]``."""
    box = _min_area_rect(poly)
    height = int(0.5 * (max(box[:, 1]) - min(box[:, 1])))
    box[:2, 1] = np.mean(box[:, 1])
    box[2:, 1] = np.mean(box[:, 1]) + min(20, height)  # the mean after the line above, as PaddleX
    return box


def _as_bgr(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got shape {img.shape} dtype {img.dtype}")
    return img


def draw_ocr(
    image: np.ndarray,
    polys: Sequence[np.ndarray],
    texts: Sequence[str],
    font_path: str | Path | None = None,
) -> Image.Image:
    """PaddleX's OCR result picture: boxes over the image on the left, the recognised text on the right.

    Args:
        image: ``HxWx3`` uint8 BGR, the image the boxes refer to.
        polys: one polygon per text, ``[K, 2]`` pixel ``(x, y)`` (``K = 4``: TL, TR, BR, BL; ``K > 4``:
            curved seal text).
        texts: the recognised strings; pairs past the shorter of ``polys``/``texts`` are ignored.
        font_path: one font file for every string; default: the file named by ``PXTORCH_FONT_PATH``
            (or ``PADDLE_PDX_LOCAL_FONT_FILE_PATH``), else :func:`find_font` per string.
    Returns:
        RGB ``PIL.Image`` of size ``(2W, H)``. Left: the image with each box filled in a colour drawn
        from ``random.Random(0)`` (three ``randint(0, 255)`` per box, in order), blended 0.5 with the
        image. Right: white, each text warped into its box and the box outlined in its colour. A box
        that cannot be drawn (degenerate, font too small) is skipped, as PaddleX does.
    """
    bgr = _as_bgr(image)
    h, w = bgr.shape[:2]
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    left = Image.fromarray(rgb)
    draw_left = ImageDraw.Draw(left)
    right = np.full((h, w, 3), 255, dtype=np.uint8)
    fixed = Path(font_path) if font_path is not None else _env_font()
    fixed_font = str(fixed) if fixed is not None else None
    if fixed_font is not None:
        _truetype(fixed_font, 10)  # a file that is no font fails here, not silently in every box
    rng = random.Random(0)  # PaddleX: random.seed(0), then randint per colour; kept off the global state
    for poly, text in zip(polys, texts, strict=False):
        color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        try:
            box = np.asarray(poly).reshape(-1, 2)
            if len(box) > 4:
                draw_left.polygon([(x, y) for x, y in box.tolist()], outline=color, width=8)
                box = _seal_text_box(box)
            draw_left.polygon([(int(x), int(y)) for x, y in box.tolist()], fill=color)
            font = fixed_font or str(find_font(text))
            layer = _text_layer((w, h), box, text, font)
            cv2.polylines(layer, [np.asarray(box, dtype=np.int32).reshape(-1, 1, 2)], True, color, 1)
            right = cv2.bitwise_and(right, layer)
        except FontNotFoundError:
            raise
        except Exception:  # PaddleX skips a box it cannot draw (`except: continue`)
            continue
    shown = Image.new("RGB", (2 * w, h), _WHITE)
    shown.paste(Image.blend(Image.fromarray(rgb), left, 0.5), (0, 0))
    shown.paste(Image.fromarray(right), (w, 0))
    return shown


def draw_det_boxes(image_bgr: np.ndarray, polys: Sequence[np.ndarray]) -> Image.Image:
    """PaddleX's text-detection picture: each polygon outlined in red, 2 px, on the image.

    Args:
        image_bgr: ``HxWx3`` uint8 BGR (not modified).
        polys: ``[K, 2]`` pixel polygons (truncated to int as PaddleX does).
    Returns:
        RGB ``PIL.Image`` of size ``(W, H)``.
    """
    out = _as_bgr(image_bgr).copy()
    for poly in polys:
        pts = np.asarray(poly).astype(int).reshape(-1, 1, 2).astype(np.int32)
        cv2.polylines(out, [pts], True, (0, 0, 255), 2)
    return Image.fromarray(np.ascontiguousarray(out[:, :, ::-1]))
