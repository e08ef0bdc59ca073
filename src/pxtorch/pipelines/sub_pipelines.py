"""The optional stages seal and table recognition share: layout detection and document preprocessing.

Both are built from the pipeline config's ``SubModules.LayoutDetection`` and
``SubPipelines.DocPreprocessor`` sections on first use (or at construction when the config turns them
on), with the pipeline's ``engine``/``engine_config``; a lock keeps server threads from building twice.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

__all__ = ["DocumentStages"]


class DocumentStages:
    """Mixin for :class:`~pxtorch.pipelines.base.BasePipeline` subclasses holding ``config`` and ``device``."""

    config: dict[str, Any]
    device: torch.device

    def _init_document_stages(self, config: dict[str, Any]) -> None:
        self._layout_cfg: dict[str, Any] = (config.get("SubModules") or {}).get("LayoutDetection") or {}
        self._doc_cfg: dict[str, Any] = (config.get("SubPipelines") or {}).get("DocPreprocessor") or {}
        self._layout: Any = None
        self._doc: Any = None
        self._stages_lock = threading.Lock()

    def _engine_kwargs(self) -> dict[str, Any]:
        return {k: self.config[k] for k in ("engine", "engine_config") if self.config.get(k) is not None}

    def _layout_pipeline(self) -> Any:
        """The ``LayoutDetectionPipeline`` of ``SubModules.LayoutDetection``."""
        with self._stages_lock:
            if self._layout is None:
                from .layout_detection import LayoutDetectionPipeline

                kwargs = {k: v for k, v in self._layout_cfg.items() if k != "module_name"}
                self._layout = LayoutDetectionPipeline(device=self.device, **{**self._engine_kwargs(), **kwargs})
            return self._layout

    def _doc_pipeline(self) -> Any:
        """The ``DocPreprocessorPipeline`` of ``SubPipelines.DocPreprocessor``."""
        with self._stages_lock:
            if self._doc is None:
                from .doc_preprocessor import DocPreprocessorPipeline

                cfg = {"pipeline_name": "doc_preprocessor", **self._doc_cfg}
                self._doc = DocPreprocessorPipeline(cfg, device=self.device, **self._engine_kwargs())
            return self._doc
