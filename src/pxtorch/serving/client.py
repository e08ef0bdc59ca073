"""A small Python client for the serving API (standard library only).

from pxtorch.serving.client import ServingClient
client = ServingClient("http://127.0.0.1:8080")
result = client.ocr("scan.pdf", textDetThresh=0.3, visualize=False)
for page in result["ocrResults"]:
    print(page["prunedResult"]["rec_texts"])
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

__all__ = ["ServingClient", "ServingError"]


class ServingError(RuntimeError):
    """The server answered with an error envelope (``error_code`` = HTTP status)."""

    def __init__(self, error_code: int, error_msg: str, log_id: str | None) -> None:
        super().__init__(f"{error_code}: {error_msg} (logId {log_id})")
        self.error_code = error_code
        self.error_msg = error_msg
        self.log_id = log_id


class ServingClient:
    """One keep-alive connection to a pxtorch (or PaddleX) server. Not thread-safe: one client per thread."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", timeout: float = 120.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, decoded JSON)``; reconnects once if a kept-alive connection was closed."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        try:
            return resp.status, json.loads(payload)
        except json.JSONDecodeError:
            return resp.status, {"errorCode": resp.status, "errorMsg": payload[:200].decode(errors="replace")}

    def health(self) -> dict[str, Any]:
        """``GET /health``; raises :class:`ServingError` unless healthy."""
        return self._check(*self.request("GET", "/health"))

    def ocr(self, file: str | os.PathLike | bytes, file_type: int | None = None, **params: Any) -> dict[str, Any]:
        """``POST /ocr`` and return ``result`` (``ocrResults``, ``dataInfo``).

        ``file``: a local path or raw bytes (sent as Base64, ``fileType`` from the content when not given),
        or an http(s) URL (fetched by the server if its allow-list permits). ``params``: camelCase
        ``predict()`` parameters (``textDetThresh``, ``useTextlineOrientation``, ``visualize``, ...).
        """
        if isinstance(file, str) and urllib.parse.urlsplit(file).scheme in ("http", "https"):
            body: dict[str, Any] = {"file": file}
        else:
            raw = Path(file).read_bytes() if isinstance(file, (str, os.PathLike)) else bytes(file)
            if file_type is None:
                file_type = 0 if raw[:5] == b"%PDF-" else 1
            body = {"file": base64.b64encode(raw).decode("ascii")}
        if file_type is not None:
            body["fileType"] = file_type
        body.update(params)
        return self._check(*self.request("POST", "/ocr", body))["result"]

    @staticmethod
    def _check(status: int, payload: dict[str, Any]) -> dict[str, Any]:
        if status != 200 or payload.get("errorCode", 0) != 0:
            code = int(payload.get("errorCode", status))
            raise ServingError(code, str(payload.get("errorMsg")), payload.get("logId"))
        return payload
