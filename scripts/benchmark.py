"""Forward latency of each pxtorch model against onnxruntime on the shipped ONNX, side by side.

    python scripts/benchmark.py [--threads 2] [--runs 15] [--models '*'] [--json out.json]

Same inputs, same thread count (torch intra-op threads = ORT intra-op threads, ORT inter-op 1),
runs interleaved (torch, ORT, torch, ... with the order alternating every round) after warm-up, and
the median of each reported with the ratio pxtorch / onnxruntime. pxtorch runs eager PyTorch in the
deploy (re-parameterised) form the official weights come in; ORT runs with its full graph optimisation.
``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (override by exporting it): with OpenMP's default
busy-waiting, torch on a shared 2-core machine is erratic and several times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

import pxtorch
from pxtorch import convert

SHAPES = {
    "text_detection": [(1, 3, 960, 960), (1, 3, 544, 832)],
    "text_recognition": [(8, 3, 48, 320), (1, 3, 48, 1280)],
    "textline_orientation": [(6, 3, 48, 192)],
}


def _time(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return (time.perf_counter() - t0) * 1000.0


def bench(name: str, threads: int, runs: int, warmup: int) -> list[dict]:
    model = pxtorch.create_model(name, pretrained=True).eval()
    cfg = model.pretrained_cfg
    source = next(s for s in cfg.sources if s.format == "onnx")
    session = convert.OnnxGraph(convert.locate(source)).session(num_threads=threads, optimize=True)
    input_name = session.get_inputs()[0].name

    def run_torch(x: np.ndarray) -> None:
        with torch.inference_mode():
            model(torch.from_numpy(x))

    def run_ort(x: np.ndarray) -> None:
        session.run(None, {input_name: x})

    rows = []
    for shape in SHAPES[cfg.task]:
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        for _ in range(warmup):
            run_torch(x)
            run_ort(x)
        t_torch, t_ort = [], []
        for r in range(runs):
            pair = [(run_torch, t_torch), (run_ort, t_ort)]
            for fn, acc in pair if r % 2 == 0 else pair[::-1]:
                acc.append(_time(fn, x))
        med_torch, med_ort = statistics.median(t_torch), statistics.median(t_ort)
        rows.append(
            dict(
                model=name,
                shape=list(shape),
                pxtorch_ms=round(med_torch, 2),
                onnxruntime_ms=round(med_ort, 2),
                ratio=round(med_torch / med_ort, 3),
            )
        )
        print(
            f"| {name} | {'x'.join(map(str, shape))} | {med_torch:.1f} | {med_ort:.1f} | {med_torch / med_ort:.2f} |",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="*", help="fnmatch pattern over model names")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime

    env = (
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{platform.processor() or platform.machine()}"
        f", {args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, median of {args.runs}"
    )
    print(env)
    print("| model | input | pxtorch ms | onnxruntime ms | ratio |\n|---|---|---|---|---|")
    rows = [r for name in pxtorch.list_models(args.models) for r in bench(name, args.threads, args.runs, args.warmup)]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
