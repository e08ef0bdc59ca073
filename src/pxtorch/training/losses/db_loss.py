"""DB detector loss: PaddleOCR's ``DBLoss`` with ``BalanceLoss``, ``DiceLoss`` and ``MaskL1Loss``.

PaddleOCR's stock config (``main_loss_type: DiceLoss``) puts a *Dice* loss inside ``BalanceLoss``: the
inner loss is then one scalar, the "OHEM" over negatives only re-weights it by
``(P + k) / (P + k + eps)`` (``P`` positives, ``k = min(N, ratio * P)`` negatives), and the shrink-map
loss is effectively ``alpha * dice`` (0 when the batch has no positive pixel). ``main_loss_type="BCELoss"``
gives the per-pixel BCE with hard-negative mining of the DB paper.

Everything is computed in float32 with autocast disabled, whatever the input precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BalanceLoss", "DBLoss", "DiceLoss", "MaskL1Loss"]

_BALANCE_INNER = ("DiceLoss", "BCELoss", "MaskL1Loss")


class DiceLoss(nn.Module):
    """``1 - 2 sum(p g m) / (sum(p m) + sum(g m) + eps)`` over the whole batch (a scalar).

    Args:
        eps: added to the denominator.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
        """``pred``, ``gt``, ``mask`` (and optional ``weights``, multiplied into the mask): same shape."""
        if pred.shape != gt.shape or pred.shape != mask.shape:
            raise ValueError(
                f"shape mismatch: pred {tuple(pred.shape)}, gt {tuple(gt.shape)}, mask {tuple(mask.shape)}"
            )
        if weights is not None:
            mask = weights * mask
        intersection = (pred * gt * mask).sum()
        union = (pred * mask).sum() + (gt * mask).sum() + self.eps
        return 1 - 2.0 * intersection / union


class MaskL1Loss(nn.Module):
    """``sum(|p - g| m) / (sum(m) + eps)`` (a scalar)."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
        """``pred``, ``gt``, ``mask``: same shape."""
        return ((pred - gt).abs() * mask).sum() / (mask.sum() + self.eps)


class BalanceLoss(nn.Module):
    """PaddleOCR ``BalanceLoss``: positives plus the hardest negatives (OHEM).

    With ``positive = gt * mask``, ``negative = (1 - gt) * mask``, ``P = int(sum(positive))`` and
    ``k = int(min(sum(negative), P * negative_ratio))``, the inner loss ``l`` (per pixel for ``BCELoss``,
    a broadcast scalar for ``DiceLoss`` / ``MaskL1Loss``) gives::

        (sum(positive * l) + sum(top_k(negative * l))) / (P + k + eps)    if k > 0
        sum(positive * l) / (P + eps)                                     otherwise

    Args:
        balance_loss: ``False`` returns the inner loss as is (per pixel for ``BCELoss``).
        main_loss_type: ``"DiceLoss"`` (PaddleOCR default), ``"BCELoss"`` or ``"MaskL1Loss"``.
        negative_ratio: at most this many negatives per positive.
        eps: denominators' epsilon (also the inner Dice / L1 loss's).
    """

    def __init__(
        self,
        balance_loss: bool = True,
        main_loss_type: str = "DiceLoss",
        negative_ratio: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if main_loss_type not in _BALANCE_INNER:
            raise ValueError(f"main_loss_type must be one of {_BALANCE_INNER}, got {main_loss_type!r}")
        self.balance_loss = balance_loss
        self.main_loss_type = main_loss_type
        self.negative_ratio = negative_ratio
        self.eps = eps
        self.inner: nn.Module | None = None
        if main_loss_type == "DiceLoss":
            self.inner = DiceLoss(eps)
        elif main_loss_type == "MaskL1Loss":
            self.inner = MaskL1Loss(eps)

    def _inner_loss(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
        if self.inner is None:  # BCELoss: per pixel, the mask is not applied here
            return F.binary_cross_entropy(pred, gt, reduction="none")
        return self.inner(pred, gt, mask)

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
        """``pred`` (probabilities), ``gt``, ``mask``: ``[B, H, W]`` -> scalar (per pixel when not balanced + BCE)."""
        positive = gt * mask
        negative = (1 - gt) * mask
        positive_count = int(positive.sum())
        negative_count = int(min(float(negative.sum()), positive_count * self.negative_ratio))
        loss = self._inner_loss(pred, gt, mask)
        if not self.balance_loss:
            return loss
        positive_loss = (positive * loss).sum()
        if negative_count > 0:
            negative_loss = (negative * loss).reshape(-1)
            hardest = torch.topk(negative_loss, negative_count, sorted=False).values
            return (positive_loss + hardest.sum()) / (positive_count + negative_count + self.eps)
        return positive_loss / (positive_count + self.eps)


class DBLoss(nn.Module):
    """PaddleOCR ``DBLoss``: ``alpha * balance(shrink) + beta * L1(threshold) + dice(binary)``.

    Args:
        alpha: weight of the shrink-map (probability) loss.
        beta: weight of the threshold-map L1 loss.
        ohem_ratio: ``BalanceLoss`` negatives per positive.
        balance_loss: ``BalanceLoss.balance_loss``.
        main_loss_type: ``BalanceLoss`` inner loss for the shrink map (``"DiceLoss"`` as PaddleOCR's configs).
        eps: epsilon of every part.
    """

    def __init__(
        self,
        alpha: float = 5.0,
        beta: float = 10.0,
        ohem_ratio: float = 3.0,
        balance_loss: bool = True,
        main_loss_type: str = "DiceLoss",
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.bce_loss = BalanceLoss(balance_loss, main_loss_type, negative_ratio=ohem_ratio, eps=eps)
        self.l1_loss = MaskL1Loss(eps)
        self.dice_loss = DiceLoss(eps)

    def forward(self, maps: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Losses of one batch.

        Args:
            maps: ``[B, 3, H, W]`` probabilities: shrink map, threshold map, approximate binary map.
            batch: ``shrink_map``, ``shrink_mask``, ``threshold_map``, ``threshold_mask``: ``[B, H, W]``.
        Returns:
            ``loss`` (total), ``loss_shrink_maps`` (``alpha *``), ``loss_threshold_maps`` (``beta *``),
            ``loss_binary_maps``: float32 scalars.
        """
        if maps.ndim != 4 or maps.shape[1] != 3:
            raise ValueError(f"expected maps of shape [B, 3, H, W], got {tuple(maps.shape)}")
        with torch.autocast(device_type=maps.device.type, enabled=False):
            maps = maps.float()
            shrink_map = batch["shrink_map"].float()
            shrink_mask = batch["shrink_mask"].float()
            threshold_map = batch["threshold_map"].float()
            threshold_mask = batch["threshold_mask"].float()
            loss_shrink = self.alpha * self.bce_loss(maps[:, 0], shrink_map, shrink_mask)
            loss_threshold = self.beta * self.l1_loss(maps[:, 1], threshold_map, threshold_mask)
            loss_binary = self.dice_loss(maps[:, 2], shrink_map, shrink_mask)
            return {
                "loss": loss_shrink + loss_threshold + loss_binary,
                "loss_shrink_maps": loss_shrink,
                "loss_threshold_maps": loss_threshold,
                "loss_binary_maps": loss_binary,
            }
