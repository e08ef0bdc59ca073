"""Text-line orientation (0/180°) classification with cross-entropy; PaddleX metric ``top1``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..heads import adapt_classifier
from ..metrics.rec_metric import ClsMetric
from .base import OCRModule, OptimizerFactory, SchedulerFactory

__all__ = ["TextlineOriModule"]


class TextlineOriModule(OCRModule):
    """Fine-tunes a text-line orientation classifier (``ch_ppocr_mobile_v2_0_cls``).

    Args:
        class_names: the dataset's ``label.txt`` names (``["0", "180"]``); a head with other names is
            rebuilt, keeping rows of names the pretrained head already had.
        label_smoothing: cross-entropy smoothing (PaddleOCR's ``ClsLoss``: none).
    """

    main_metric = "top1"
    task = "textline_orientation"

    def __init__(
        self,
        model_name: str = "ch_ppocr_mobile_v2_0_cls",
        pretrained: bool = True,
        deploy: bool | None = None,
        class_names: list[str] | None = None,
        label_smoothing: float = 0.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        model: torch.nn.Module | None = None,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__(model_name, pretrained, deploy, optimizer, scheduler, model, freeze_bn)
        if class_names is not None:
            adapt_classifier(self.model, list(class_names))
        self.save_hyperparameters(
            {
                "model_name": model_name,
                "freeze_bn": freeze_bn,
                "deploy": bool(self.model.model_args.get("deploy", False)),
                "class_names": list(self.model.pretrained_cfg.labels or []),
                "label_smoothing": label_smoothing,
            }
        )
        self.val_metric = ClsMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 48, 192]`` -> logits ``[B, num_classes]``."""
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["image"])
        loss = F.cross_entropy(logits.float(), batch["label"], label_smoothing=self.hparams.label_smoothing)
        self.log_losses({"loss": loss}, batch_size=int(logits.shape[0]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.val_metric.update(self.model(batch["image"]).argmax(-1), batch["label"])
