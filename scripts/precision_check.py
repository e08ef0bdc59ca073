"""How low precision changes the OCR pipeline's texts on real scenes (the numbers in ``pxtorch.engines``).

Runs the float32 OCR pipeline, then each ``--configs`` engine_config, on every image in ``--images`` and
reports per config: scenes whose ``rec_texts`` are identical and line texts that differ (positional).
``--input-rounding`` also measures the recogniser with only its input rounded to bfloat16/float16.

    python scripts/precision_check.py
    python scripts/precision_check.py --configs '{"dtype": "bfloat16", "keep_float32": ["backbone"]}'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import pxtorch
from pxtorch.processing.ctc import ctc_greedy_decode

DEFAULT_CONFIGS = [
    {"dtype": "bfloat16"},
    {"dtype": "bfloat16", "keep_float32": ["backbone"]},
]


def _texts(pipe, images: list[Path]) -> list[list[str]]:
    return [pipe(str(p))[0]["rec_texts"] for p in images]


def _differing(ref: list[str], got: list[str]) -> int:
    """Lines whose text differs at the same position, plus lines found or lost."""
    return sum(a != b for a, b in zip(ref, got, strict=False)) + abs(len(ref) - len(got))


def _input_rounding(images: list[Path]) -> dict[str, int]:
    """Recogniser texts that change when only its input batch is rounded to each low-precision dtype."""
    pipe = pxtorch.pipeline("OCR", device="cpu")
    rec = pipe.text_rec.model
    batches: list[torch.Tensor] = []
    forward = rec.forward
    rec.forward = lambda x: batches.append(x.clone()) or forward(x)  # record the real crop batches
    _texts(pipe, images)
    rec.forward = forward
    labels = rec.charset.labels
    out = {"crops": sum(len(b) for b in batches)}
    with torch.no_grad():
        for dtype in (torch.bfloat16, torch.float16):
            changed = 0
            for x in batches:
                a = ctc_greedy_decode(rec(x).softmax(-1).numpy(), labels)
                b = ctc_greedy_decode(rec(x.to(dtype).float()).softmax(-1).numpy(), labels)
                changed += sum(ta != tb for (ta, _), (tb, _) in zip(a, b, strict=True))
            out[str(dtype).removeprefix("torch.")] = changed
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/images/scenes")
    ap.add_argument("--configs", nargs="*", type=json.loads, default=DEFAULT_CONFIGS)
    ap.add_argument("--input-rounding", action="store_true")
    args = ap.parse_args()
    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    ref = _texts(pxtorch.pipeline("OCR", device="cpu"), images)
    report = {"images": len(images), "lines": sum(map(len, ref)), "configs": []}
    for cfg in args.configs:
        got = _texts(pxtorch.pipeline("OCR", device="cpu", engine="eager", engine_config=cfg), images)
        differing = sum(_differing(r, g) for r, g in zip(ref, got, strict=True))
        same = sum(r == g for r, g in zip(ref, got, strict=True))
        report["configs"].append({"engine_config": cfg, "scenes_identical": same, "texts_differing": differing})
        print(json.dumps(report["configs"][-1]), flush=True)
    if args.input_rounding:
        report["input_rounding_only"] = _input_rounding(images)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
