"""Fine-tune a pxtorch model with Lightning, configured by Hydra (``conf/train.yaml``).

    python scripts/train.py model=pp_ocrv4_rec data.dataset_dir=dataset/my_rec
    python scripts/train.py model=pp_ocrv4_det data.dataset_dir=dataset/my_det trainer=gpu
    python scripts/train.py -m model=pp_ocrv4_rec data.dataset_dir=... optimizer.lr=1e-4,5e-4
    python scripts/train.py experiment=rec_v4_new_chars
    python scripts/train.py ... ckpt_path=output/<run>/checkpoints/last.ckpt      # resume

Each run writes PaddleX's outputs into its directory (``train_result.json``, ``best_accuracy/``,
``latest/``, Lightning checkpoints, logs); ``best_accuracy/`` loads in the OCR pipeline through
``text_recognition_model_dir=`` / ``text_detection_model_dir=`` / ``textline_orientation_model_dir=``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pxtorch.training.run import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "")


if __name__ == "__main__":
    main()
