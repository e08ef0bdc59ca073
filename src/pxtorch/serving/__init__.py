"""PaddleX-compatible serving (FastAPI + uvicorn, the ``serve`` extra).

    pxtorch serve --pipeline OCR [--device cpu] [--host 127.0.0.1] [--port 8080]
    pxtorch --serve --pipeline OCR           (PaddleX's spelling)

``POST /ocr`` and ``GET /health`` with PaddleX's bodies and envelope; concurrent requests are
batched onto the models (:mod:`pxtorch.serving.batcher`); limits in :class:`ServerSettings`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServerSettings", "create_app", "serve"]


def _require_serving_deps() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ImportError(f"serving needs FastAPI and uvicorn: pip install 'pxtorch[serve]' ({e})") from e


def create_app(pipeline: Any, settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app for ``pipeline`` (see :func:`pxtorch.serving.app.create_app`)."""
    _require_serving_deps()
    from .app import create_app as _create

    return _create(pipeline, settings)


def serve(pipeline: Any, settings: ServerSettings | None = None, log_level: str = "info") -> None:
    """Run the server in this process until interrupted (one uvicorn worker; the batcher owns the model)."""
    _require_serving_deps()
    import uvicorn

    device = getattr(pipeline, "device", None)
    settings = (settings or ServerSettings()).for_device(device.type if device is not None else "cpu")
    logging.getLogger(__name__).info(
        "serving on %s: %d worker(s), torch threads %s, batches of up to %d images (window %g ms)",
        device,
        settings.workers,
        settings.torch_threads or "unchanged",
        settings.max_batch_size,
        settings.batch_window_ms,
    )
    app = create_app(pipeline, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, timeout_graceful_shutdown=5)
