"""What ``scripts/train.py``, ``scripts/evaluate.py`` and ``scripts/export.py`` do, callable from Python and tests."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from .data.datamodule import OCRDataModule, require_dataset_dir
from .modules import OCRModule, TextDetModule, TextlineOriModule, TextRecModule
from .outputs import load_module, write_result_json

__all__ = ["evaluate", "train"]

_log = logging.getLogger(__name__)

_DATA_TASK = {"text_detection": "text_det", "text_recognition": "text_rec", "textline_orientation": "textline_ori"}
_MODULE_FOR_TASK: dict[str, type[OCRModule]] = {
    "text_detection": TextDetModule,
    "text_recognition": TextRecModule,
    "textline_orientation": TextlineOriModule,
}


def _instantiate_all(section: DictConfig | None) -> list[Any]:
    if not section:
        return []
    return [instantiate(c) for c in section.values() if c is not None and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, model, callbacks, loggers and trainer from ``cfg`` (``conf/train.yaml``), then fit.

    Returns the trainer's final metrics (``val/acc``, ``train/loss`` …) as floats.
    """
    if cfg.get("seed") is not None:
        L.seed_everything(int(cfg.seed), workers=True)
    require_dataset_dir(cfg.data.get("dataset_dir"))  # before Hydra would wrap the error in its own
    datamodule: OCRDataModule = instantiate(cfg.data)
    module_cls = get_class(cfg.model._target_)
    extra: dict[str, Any] = {}
    if issubclass(module_cls, TextRecModule):
        charset = datamodule.charset(bool(cfg.model.get("use_space_char", True)))
        extra["charset"] = None if charset is None else charset.characters
    elif issubclass(module_cls, TextlineOriModule):
        extra["class_names"] = datamodule.class_names()
    optimizer = instantiate(cfg.optimizer) if cfg.get("optimizer") else None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    model: OCRModule = instantiate(cfg.model, optimizer=optimizer, scheduler=scheduler, **extra)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    if cfg.get("validate_first"):
        trainer.validate(model, datamodule=datamodule)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path {ckpt_path} does not exist")
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _module_for(weights: str | Path) -> OCRModule:
    """A LightningModule around ``weights``: a training checkpoint, a pretrained dir or a registry name."""
    if str(weights).endswith(".ckpt"):
        return load_module(weights)
    from ..hub import from_pretrained

    model = from_pretrained(weights)
    module_cls = _MODULE_FOR_TASK[model.pretrained_cfg.task]
    return module_cls(model_name=model.architecture, pretrained=False, model=model).eval()


def evaluate(
    weights: str | Path,
    dataset_dir: str | Path,
    output: str | Path = "output",
    batch_size: int | None = None,
    num_workers: int = 2,
    accelerator: str = "auto",
) -> dict[str, float]:
    """Evaluate ``weights`` on the ``val`` split of a PaddleX dataset and write ``<output>/evaluate_result.json``.

    ``weights``: a Lightning checkpoint (``.ckpt``), a pxtorch pretrained dir (``best_accuracy/``), a Paddle
    inference dir / ``.onnx`` file, or a registry name (``PP-OCRv4_mobile_rec``: the official weights).
    Returns the PaddleX-named metrics (rec ``acc``/``norm_edit_dis``, det ``precision``/``recall``/``hmean``,
    orientation ``top1``).
    """
    module = _module_for(weights)
    task = _DATA_TASK[module.model.pretrained_cfg.task]
    default_bs = {"text_det": 1, "text_rec": 64, "textline_ori": 64}[task]
    datamodule = OCRDataModule(
        task=task, dataset_dir=str(dataset_dir), batch_size=batch_size or default_bs, num_workers=num_workers
    )
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False
    )
    (raw,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    metrics = {k.removeprefix("val/"): float(v) for k, v in raw.items() if k != "val/score"}
    write_result_json(
        Path(output) / "evaluate_result.json",
        {
            "metrics": metrics,
            "main_metric": module.main_metric,
            "weight_path": str(weights),
            "model_name": module.model.pretrained_cfg.paddlex_name or module.model.architecture,
            "dataset_path": str(dataset_dir),
            "num_samples": len(datamodule.val_set),
        },
    )
    _log.info("evaluate_result.json written to %s", output)
    return metrics
