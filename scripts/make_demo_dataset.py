"""Render a small synthetic dataset in PaddleX's OCR format (see ``pxtorch.training.data.demo``).

    python scripts/make_demo_dataset.py --task text_rec --out data/demo_rec --preset new_chars --dict ppocrv4
    python scripts/make_demo_dataset.py --task text_det --out data/demo_det --num_train 20 --num_val 5
    python scripts/make_demo_dataset.py --task textline_ori --out data/demo_ori

Presets: ``basic`` (Chinese, English, numbers; all in PP-OCRv4's dictionary) and ``new_chars`` (German,
French, Spanish words, prices and symbols with € £ ß ö ç ñ ê Ä Ö γ δ λ σ ω Δ Σ ¶ ©, which PP-OCRv4's
dictionary lacks). Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import sys

from pxtorch.training.data.demo import PRESETS, TASKS, make_demo_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--num_train", type=int, default=None, help="train samples (default: 200, text_det 20)")
    parser.add_argument("--num_val", type=int, default=None, help="val samples (default: 50, text_det 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=PRESETS, default="basic")
    parser.add_argument("--charset", default=None, help="draw random strings of these characters instead")
    parser.add_argument(
        "--extra_chars", default=None, help="characters sprinkled into a third of the texts (new_chars: its set)"
    )
    parser.add_argument(
        "--dict",
        default="used",
        help="text_rec dict.txt: 'used' (the characters drawn), 'ppocrv4' (PP-OCRv4's dict + the new ones) or a file",
    )
    parser.add_argument("--font", default=None, help="one font file for everything (default: the packaged fonts)")
    parser.add_argument("--overwrite", action="store_true", help="replace the dataset files in a non-empty --out")
    parser.add_argument(
        "--mix_basic",
        type=float,
        default=0.0,
        help="share of texts from the basic preset (replay, so fine-tuning keeps what the model read before)",
    )
    args = parser.parse_args(argv)
    det = args.task == "text_det"
    out = make_demo_dataset(
        args.out,
        args.task,
        num_train=args.num_train if args.num_train is not None else (20 if det else 200),
        num_val=args.num_val if args.num_val is not None else (5 if det else 50),
        seed=args.seed,
        extra_chars=args.extra_chars,
        font=args.font,
        preset=args.preset,
        charset=args.charset,
        dict_source=args.dict,
        overwrite=args.overwrite,
        mix_basic=args.mix_basic,
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
