"""Serving: PaddleX's /ocr and /health contract, error envelopes, limits, URL policy, batching, client, CLI."""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pxtorch.serving import ServerSettings, create_app
from pxtorch.serving.batcher import DynamicBatcher, QueueFullError
from pxtorch.serving.client import ServingClient, ServingError

from .conftest import ASSETS, REPO

DEMO = ASSETS / "demo_ocr.jpg"
DEMO_B64 = base64.b64encode(DEMO.read_bytes()).decode("ascii")


def _pruned(res) -> dict:
    data = res.json["res"]
    return {k: v for k, v in data.items() if k not in ("input_path", "page_index")}


def _check_error(resp, status: int, needle: str) -> None:
    body = resp.json()
    assert resp.status_code == status, body
    assert set(body) == {"logId", "errorCode", "errorMsg"}
    assert body["errorCode"] == status
    assert needle in body["errorMsg"], body["errorMsg"]


@pytest.fixture(scope="module")
def pipe(ocr_pipeline):
    return ocr_pipeline("PP-OCRv5")


@pytest.fixture(scope="module")
def reference(pipe) -> dict:
    return _pruned(pipe(str(DEMO))[0])


@pytest.fixture(scope="module")
def client(pipe):
    settings = ServerSettings(max_body_bytes=2 << 20, max_image_pixels=4_000_000, max_pdf_pages=2)
    with TestClient(create_app(pipe, settings)) as c:
        yield c


def test_health(client):
    body = client.get("/health").json()
    assert body["errorCode"] == 0 and body["errorMsg"] == "Healthy" and body["logId"]


def test_ocr_equals_python_pipeline(client, reference):
    resp = client.post("/ocr", json={"file": DEMO_B64, "fileType": 1, "visualize": False})
    body = resp.json()
    assert resp.status_code == 200 and body["errorCode"] == 0 and body["errorMsg"] == "Success"
    assert body["result"]["dataInfo"] == {"type": "image", "width": 840, "height": 550}
    (item,) = body["result"]["ocrResults"]
    assert set(item) == {"prunedResult"}  # null images are omitted, as PaddleX does
    assert item["prunedResult"] == reference
    assert len(reference["rec_texts"]) > 5


def test_ocr_parameters_reach_the_pipeline(client, pipe):
    body = {"file": DEMO_B64, "fileType": 1, "visualize": False, "textRecScoreThresh": 0.99, "textDetBoxThresh": 0.7}
    got = client.post("/ocr", json=body).json()["result"]["ocrResults"][0]["prunedResult"]
    want = _pruned(pipe(str(DEMO), text_rec_score_thresh=0.99, text_det_box_thresh=0.7)[0])
    assert got == want
    assert got["text_rec_score_thresh"] == 0.99 and got["text_det_params"]["box_thresh"] == 0.7


def test_ocr_visualize_returns_jpegs(client):
    body = client.post("/ocr", json={"file": DEMO_B64, "fileType": 1}).json()  # null -> Serving.visualize (True)
    item = body["result"]["ocrResults"][0]
    for key in ("ocrImage", "inputImage"):
        img = Image.open(io.BytesIO(base64.b64decode(item[key])))
        assert img.format == "JPEG"
    assert Image.open(io.BytesIO(base64.b64decode(item["inputImage"]))).size == (840, 550)
    assert "docPreprocessingImage" not in item


def test_pdf_pages_and_page_limit(client, reference):
    page = Image.open(DEMO).convert("RGB")
    buf = io.BytesIO()
    page.save(buf, format="PDF", save_all=True, append_images=[page, page], resolution=144.0)
    body = client.post(
        "/ocr", json={"file": base64.b64encode(buf.getvalue()).decode(), "fileType": 0, "visualize": False}
    )
    result = body.json()["result"]
    assert result["dataInfo"]["type"] == "pdf" and result["dataInfo"]["numPages"] == 3
    assert len(result["ocrResults"]) == 2 == len(result["dataInfo"]["pages"])  # max_pdf_pages=2
    assert all(r["prunedResult"]["rec_texts"] for r in result["ocrResults"])


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"file": "@@not base64@@", "fileType": 1}, 422, "Invalid Base64"),
        ({"file": DEMO_B64, "fileType": 2}, 422, "fileType"),
        ({"file": DEMO_B64}, 422, "File type cannot be determined"),
        ({"fileType": 1}, 422, "file"),
        ({"file": DEMO_B64, "fileType": 0}, 422, "not a PDF"),
        ({"file": base64.b64encode(b"not an image").decode(), "fileType": 1}, 422, "not a decodable image"),
        ({"file": "", "fileType": 1}, 422, "empty"),
        ({"file": DEMO_B64, "fileType": 1, "textDetLimitType": "sideways"}, 422, "limit_type"),
        ({"file": DEMO_B64, "fileType": 1, "textDetThresh": "high"}, 422, "textDetThresh"),
        ({"file": "http://127.0.0.1:9/a.jpg", "fileType": 1}, 403, "URL inputs are disabled"),
        ({"file": "https://example.com/a.png"}, 403, "URL inputs are disabled"),
    ],
)
def test_error_envelopes(client, body, status, needle):
    _check_error(client.post("/ocr", json=body), status, needle)


def test_malformed_json_is_422(client):
    _check_error(client.post("/ocr", content=b"{not json", headers={"content-type": "application/json"}), 422, "json")


def test_oversized_body_is_413_declared_and_streamed(client):
    big = {"file": "A" * (3 << 20), "fileType": 1}
    _check_error(client.post("/ocr", json=big), 413, "exceeds the server limit")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"A" * (100 << 10)

    _check_error(client.post("/ocr", content=chunks(), headers={"content-type": "application/json"}), 413, "limit")


def test_too_many_pixels_is_422(client):
    _, png = cv2.imencode(".png", np.zeros((2100, 2100, 3), np.uint8))  # 4.4 MP > 4 MP limit, tiny file
    body = {"file": base64.b64encode(png.tobytes()).decode(), "fileType": 1}
    _check_error(client.post("/ocr", json=body), 422, "px is over the 4000000 px limit")


def test_openapi_schema(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/ocr"]["post"]
    assert op["operationId"] == "infer"
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    props = spec["components"]["schemas"][ref]["properties"]
    assert {"file", "fileType", "visualize", "textDetThresh", "useTextlineOrientation"} <= set(props)
    assert "/health" in spec["paths"]


@contextlib.contextmanager
def _static_server(folder: Path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def test_url_inputs_follow_the_allow_list(pipe, reference):
    settings = ServerSettings(url_allowlist=("127.0.0.1",))
    with _static_server(ASSETS) as base, TestClient(create_app(pipe, settings)) as c:
        got = c.post("/ocr", json={"file": f"{base}/demo_ocr.jpg", "visualize": False}).json()
        assert got["errorCode"] == 0, got
        assert got["result"]["ocrResults"][0]["prunedResult"] == reference
        _check_error(c.post("/ocr", json={"file": f"{base}/demo_ocr.json"}), 422, "File type cannot be determined")
        _check_error(c.post("/ocr", json={"file": "http://localhost:9/x.jpg"}), 403, "host not allowed")


def test_pipeline_failure_is_500_and_does_not_stop_the_server(pipe):
    with TestClient(create_app(pipe)) as c:
        batcher = c.app.state.batcher
        real = batcher._run
        batcher._run = lambda images, params: (_ for _ in ()).throw(RuntimeError("model exploded"))
        _check_error(c.post("/ocr", json={"file": DEMO_B64, "fileType": 1}), 500, "model exploded")
        batcher._run = real
        assert c.post("/ocr", json={"file": DEMO_B64, "fileType": 1, "visualize": False}).json()["errorCode"] == 0


def test_timeout_is_504_and_full_queue_is_503(pipe):
    release = threading.Event()

    def slow(images, params):
        release.wait(5)
        return [None] * len(images)

    settings = ServerSettings(request_timeout_s=0.3, max_queue=1)
    with TestClient(create_app(pipe, settings)) as c:
        c.app.state.batcher._run = slow
        body = {"file": DEMO_B64, "fileType": 1, "visualize": False}
        _check_error(c.post("/ocr", json=body), 504, "timed out")  # running, blocks the worker
        with ThreadPoolExecutor(2) as ex:
            first = ex.submit(c.post, "/ocr", json=body)  # waits in the queue (max_queue=1)
            time.sleep(0.1)
            _check_error(c.post("/ocr", json=body), 503, "waiting")
            _check_error(first.result(), 504, "timed out")
        release.set()


def test_concurrent_requests_are_batched(pipe):
    scenes = [DEMO_B64, DEMO_B64]  # same size: one detector forward for both
    with contextlib.suppress(Exception):
        from .conftest import SHARED_IMAGES

        scenes += [
            base64.b64encode(p.read_bytes()).decode() for p in sorted((SHARED_IMAGES / "scenes").glob("*.jpg"))[:5]
        ]
    settings = ServerSettings(max_batch_size=8, batch_window_ms=200)
    with TestClient(create_app(pipe, settings)) as c:
        sequential = [c.post("/ocr", json={"file": s, "fileType": 1, "visualize": False}).json() for s in scenes]
        before = c.get("/stats").json()
        with ThreadPoolExecutor(len(scenes)) as ex:
            futures = [ex.submit(c.post, "/ocr", json={"file": s, "fileType": 1, "visualize": False}) for s in scenes]
            batched = [f.result().json() for f in futures]
        after = c.get("/stats").json()
    assert after["batches"] - before["batches"] < len(scenes)  # some requests shared a model call
    assert after["max_batch"] > 1
    for one, many in zip(sequential, batched, strict=True):
        a, b = one["result"]["ocrResults"][0]["prunedResult"], many["result"]["ocrResults"][0]["prunedResult"]
        # each image's lines are recognised on their own (recognition_grouping="image"): same result as alone
        assert a["rec_texts"] == b["rec_texts"] and a["dt_polys"] == b["dt_polys"]
        assert np.abs(np.subtract(a["rec_scores"], b["rec_scores"])).max(initial=0) < 1e-5


def test_batcher_groups_by_parameters_and_isolates_failures():
    calls: list[tuple[int, dict]] = []
    gate = threading.Event()

    def run(images, params):
        gate.wait(5)
        calls.append((len(images), params))
        if any(isinstance(im, str) and im == "bad" for im in images):
            raise ValueError("bad image")
        return [f"{im}:{params.get('t')}" for im in images]

    b = DynamicBatcher(run, max_batch_size=4, window_s=0.05)
    try:
        futures = [b.submit(["a"], {"t": 1}), b.submit(["b", "c"], {"t": 2}), b.submit(["d"], {"t": 1})]
        futures += [b.submit(["e"], {"t": 1}), b.submit(["bad"], {"t": 1}), b.submit(["f", "g", "h"], {"t": 1})]
        gate.set()
        assert futures[0].result(5) == ["a:1"] and futures[2].result(5) == ["d:1"] and futures[3].result(5) == ["e:1"]
        assert futures[1].result(5) == ["b:2", "c:2"]
        with pytest.raises(ValueError, match="bad image"):
            futures[4].result(5)
        assert futures[5].result(5) == ["f:1", "g:1", "h:1"]
        assert all(n <= 4 for n, _ in calls)
        assert all(p == {"t": 2} for n, p in calls if n == 2)
        with pytest.raises(QueueFullError):
            small = DynamicBatcher(lambda i, p: time.sleep(1) or i, max_batch_size=1, max_queue=1)
            for _ in range(4):
                small.submit(["x"], {})
    finally:
        b.close()
        with contextlib.suppress(NameError):
            small.close(timeout=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with ServingClient(url, timeout=2) as c:
                c.health()
            return
        except (OSError, ServingError):
            time.sleep(0.3)
    raise AssertionError("server did not become healthy")


def test_client_against_uvicorn_on_loopback(pipe, reference):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pipe), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        with ServingClient(url) as client:
            result = client.ocr(DEMO, visualize=False)
            assert result["ocrResults"][0]["prunedResult"] == reference
            with pytest.raises(ServingError) as err:
                client.ocr(b"garbage", file_type=1)
            assert err.value.error_code == 422
    finally:
        server.should_exit = True
        thread.join(10)


def test_cli_serve_paddlex_spelling():
    port = _free_port()
    cmd = [sys.executable, "-m", "pxtorch.cli", "--serve", "--pipeline", "OCR", "--device", "cpu", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        with ServingClient(f"http://127.0.0.1:{port}") as c:
            texts = c.ocr(DEMO, visualize=False)["ocrResults"][0]["prunedResult"]["rec_texts"]
        assert "BOARDING PASS" in texts
    finally:
        proc.terminate()
        proc.wait(30)


def test_cli_serve_bad_pipeline_exits_2():
    proc = subprocess.run(
        [sys.executable, "-m", "pxtorch.cli", "serve", "--pipeline", "NoSuchPipeline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown pipeline" in proc.stderr


def test_settings_validation_and_pipeline_config():
    with pytest.raises(ValueError, match="max_batch_size"):
        ServerSettings(max_batch_size=0)
    s = ServerSettings.from_pipeline_config(
        {"Serving": {"visualize": False, "extra": {"max_num_input_imgs": None, "max_output_img_size": [800, 600]}}},
        port=9000,
    )
    assert (s.visualize, s.max_pdf_pages, s.max_output_img_size, s.port) == (False, None, (800, 600), 9000)
    with pytest.raises(TypeError, match="unknown server settings"):
        ServerSettings.from_pipeline_config({}, colour="red")
    cpu = ServerSettings().for_device("cpu", cpu_count=2)
    assert (cpu.workers, cpu.torch_threads) == (2, 1)
    assert (ServerSettings(workers=1).for_device("cpu", cpu_count=16).torch_threads) == 16
    assert ServerSettings().for_device("cuda", cpu_count=16).workers == 1
    assert ServerSettings().for_device("cuda").torch_threads is None
    s = ServerSettings(url_allowlist=("Example.com",))
    assert s.url_allowed("https://img.example.com/a.jpg") and not s.url_allowed("https://example.com.evil.net/a")
    assert json.loads(json.dumps(s.url_allowlist)) == ["example.com"]
