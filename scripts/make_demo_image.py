"""Render the bundled demo image ``src/pxtorch/assets/demo_ocr.jpg`` and its ground truth ``demo_ocr.json``.

A boarding-pass-like card with Chinese, Latin and digit lines, in Noto Sans CJK (SIL OFL, from the
``noto-cjk-sans-otc`` dependency the visualisation uses), tilted by 3 degrees, with paper texture and
blur so it is a fair test, not a clean render. The JSON records every line's text and its quad (TL,
TR, BR, BL) in image pixels. Deterministic: re-running gives the same files.

    python scripts/make_demo_image.py
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pxtorch.processing.visualize import find_font

OUT = Path(__file__).resolve().parents[1] / "src" / "pxtorch" / "assets"
# (x, y, font size, text): one text line each, single spaces (OCR reads a space per gap)
LINES = [
    (40, 30, 44, "BOARDING PASS"),
    (460, 30, 44, "登机牌"),
    (40, 120, 30, "Passenger ZHANG SAN"),
    (460, 120, 30, "旅客姓名张三"),
    (40, 175, 30, "Flight MU2379 Seat 23A"),
    (460, 175, 30, "福州至上海"),
    (40, 230, 30, "Gate 12 Boarding 21:15"),
    (40, 285, 30, "Date 2026-12-03 Class Y"),
    (40, 340, 30, "登机口于起飞前十分钟关闭"),
    (40, 410, 24, "pxtorch: PaddleX models in PyTorch"),
]
SIZE = (760, 470)  # W, H
ANGLE = 3.0


def main() -> None:
    rng = np.random.default_rng(2026)
    card = Image.new("RGB", SIZE, (246, 243, 235))
    draw = ImageDraw.Draw(card)
    draw.rectangle([16, 16, SIZE[0] - 16, SIZE[1] - 16], outline=(60, 90, 150), width=3)
    draw.line([24, 100, SIZE[0] - 24, 100], fill=(60, 90, 150), width=2)
    gt = []
    for x, y, size, text in LINES:
        font = ImageFont.truetype(str(find_font(text)), size)
        color = (180, 30, 30) if y < 100 else (25, 25, 35)
        draw.text((x, y), text, font=font, fill=color)
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        gt.append({"text": text, "quad": [[left, top], [right, top], [right, bottom], [left, bottom]]})
    img = cv2.cvtColor(np.asarray(card), cv2.COLOR_RGB2BGR).astype(np.float32)
    img += rng.normal(0, 4.0, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    pad = 40
    canvas = np.full((SIZE[1] + 2 * pad, SIZE[0] + 2 * pad, 3), (92, 110, 128), np.uint8)
    canvas[pad:-pad, pad:-pad] = img
    center = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    m = cv2.getRotationMatrix2D(center, ANGLE, 1.0)
    out = cv2.warpAffine(
        canvas, m, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    out = cv2.GaussianBlur(out, (3, 3), 0.6)
    for item in gt:
        pts = np.asarray(item["quad"], np.float64) + pad
        pts = np.hstack([pts, np.ones((4, 1))]) @ m.T
        item["quad"] = np.round(pts, 1).tolist()
    OUT.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT / "demo_ocr.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
    (OUT / "demo_ocr.json").write_text(json.dumps({"lines": gt}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT / 'demo_ocr.jpg'} ({out.shape[1]}x{out.shape[0]}) and demo_ocr.json")


if __name__ == "__main__":
    main()
