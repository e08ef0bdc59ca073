"""PaddleX's ``check_dataset`` mode for OCR datasets (``TextDetDataset``, ``MSTextRecDataset``, ``ClsDataset``).

    python scripts/check_dataset.py --task text_rec --dataset_dir DIR [--output output] [--num_samples 10]

Writes ``<output>/check_dataset_result.json``, ``<output>/check_dataset/demo_img/`` and
``<output>/check_dataset/histogram.png``, prints the warnings and ``Check dataset passed !``, or prints
the error (file and line) and exits with 1.
"""

from __future__ import annotations

import argparse
import sys

from pxtorch.training.data.check import TASK_ALIASES, check_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(TASK_ALIASES), help="dataset kind (PaddleX module)")
    parser.add_argument("--dataset_dir", required=True, help="the dataset directory")
    parser.add_argument("--output", default="output", help="PaddleX's Global.output (default: output)")
    parser.add_argument("--num_samples", type=int, default=10, help="samples per split drawn into demo_img")
    args = parser.parse_args(argv)
    try:
        result = check_dataset(args.dataset_dir, args.task, args.output, args.num_samples)
    except Exception as exc:  # any failure: one line, exit code 1 (the JSON already records it)
        print(f"Check dataset failed: {exc}", file=sys.stderr)
        return 1
    attrs = result["attributes"]
    print(f"{result['dataset_type']}: {attrs['train_samples']} train, {attrs['val_samples']} val samples")
    for note in attrs.get("warnings", []):
        print(f"warning: {note}")
    print("Check dataset passed !")
    return 0


if __name__ == "__main__":
    sys.exit(main())
