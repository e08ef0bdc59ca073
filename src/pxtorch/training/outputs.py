"""Training outputs like PaddleX's: ``train_result.json``, pretrained dirs of the best/last model, checkpoint I/O.

An output directory after ``scripts/train.py``::

    output/<run>/
    ├── train_result.json      # PaddleX schema: models.best / models.last_1 with score, checkpoint, pretrained dir
    ├── train.log              # Hydra's job log
    ├── .hydra/config.yaml     # the composed config
    ├── checkpoints/           # Lightning checkpoints (best by val/score, last.ckpt): resumable
    ├── best_accuracy/         # pxtorch pretrained dir of the best model (config.json, model.safetensors, charset.txt)
    ├── latest/                # the same for the last model
    └── csv/ , tensorboard/    # logger output
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from .._checkpoint import save_pretrained
from .modules import MODULES, OCRModule

__all__ = ["PaddleXOutputs", "export_checkpoint", "load_module", "write_result_json"]

_log = logging.getLogger(__name__)


def load_module(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> OCRModule:
    """Rebuild the LightningModule a pxtorch training checkpoint was written by (``weights_only`` loading).

    The pretrained weights are not needed: the architecture, charset and class names come from the
    checkpoint's hyper-parameters.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    meta = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    name = meta.get("pxtorch_module")
    if name not in MODULES:
        raise ValueError(f"{path}: not a pxtorch training checkpoint (module {name!r}; known: {sorted(MODULES)})")
    module = MODULES[name].load_from_checkpoint(path, map_location=map_location, weights_only=True, pretrained=False)
    return module.eval()


def export_module(module: OCRModule, out_dir: str | Path) -> Path:
    """Save the module's inference model as a pxtorch pretrained dir (loads with ``model_dir=``)."""
    return save_pretrained(module.export_model(), out_dir)


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Lightning checkpoint -> pxtorch pretrained dir."""
    return export_module(load_module(ckpt_path), out_dir)


def write_result_json(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a PaddleX-style ``*_result.json`` (``done_flag`` first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"done_flag": True, **result}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _metrics_of(trainer: L.Trainer, prefix: str = "val/") -> dict[str, float]:
    return {
        k.removeprefix(prefix): float(v)
        for k, v in trainer.callback_metrics.items()
        if k.startswith(prefix) and k != f"{prefix}score"
    }


class PaddleXOutputs(L.Callback):
    """At the end of ``fit`` (rank 0): export ``best_accuracy/`` and ``latest/`` and write ``train_result.json``.

    ``score`` is the module's main metric (rec ``acc``, det ``hmean``, orientation ``top1``), the one
    that selects the best checkpoint. (PaddleX writes detection's ``precision`` there while selecting by
    ``hmean``; we report what selected the model, and every metric under ``metrics``.)
    """

    def __init__(self, output_dir: str, config_file: str = ".hydra/config.yaml", train_log: str = "train.log") -> None:
        self.output_dir = Path(output_dir)
        self.config_file = config_file
        self.train_log = train_log

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        assert isinstance(pl_module, OCRModule)
        out = self.output_dir
        ckpt_cb = trainer.checkpoint_callback
        models: dict[str, Any] = {}
        last_metrics = _metrics_of(trainer)
        latest = export_module(pl_module, out / "latest")
        last_ckpt = getattr(ckpt_cb, "last_model_path", "") if ckpt_cb else ""
        models["last_1"] = {
            "score": last_metrics.get(pl_module.main_metric),
            "metrics": last_metrics,
            "epoch": max(0, trainer.current_epoch - 1),  # index of the last finished epoch, as in checkpoints
            "global_step": trainer.global_step,
            "checkpoint": _rel(last_ckpt, out),
            "pretrained_dir": _rel(latest, out),
        }
        best_path = getattr(ckpt_cb, "best_model_path", "") if ckpt_cb else ""
        if best_path and Path(best_path).is_file():
            best_module = load_module(best_path)
            best_dir = export_module(best_module, out / "best_accuracy")
            best_ckpt = torch.load(best_path, map_location="cpu", weights_only=True, mmap=True)
            score = ckpt_cb.best_model_score
            models["best"] = {
                "score": None if score is None else float(score),
                "epoch": best_ckpt.get("epoch"),
                "global_step": best_ckpt.get("global_step"),
                "checkpoint": _rel(best_path, out),
                "pretrained_dir": _rel(best_dir, out),
            }
        else:  # no checkpointing (fast_dev_run): the last model is the best we have
            models["best"] = dict(models["last_1"], pretrained_dir=_rel(latest, out))
        model = pl_module.model
        charset_file = latest / "charset.txt"
        write_result_json(
            out / "train_result.json",
            {
                "model_name": model.pretrained_cfg.paddlex_name or model.architecture,
                "architecture": model.architecture,
                "label_dict": str(charset_file.resolve()) if charset_file.is_file() else "",
                "train_log": self.train_log,
                "config": self.config_file,
                "main_metric": pl_module.main_metric,
                "models": models,
            },
        )
        _log.info("train_result.json and pretrained dirs written to %s", out)


def _rel(path: str | Path, root: Path) -> str:
    if not path:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)
