"""Metrics with PaddleX's names: det precision/recall/hmean, rec acc/norm_edit_dis, cls top1 (DDP-synced)."""

from .det_metric import DetMetric, match_detections
from .rec_metric import ClsMetric, RecMetric, edit_distance, normalized_edit_distance

__all__ = ["ClsMetric", "DetMetric", "RecMetric", "edit_distance", "match_detections", "normalized_edit_distance"]
