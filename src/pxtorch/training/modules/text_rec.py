"""Text recognition: CTC + the NRTR guidance branch (PP-OCRv4/v5 ``MultiHead`` training), PaddleX metrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..._features import image_input
from ...processing.charset import Charset
from ...processing.ctc import ctc_greedy_decode
from ..heads import CharsetMode, adapt_ctc_head, merge_charsets
from ..labels import LabelEncoder, nrtr_vocab_size
from ..losses.rec_loss import MultiLoss
from ..metrics.rec_metric import RecMetric
from ..nrtr import NRTRBranch
from .base import OCRModule, OptimizerFactory, SchedulerFactory

__all__ = ["TextRecModule"]


def _pad(seqs: list[list[int]], min_width: int, device: torch.device) -> torch.Tensor:
    """``[B, max(len, min_width)]`` long tensor, 0-padded on the right."""
    width = max([min_width, *(len(s) for s in seqs)])
    out = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device)


class TextRecModule(OCRModule):
    """Fine-tunes a CTC recogniser (``pp_ocrv4_mobile_rec``, ``pp_ocrv5_mobile_rec``).

    Training runs PaddleOCR's ``MultiHead``: the SVTR neck + CTC head (the inference path) and, from the
    same backbone features, the NRTR transformer decoder as guidance (``nrtr_weight``; PaddleOCR's
    ``use_guide`` stops the CTC gradient at the neck, so the backbone learns through NRTR only). With
    ``nrtr_weight=0`` the branch is dropped and the CTC gradient reaches the backbone.

    Args:
        charset: the dataset's dictionary (``dict.txt`` entries); merged with the model's by ``charset_mode``
            (see :func:`pxtorch.training.heads.merge_charsets`).
        max_text_length: longer labels are skipped (PaddleOCR drops those samples).
        nrtr_dim / nrtr_layers: NRTR branch size (PP-OCRv4/v5: 384, 4).
        ctc_weight / nrtr_weight: ``MultiLoss`` weights (PaddleOCR: 1.0 / 1.0).
        use_guide: stop the CTC gradient at the neck so the backbone learns through NRTR only
            (PaddleOCR's recipe). ``None``: on when training from scratch, off when starting from
            the official weights — those ship without an NRTR head, and a fresh NRTR branch alone
            steering a trained backbone wrecks it (measured: CTC loss 4.9 -> 47, acc 0.11 -> 0.00 in 10 steps).
    """

    main_metric = "acc"
    task = "text_recognition"

    def __init__(
        self,
        model_name: str = "pp_ocrv4_mobile_rec",
        pretrained: bool = True,
        deploy: bool | None = None,
        charset: list[str] | None = None,
        charset_mode: CharsetMode = "auto",
        use_space_char: bool = True,
        max_text_length: int = 25,
        nrtr_dim: int = 384,
        nrtr_layers: int = 4,
        ctc_weight: float = 1.0,
        nrtr_weight: float = 1.0,
        use_guide: bool | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        model: torch.nn.Module | None = None,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__(model_name, pretrained, deploy, optimizer, scheduler, model, freeze_bn)
        dataset_charset = Charset(list(charset), use_space_char) if charset is not None else None
        final = merge_charsets(self.model.charset, dataset_charset, charset_mode)
        self.head_rows_kept = adapt_ctc_head(self.model, final)
        # What a checkpoint needs to rebuild this module without the pretrained weights or the dataset.
        self.save_hyperparameters(
            {
                "model_name": model_name,
                "freeze_bn": freeze_bn,
                "deploy": bool(self.model.model_args.get("deploy", False)),
                "charset": list(final.characters),
                "charset_mode": "replace",
                "use_space_char": final.use_space_char,
                "max_text_length": max_text_length,
                "nrtr_dim": nrtr_dim,
                "nrtr_layers": nrtr_layers,
                "ctc_weight": ctc_weight,
                "nrtr_weight": nrtr_weight,
                "use_guide": use_guide,
            }
        )
        self.encoder = LabelEncoder(final, max_text_length)
        self.loss = MultiLoss(ctc_weight=ctc_weight, nrtr_weight=nrtr_weight)
        self.use_nrtr = nrtr_weight > 0
        if self.use_nrtr:
            self.gtc = NRTRBranch(
                self.model.backbone.out_channels,
                nrtr_vocab_size(final),
                nrtr_dim=nrtr_dim,
                num_decoder_layers=nrtr_layers,
                max_text_length=max_text_length,
            )
        else:
            self.gtc = None
        if use_guide is None:
            use_guide = self.use_nrtr and not pretrained and model is None
        # without the NRTR branch the CTC loss must reach the backbone
        self.model.neck.use_guide = bool(use_guide and self.use_nrtr)
        self.hparams["use_guide"] = self.model.neck.use_guide
        self.val_metric = RecMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 48, W]`` -> CTC logits ``[B, W/8, num_classes]``."""
        return self.model(x)

    # -- labels -------------------------------------------------------------------------------------
    def _targets(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Encode labels; samples PaddleOCR would drop (empty, too long, no known character) get ``valid=False``."""
        encoded = [self.encoder.multi(t) if self.use_nrtr else self.encoder.ctc(t) for t in texts]
        valid = torch.tensor([e is not None for e in encoded], device=self.device)
        ctc = [(e[0] if self.use_nrtr else e) if e is not None else [] for e in encoded]
        lengths = torch.tensor([len(c) for c in ctc], dtype=torch.long, device=self.device)
        out = {"valid": valid, "ctc": _pad(ctc, 1, self.device), "ctc_lengths": lengths}
        if self.use_nrtr:
            # label_gtc[:, :2 + max length]: <s> text </s> then 0-padding
            out["nrtr"] = _pad([e[1] if e is not None else [] for e in encoded], 3, self.device)
        return out

    # -- steps --------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        targets = self._targets(batch["text"])
        valid = targets["valid"]
        images = batch["image"][valid]
        if images.shape[0] == 0:  # every label was unusable: a zero loss that still touches the graph
            return sum(p.sum() for p in self.parameters()) * 0.0
        feats = self.model.backbone(image_input(images))
        seq = self.model.neck(feats).squeeze(2).transpose(1, 2)
        ctc_logits = self.model.head(seq)
        nrtr_logits = nrtr_targets = None
        if self.use_nrtr:
            tgt = targets["nrtr"][valid]
            nrtr_logits, nrtr_targets = self.gtc(feats, tgt), tgt[:, 1:]
        losses = self.loss(ctc_logits, targets["ctc"][valid], targets["ctc_lengths"][valid], nrtr_logits, nrtr_targets)
        self.log_losses(losses, batch_size=int(images.shape[0]))
        return losses["loss"]

    def decode(self, logits: torch.Tensor) -> list[tuple[str, float]]:
        probs = F.softmax(logits.float(), dim=-1).cpu().numpy()
        return ctc_greedy_decode(probs, self.model.charset.labels)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        preds = [text for text, _ in self.decode(self.model(batch["image"]))]
        self.val_metric.update(preds, list(batch["text"]))
