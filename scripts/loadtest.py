"""Bounded load test of ``pxtorch serve`` on the loopback interface.

    python scripts/loadtest.py [--images DIR] [--clients 8] [--duration 120] [--seq-duration 60]
                               [--max-requests 5000] [--visualize] [--json out.json] [-- SERVER FLAGS...]

Starts ``pxtorch serve --pipeline OCR --device cpu`` on 127.0.0.1 (a free port; never another host),
waits for ``/health``, sends every image once (warm-up; each answer must be a success), then:

1. one client, sequential requests for ``--seq-duration`` seconds: the baseline throughput;
2. ``--clients`` concurrent clients for ``--duration`` seconds, cycling over the images.

Each phase also stops at ``--max-requests``. Reported: requests, errors, throughput (req/s) and its
ratio to the baseline, p50/p99 latency, the server's RSS after warm-up+baseline and after the
concurrent phase, and the batcher's counters (mean images per model call). The server is stopped
at the end, also on Ctrl-C. Exit code 1 if any request failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmark import device_name  # scripts/ is on sys.path when this script runs
from pxtorch.serving.client import ServingClient, ServingError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "images" / "scenes"
DEMO = ROOT / "src" / "pxtorch" / "assets" / "demo_ocr.jpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _bodies(folder: Path) -> list[tuple[str, str]]:
    files = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder.is_dir() else []
    )
    files = files or [DEMO]
    return [(p.name, base64.b64encode(p.read_bytes()).decode("ascii")) for p in files]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class _Phase:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.count = 0

    def summary(self, seconds: float) -> dict[str, Any]:
        ok = len(self.latencies)
        return {
            "requests": ok + len(self.errors),
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "seconds": round(seconds, 2),
            "throughput_rps": round(ok / seconds, 3) if seconds > 0 else 0.0,
            "latency_p50_ms": round(1000 * _percentile(self.latencies, 50), 1),
            "latency_p99_ms": round(1000 * _percentile(self.latencies, 99), 1),
            "latency_mean_ms": round(1000 * statistics.fmean(self.latencies), 1) if ok else float("nan"),
        }


def _client_loop(
    url: str,
    bodies: list[tuple[str, str]],
    start: int,
    deadline: float,
    phase: _Phase,
    max_requests: int,
    params: dict[str, Any],
) -> None:
    i = start
    with ServingClient(url, timeout=300) as client:
        while time.monotonic() < deadline:
            with phase.lock:
                if phase.count >= max_requests:
                    return
                phase.count += 1
            name, data = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, payload = client.request("POST", "/ocr", {"file": data, "fileType": 1, **params})
                if status != 200 or payload.get("errorCode") != 0:
                    raise ServingError(status, str(payload.get("errorMsg")), payload.get("logId"))
            except Exception as e:  # record and go on: the report counts every failure
                with phase.lock:
                    phase.errors.append(f"{name}: {type(e).__name__}: {e}"[:300])
                continue
            with phase.lock:
                phase.latencies.append(time.perf_counter() - t0)


def _run_phase(
    url: str, bodies: list[tuple[str, str]], clients: int, seconds: float, max_requests: int, params: dict[str, Any]
) -> dict[str, Any]:
    phase = _Phase()
    start = time.monotonic()
    deadline = start + seconds
    threads = [
        threading.Thread(target=_client_loop, args=(url, bodies, k * 3, deadline, phase, max_requests, params))
        for k in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return phase.summary(time.monotonic() - start)


def _stats(url: str) -> dict[str, Any]:
    with ServingClient(url) as c:
        return c.request("GET", "/stats")[1]


def main() -> int:
    argv = sys.argv[1:]
    server_extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, server_extra = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of the concurrent phase")
    ap.add_argument("--seq-duration", type=float, default=60.0, help="seconds of the one-client baseline")
    ap.add_argument("--max-requests", type=int, default=5000, help="per phase")
    ap.add_argument("--visualize", action="store_true", help="ask for the images too (default: visualize=false)")
    ap.add_argument("--startup-timeout", type=float, default=300.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    bodies = _bodies(args.images)
    params = {"visualize": bool(args.visualize)}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "pxtorch.cli",
        "serve",
        "--pipeline",
        "OCR",
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log_level",
        "warning",
        *server_extra,
    ]
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    server = subprocess.Popen(cmd, env=env)
    try:
        limit = time.monotonic() + args.startup_timeout
        while True:
            if server.poll() is not None:
                print(f"server exited with code {server.returncode}", file=sys.stderr)
                return 1
            try:
                with ServingClient(url, timeout=5) as c:
                    c.health()
                break
            except (OSError, ServingError):
                if time.monotonic() > limit:
                    print("server did not become healthy in time", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        warm = _run_phase(url, bodies, 1, 1e9, len(bodies), params)
        if warm["errors"]:
            print(f"warm-up failed: {warm['first_errors']}", file=sys.stderr)
            return 1
        seq = _run_phase(url, bodies, 1, args.seq_duration, args.max_requests, params)
        stats_before = _stats(url)
        rss_before = _rss_mb(server.pid)
        conc = _run_phase(url, bodies, args.clients, args.duration, args.max_requests, params)
        rss_after = _rss_mb(server.pid)
        stats_after = _stats(url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    calls = stats_after["batches"] - stats_before["batches"]
    images = stats_after["images"] - stats_before["images"]
    report = {
        "command": " ".join(["python", "scripts/loadtest.py", *sys.argv[1:]]),
        "hardware": f"{device_name('cpu')}, {os.cpu_count()} CPUs",
        "images": len(bodies),
        "sequential": seq,
        "concurrent": {**conc, "clients": args.clients},
        "throughput_ratio": round(conc["throughput_rps"] / seq["throughput_rps"], 3) if seq["throughput_rps"] else None,
        "mean_images_per_model_call": round(images / calls, 3) if calls else None,
        "server_rss_mb_before": round(rss_before, 1),
        "server_rss_mb_after": round(rss_after, 1),
        "server_rss_growth_mb": round(rss_after - rss_before, 1),
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 1 if seq["errors"] or conc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
