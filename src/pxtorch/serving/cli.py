"""``pxtorch serve --pipeline OCR`` (also ``pxtorch --serve --pipeline OCR``, PaddleX's spelling)."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["serve_main"]


def _parser() -> argparse.ArgumentParser:
    from ..pipeline_cli import _OCR_INIT_FLAGS, _typed
    from .settings import ServerSettings

    d = ServerSettings()
    p = argparse.ArgumentParser(prog="pxtorch serve", description="Serve a pipeline with PaddleX's HTTP API.")
    p.add_argument("--pipeline", required=True, help="pipeline name (OCR) or a pipeline YAML path")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, gpu, gpu:N (default: CUDA if available)")
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host}; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument(
        "--max_batch_size", type=int, default=None, help=f"images per model call (default {d.max_batch_size})"
    )
    p.add_argument(
        "--batch_window_ms", type=float, default=None, help=f"batch collection window (default {d.batch_window_ms:g})"
    )
    p.add_argument(
        "--max_body_mb", type=float, default=None, help=f"request body limit (default {d.max_body_bytes >> 20})"
    )
    p.add_argument(
        "--max_image_pixels", type=int, default=None, help=f"decoded image limit (default {d.max_image_pixels})"
    )
    p.add_argument("--max_pdf_pages", type=int, default=None, help=f"PDF pages per request (default {d.max_pdf_pages})")
    p.add_argument("--timeout", type=float, default=None, help=f"seconds per request (default {d.request_timeout_s:g})")
    p.add_argument("--max_queue", type=int, default=None, help=f"waiting requests before 503 (default {d.max_queue})")
    p.add_argument("--workers", type=int, default=None, help=f"threads running batches (default {d.workers})")
    p.add_argument("--torch_threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument(
        "--allow_url_host",
        "--allow-url-host",
        action="append",
        default=[],
        metavar="HOST",
        help="accept http(s) URLs in 'file' from HOST (and its subdomains); repeatable. Default: no URLs",
    )
    p.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    for name, kind in _OCR_INIT_FLAGS.items():
        p.add_argument(f"--{name}", type=_typed(kind), default=None)
    return p


def serve_main(argv: list[str]) -> int:
    """Parse the serve flags, build the pipeline and run the server; returns the exit code."""
    from ..pipeline_cli import _OCR_INIT_FLAGS, _fail

    argv = [a for a in argv if a not in ("serve", "--serve")]
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    from ..pipelines import load_pipeline_config, pipeline
    from . import ServerSettings, serve

    init = {k: getattr(args, k) for k in _OCR_INIT_FLAGS if getattr(args, k) is not None}
    try:
        config = load_pipeline_config(args.pipeline)
        settings = ServerSettings.from_pipeline_config(
            config,
            host=args.host,
            port=args.port,
            max_batch_size=args.max_batch_size,
            batch_window_ms=args.batch_window_ms,
            max_body_bytes=None if args.max_body_mb is None else int(args.max_body_mb * (1 << 20)),
            max_image_pixels=args.max_image_pixels,
            max_pdf_pages=args.max_pdf_pages,
            request_timeout_s=args.timeout,
            max_queue=args.max_queue,
            workers=args.workers,
            torch_threads=args.torch_threads,
            url_allowlist=tuple(args.allow_url_host) or None,
        )
        pipe = pipeline(args.pipeline, device=args.device, **init)
        serve(pipe, settings, log_level=args.log_level)
    except (ValueError, TypeError, FileNotFoundError, KeyError, ImportError) as e:
        return _fail(f"{type(e).__name__}: {e}".splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
