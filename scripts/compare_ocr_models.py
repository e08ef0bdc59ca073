"""The offline OCR model families side by side on the same images (README "Model zoo" table).

For each combination (PaddleOCR ``ocr_version``/``lang``, or explicit det+rec names), the OCR pipeline
runs every image of ``--images`` with the models' own PaddleX defaults; reported per combination: text
lines found, mean recognition score, and the median wall time per image (after one warm-up pass; the
combinations are interleaved image by image so that machine load hits them alike).

    OMP_WAIT_POLICY=PASSIVE python scripts/compare_ocr_models.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import pxtorch

COMBINATIONS: dict[str, dict[str, str]] = {
    "PP-OCRv3 (ch)": {"ocr_version": "PP-OCRv3"},
    "PP-OCRv4 (ch)": {"ocr_version": "PP-OCRv4"},
    "PP-OCRv4 (en)": {"ocr_version": "PP-OCRv4", "lang": "en"},
    "PP-OCRv5 mobile": {"ocr_version": "PP-OCRv5"},
    "PP-OCRv6 small": {"ocr_version": "PP-OCRv6"},
    "PP-OCRv6 tiny": {
        "text_detection_model_name": "PP-OCRv6_tiny_det",
        "text_recognition_model_name": "PP-OCRv6_tiny_rec",
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared/data/images/scenes"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2, help="timed passes over the images")
    ap.add_argument("--only", nargs="*", default=None, help="subset of the combination labels")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = sorted(str(p) for p in Path(args.images).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    labels = args.only or list(COMBINATIONS)
    pipes = {k: pxtorch.pipeline("OCR", device="cpu", **COMBINATIONS[k]) for k in labels}
    results = {k: [p(img)[0] for img in images] for k, p in pipes.items()}  # warm-up pass, and the texts
    times: dict[str, list[list[float]]] = {k: [[] for _ in images] for k in labels}
    for r in range(args.runs):
        for i, img in enumerate(images):
            for k in labels if (r + i) % 2 == 0 else reversed(labels):
                t0 = time.perf_counter()
                pipes[k](img)
                times[k][i].append(time.perf_counter() - t0)
    rows = []
    for k in labels:
        scores = [s for res in results[k] for s in res["rec_scores"]]
        rows.append(
            {
                "combination": k,
                "det": pipes[k].text_det.model.architecture,
                "rec": pipes[k].text_rec.model.architecture,
                "lines": len(scores),
                "mean_score": round(float(statistics.fmean(scores)), 4) if scores else 0.0,
                "median_ms_per_image": round(1000 * statistics.median(min(t) for t in times[k]), 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    report = {"images": len(images), "threads": args.threads, "torch": torch.__version__, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
