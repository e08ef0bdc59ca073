"""Turn a Lightning training checkpoint into a pxtorch pretrained dir (what ``model_dir=`` loads).

python scripts/export.py --ckpt output/<run>/checkpoints/epoch_004.ckpt --output my_rec_model
pxtorch --pipeline OCR --input img.jpg --text_recognition_model_dir my_rec_model
"""

from __future__ import annotations

import argparse

from pxtorch.training.outputs import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by scripts/train.py")
    parser.add_argument("--output", required=True, help="directory for config.json + model.safetensors (+ charset)")
    args = parser.parse_args(argv)
    out = export_checkpoint(args.ckpt, args.output)
    print(f"exported {args.ckpt} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
