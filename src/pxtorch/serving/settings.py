"""Server settings: network, limits, batching and the URL policy, with safe defaults.

A pipeline YAML's ``Serving`` section (PaddleX's knobs) is read too: ``visualize`` and
``extra.max_num_input_imgs`` / ``extra.max_output_img_size``; command-line values win.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ServerSettings"]


@dataclass
class ServerSettings:
    """What the server accepts and how it batches. Every limit is checked before the work it bounds."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: request body limit in bytes (the Base64 JSON); larger bodies get 413 before being read in full
    max_body_bytes: int = 20 << 20
    #: decoded image / rendered PDF page limit in pixels (checked from the header, before decoding)
    max_image_pixels: int = 25_000_000
    #: PDF pages processed per request (PaddleX ``Serving.extra.max_num_input_imgs``, default 10); None = all
    max_pdf_pages: int | None = 10
    #: seconds a request may wait for its result (queue + inference); 504 after that
    request_timeout_s: float = 60.0
    #: images per model batch across concurrent requests, and how long the batcher waits to fill one
    max_batch_size: int = 8
    batch_window_ms: float = 10.0
    #: threads running batches (each a whole pipeline call, models shared). None: 1 in ``create_app``;
    #: :func:`pxtorch.serving.serve` on a CPU picks ``min(cpu_count, 4)`` (see :meth:`for_device`)
    workers: int | None = None
    #: torch intra-op threads for the process (``torch.set_num_threads``, process-wide); None = leave as is,
    #: or for ``serve`` on a CPU ``cpu_count // workers``
    torch_threads: int | None = None
    #: requests waiting for the model before new ones get 503 (back-pressure instead of unbounded memory)
    max_queue: int = 256
    #: hosts whose http(s) URLs may be given as ``file``; empty = URL inputs are refused (default)
    url_allowlist: tuple[str, ...] = ()
    url_timeout_s: float = 20.0
    #: return images when the request does not say (PaddleX ``Serving.visualize``; None there = True)
    visualize: bool = True
    #: returned images are downscaled to fit (PaddleX ``Serving.extra.max_output_img_size``)
    max_output_img_size: tuple[int, int] | None = (2000, 2000)
    #: extra keys from the config's ``Serving`` section that pxtorch does not use (kept for reference)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_image_pixels", "max_batch_size", "max_queue", "port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"server setting {name} must be a positive integer, got {value!r}")
        if self.max_pdf_pages is not None and (not isinstance(self.max_pdf_pages, int) or self.max_pdf_pages < 1):
            raise ValueError(f"server setting max_pdf_pages must be a positive integer or None: {self.max_pdf_pages}")
        for name in ("workers", "torch_threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"server setting {name} must be a positive integer or None, got {value!r}")
        for name in ("request_timeout_s", "url_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"server setting {name} must be positive, got {getattr(self, name)!r}")
        if not self.batch_window_ms >= 0:
            raise ValueError(f"server setting batch_window_ms must be >= 0, got {self.batch_window_ms!r}")
        self.url_allowlist = tuple(h.strip().lower() for h in self.url_allowlist if h.strip())
        if self.max_output_img_size is not None:
            w, h = self.max_output_img_size
            self.max_output_img_size = (int(w), int(h))

    def for_device(self, device_type: str, cpu_count: int | None = None) -> ServerSettings:
        """These settings with ``workers``/``torch_threads`` filled in for a process serving on ``device_type``.

        On a CPU, several workers with fewer intra-op threads each beat one worker with all of them
        (measured: README "Serving"); on a GPU one worker feeds the device and threads are left alone.
        """
        import dataclasses

        if device_type != "cpu":
            return dataclasses.replace(self, workers=self.workers or 1)
        cpus = max(1, cpu_count or os.cpu_count() or 1)
        workers = self.workers or min(cpus, 4)
        return dataclasses.replace(self, workers=workers, torch_threads=self.torch_threads or max(1, cpus // workers))

    def url_allowed(self, url: str) -> bool:
        """True when ``url``'s host is on the allow-list (exact host, or a subdomain of a listed domain)."""
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        return bool(host) and any(host == h or host.endswith("." + h) for h in self.url_allowlist)

    @classmethod
    def from_pipeline_config(cls, config: dict[str, Any], **overrides: Any) -> ServerSettings:
        """Settings from a pipeline config's ``Serving`` section, then ``overrides`` (``None`` = not given)."""
        serving = dict(config.get("Serving") or {})
        extra = dict(serving.pop("extra", None) or {})
        values: dict[str, Any] = {}
        if serving.get("visualize") is not None:
            values["visualize"] = bool(serving["visualize"])
        if "max_num_input_imgs" in extra:
            values["max_pdf_pages"] = extra.pop("max_num_input_imgs")
        if "max_output_img_size" in extra:
            size = extra.pop("max_output_img_size")
            values["max_output_img_size"] = tuple(size) if size is not None else None
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown server settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["extra"] = extra
        return cls(**values)
