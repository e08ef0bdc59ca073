"""Evaluate a model on the val split of a PaddleX dataset; writes ``<output>/evaluate_result.json``.

python scripts/evaluate.py --weights output/<run>/checkpoints/last.ckpt --dataset_dir dataset/my_rec
python scripts/evaluate.py --weights output/<run>/best_accuracy --dataset_dir dataset/my_rec
python scripts/evaluate.py --weights PP-OCRv4_mobile_rec --dataset_dir dataset/my_rec   # official weights
"""

from __future__ import annotations

import argparse
import json

from pxtorch.training.run import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a .ckpt, a pretrained dir, a Paddle/ONNX model or a name")
    parser.add_argument("--dataset_dir", required=True, help="a PaddleX-format dataset (its val.txt is evaluated)")
    parser.add_argument("--output", default="output", help="where evaluate_result.json goes (default: output)")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto, cpu or gpu")
    args = parser.parse_args(argv)
    metrics = evaluate(
        args.weights,
        args.dataset_dir,
        output=args.output,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        accelerator=args.device,
    )
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
