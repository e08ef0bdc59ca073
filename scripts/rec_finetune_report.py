"""Compare recognisers on a PaddleX rec dataset's val split and on real scenes (the README's fine-tuning table).

    python scripts/rec_finetune_report.py --dataset_dir dataset/rec_new_chars \\
        --weights pretrained=PP-OCRv4_mobile_rec finetuned=output/exp_pretrained/<run>/best_accuracy \\
        scratch=output/exp_scratch/<run>/best_accuracy --scenes 30

Per model: ``acc`` / ``norm_edit_dis`` on all val samples (PaddleX's metric, spaces ignored), ``acc`` on the
samples whose label has characters outside PP-OCRv4's dictionary and on the others, and — what fine-tuning
must not break — in the OCR pipeline (PP-OCRv4 det) the share of lines on the bundled demo image and the
first ``--scenes`` images of ../shared/data/images/scenes read as the official recogniser reads them (spaces
ignored, as in PaddleX's metric).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import pxtorch
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.training.data.datasets import TextRecDataset
from pxtorch.training.data.demo import ppocrv4_dict
from pxtorch.training.metrics import RecMetric

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT.parent / "shared" / "data" / "images" / "scenes"


@torch.inference_mode()
def _val_predictions(model: torch.nn.Module, dataset_dir: str) -> tuple[list[str], list[str]]:
    data = TextRecDataset(dataset_dir, "val", train=False)
    preds, labels = [], []
    for batch in DataLoader(data, batch_size=64):
        probs = model(batch["image"]).softmax(-1).numpy()
        preds += [t for t, _ in ctc_greedy_decode(probs, model.charset.labels)]
        labels += list(batch["text"])
    return preds, labels


def _squash(text: str) -> str:
    """Spaces removed: PP-OCRv4 mostly drops them, a model fine-tuned on spaced labels writes them."""
    return "".join(text.split())


def _acc(preds: list[str], labels: list[str]) -> dict[str, float]:
    metric = RecMetric()
    metric.update(preds, labels)
    return {k: float(v) for k, v in metric.compute().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--weights", nargs="+", required=True, help="label=path-or-name pairs")
    parser.add_argument("--scenes", type=int, default=30, help="scene images for the pipeline check (0: demo only)")
    args = parser.parse_args(argv)
    known = set(ppocrv4_dict())
    images = [str(ROOT / "src/pxtorch/assets/demo_ocr.jpg")] + [str(p) for p in sorted(SCENES.glob("*"))[: args.scenes]]
    base = pxtorch.pipeline("OCR", ocr_version="PP-OCRv4", device="cpu")
    reference = [r["rec_texts"] for r in base(images)]
    rows = []
    for item in args.weights:
        label, _, weights = item.partition("=")
        model = pxtorch.from_pretrained(weights).eval()
        preds, labels = _val_predictions(model, args.dataset_dir)
        new = [i for i, t in enumerate(labels) if any(c not in known and not c.isspace() for c in t)]
        old = sorted(set(range(len(labels))) - set(new))
        overall = _acc(preds, labels)
        acc_new = _acc([preds[i] for i in new], [labels[i] for i in new])["acc"]
        acc_old = _acc([preds[i] for i in old], [labels[i] for i in old])["acc"]
        ocr = pxtorch.pipeline("OCR", ocr_version="PP-OCRv4", device="cpu", text_recognition_model_dir=weights)
        same = total = 0
        for res, ref in zip(ocr(images), reference, strict=True):
            total += len(ref)
            same += sum(_squash(a) == _squash(b) for a, b in zip(res["rec_texts"], ref, strict=True))
        rows.append(
            (label, overall["acc"], overall["norm_edit_dis"], acc_new, len(new), acc_old, len(old), same / total)
        )
    header = "| model | val acc | val norm_edit_dis | acc, new chars (n) | acc, others (n) |"
    print(f"{header} pipeline lines as official, spaces ignored ({len(images)} images) |")
    print("|---|---|---|---|---|---|")
    for label, acc, ned, a_new, n_new, a_old, n_old, agree in rows:
        print(f"| {label} | {acc:.3f} | {ned:.3f} | {a_new:.3f} ({n_new}) | {a_old:.3f} ({n_old}) | {agree:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
