"""Recognition losses: CTC, label-smoothed NRTR cross-entropy and their sum (PaddleOCR ``MultiLoss``).

PaddleOCR facts (``ppocr/losses/rec_ctc_loss.py``, ``rec_nrtr_loss.py``, ``rec_multi_loss.py``):

- ``CTCLoss``: ``paddle.nn.CTCLoss(blank=0, reduction="none")`` on the raw logits (warp-ctc applies the
  softmax itself), every input length = T, then ``loss.mean()`` over the batch: the per-sample negative
  log-likelihood is **not** divided by the label length. ``use_focal_loss`` (off in PP-OCR configs)
  weights each sample by ``(1 - exp(-loss)) ** 2``.
- ``NRTRLoss(smoothing=True)``: ``eps = 0.1``, ``n_class = logits.shape[-1]``; the target distribution is
  ``1 - eps`` on the label and ``eps / (n_class - 1)`` on every other class (padding and specials
  included); per token ``-(q * log_softmax(logits)).sum()``; mean over the tokens whose target is not
  0 (padding), pooled over the whole batch. Without smoothing: ``CrossEntropyLoss(ignore_index=0)``.
- ``MultiLoss``: ``loss = weight_1 * ctc + weight_2 * nrtr`` (both weights 1.0 in PP-OCRv4/v5); the
  logged per-branch values are the weighted terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CTCLoss", "MultiLoss", "NRTRLoss"]


class CTCLoss(nn.Module):
    """Batch-mean CTC negative log-likelihood, computed in float32.

    Args:
        use_focal_loss: PaddleOCR's optional focal weighting (off by default, as in PP-OCR).
        zero_infinity: zero the loss of impossible alignments (label too long for T). An addition: PaddleOCR
            has no such switch; it only matters for samples that cannot be aligned at all.
    """

    def __init__(self, use_focal_loss: bool = False, zero_infinity: bool = True) -> None:
        super().__init__()
        self.use_focal_loss = use_focal_loss
        self.zero_infinity = zero_infinity

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """``logits [B, T, C]`` (pre-softmax), ``targets [B, S]`` (0-padded), ``target_lengths [B]`` -> scalar."""
        b, t, _ = logits.shape
        with torch.autocast(device_type=logits.device.type, enabled=False):
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [T, B, C]
            input_lengths = torch.full((b,), t, dtype=torch.long, device=logits.device)
            loss = F.ctc_loss(
                log_probs,
                targets.long(),
                input_lengths,
                target_lengths.long().to(logits.device),
                blank=0,
                reduction="none",
                zero_infinity=self.zero_infinity,
            )
            if self.use_focal_loss:
                loss = loss * (1.0 - torch.exp(-loss)) ** 2
            return loss.mean()


class NRTRLoss(nn.Module):
    """Cross-entropy of the NRTR branch with PaddleOCR's label smoothing; target 0 (padding) is ignored.

    Args:
        smoothing: use label smoothing (PaddleOCR default True).
        eps: smoothing mass (PaddleOCR hard-codes 0.1).
    """

    def __init__(self, smoothing: bool = True, eps: float = 0.1) -> None:
        super().__init__()
        self.smoothing = smoothing
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``logits [B, L, V]``, ``targets [B, L]`` (``tgt[:, 1:]``, 0 = padding) -> scalar token mean."""
        if logits.shape[:2] != targets.shape:
            raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}")
        with torch.autocast(device_type=logits.device.type, enabled=False):
            n_class = logits.shape[-1]
            log_p = logits.float().reshape(-1, n_class).log_softmax(-1)
            tgt = targets.reshape(-1).long()
            keep = tgt != 0
            if not bool(keep.any()):
                return log_p.sum() * 0.0
            log_p, tgt = log_p[keep], tgt[keep]
            nll = -log_p.gather(1, tgt[:, None]).squeeze(1)
            if not self.smoothing:
                return nll.mean()
            # sum_c q_c * (-log p_c) with q = eps/(n-1) off-target, 1-eps on target
            off = self.eps / (n_class - 1)
            loss = off * (-log_p.sum(1)) + (1.0 - self.eps - off) * nll
            return loss.mean()


class MultiLoss(nn.Module):
    """``ctc_weight * CTC + nrtr_weight * NRTR`` (PaddleOCR ``MultiLoss`` with ``CTCLoss`` + ``NRTRLoss``)."""

    def __init__(self, ctc_weight: float = 1.0, nrtr_weight: float = 1.0) -> None:
        super().__init__()
        self.ctc_weight = ctc_weight
        self.nrtr_weight = nrtr_weight
        self.ctc = CTCLoss()
        self.nrtr = NRTRLoss()

    def forward(
        self,
        ctc_logits: torch.Tensor,
        ctc_targets: torch.Tensor,
        ctc_lengths: torch.Tensor,
        nrtr_logits: torch.Tensor | None = None,
        nrtr_targets: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses as a dict.

        Args:
            ctc_logits: ``[B, T, C]`` CTC head output (pre-softmax).
            ctc_targets: ``[B, S]`` CTC ids, 0-padded.
            ctc_lengths: ``[B]`` label lengths.
            nrtr_logits: ``[B, L - 1, V]`` from :class:`~pxtorch.training.nrtr.NRTRBranch`, or ``None``.
            nrtr_targets: ``[B, L - 1]`` = ``tgt[:, 1:]`` of the ``tgt`` given to the branch.

        Returns:
            ``loss`` (total), ``loss_ctc`` and, when the NRTR branch is given, ``loss_nrtr`` (weighted terms).
        """
        out = {"loss_ctc": self.ctc_weight * self.ctc(ctc_logits, ctc_targets, ctc_lengths)}
        total = out["loss_ctc"]
        if nrtr_logits is not None:
            if nrtr_targets is None:
                raise ValueError("nrtr_targets is required with nrtr_logits")
            out["loss_nrtr"] = self.nrtr_weight * self.nrtr(nrtr_logits, nrtr_targets)
            total = total + out["loss_nrtr"]
        out["loss"] = total
        return out
