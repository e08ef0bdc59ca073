"""Training losses: DB (detection), CTC + NRTR (recognition)."""

from .db_loss import BalanceLoss, DBLoss, DiceLoss, MaskL1Loss
from .rec_loss import CTCLoss, MultiLoss, NRTRLoss

__all__ = ["BalanceLoss", "CTCLoss", "DBLoss", "DiceLoss", "MaskL1Loss", "MultiLoss", "NRTRLoss"]
