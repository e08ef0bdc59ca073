"""Text detection: DB maps + DBLoss; evaluation with PaddleX's post-processing and precision/recall/hmean."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...models.text_det_db import DBMapHead
from ...processing.db_postprocess import DBParams, db_postprocess
from ..losses.db_loss import DBLoss
from ..metrics.det_metric import DetMetric
from .base import OCRModule, OptimizerFactory, SchedulerFactory

__all__ = ["TextDetModule"]


class TextDetModule(OCRModule):
    """Fine-tunes a DB detector (``pp_ocrv4_mobile_det``, ``pp_ocrv5_mobile_det``).

    The official weights are exported without DB's threshold branch; training adds it (freshly
    initialised) and :meth:`export_model` removes it again. Loss: PaddleOCR ``DBLoss`` (balanced
    shrink-map loss with 3:1 hard negatives, L1 on the threshold map, dice on the binary map;
    ``alpha``/``beta`` weights). Evaluation: the pipeline's DB post-processing (``thresh``,
    ``box_thresh``, ``unclip_ratio``) and PaddleOCR's IoU-0.5 matching.
    """

    main_metric = "hmean"
    task = "text_detection"

    def __init__(
        self,
        model_name: str = "pp_ocrv4_mobile_det",
        pretrained: bool = True,
        deploy: bool | None = None,
        alpha: float = 5.0,
        beta: float = 10.0,
        ohem_ratio: float = 3.0,
        thresh: float = 0.3,
        box_thresh: float = 0.6,
        unclip_ratio: float = 1.5,
        max_candidates: int = 1000,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        model: torch.nn.Module | None = None,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__(model_name, pretrained, deploy, optimizer, scheduler, model, freeze_bn)
        self.save_hyperparameters(
            {
                "model_name": model_name,
                "freeze_bn": freeze_bn,
                "deploy": bool(self.model.model_args.get("deploy", False)),
                "alpha": alpha,
                "beta": beta,
                "ohem_ratio": ohem_ratio,
                "thresh": thresh,
                "box_thresh": box_thresh,
                "unclip_ratio": unclip_ratio,
                "max_candidates": max_candidates,
            }
        )
        head = self.model.head
        if head.thresh is None:
            head.thresh = DBMapHead(self.model.neck.out_channels)
        self.loss = DBLoss(alpha=alpha, beta=beta, ohem_ratio=ohem_ratio)
        self.db_params = DBParams(
            thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio, max_candidates=max_candidates
        )
        self.val_metric = DetMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> text probability ``[B, 1, H, W]``."""
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        maps = self.model.forward_maps(batch["image"])
        losses = self.loss(maps, batch)
        self.log_losses(losses, batch_size=int(batch["image"].shape[0]))
        return losses["loss"]

    def predict_polys(self, images: torch.Tensor, src_hw: list[tuple[int, int]]) -> list[list[np.ndarray]]:
        """Quads ``[4, 2]`` in source pixels for each image of a batch."""
        prob = self.model(images).float().cpu().numpy()[:, 0]
        out = []
        for p, hw in zip(prob, src_hw, strict=True):
            quads, _ = db_postprocess(p, tuple(int(v) for v in hw), self.db_params)
            out.append([q.astype(np.float32) for q in quads])
        return out

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        preds = self.predict_polys(batch["image"], batch["src_hw"])
        self.val_metric.update(preds, batch["polys"], batch["ignore"])

    def export_model(self) -> torch.nn.Module:
        model = super().export_model()
        model.head.thresh = None  # inference graph: shrink map only, like the official export
        model.model_args = {**model.model_args, "threshold_head": False}
        return model
