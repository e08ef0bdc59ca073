"""Forward latency of each pxtorch model against onnxruntime on the shipped ONNX, side by side.

    python scripts/benchmark.py [--threads 2] [--runs 15] [--models '*'] [--json out.json]
    python scripts/benchmark.py --pipeline ocr [--images DIR] [--batch-size 8] [--memory 500]
    python scripts/benchmark.py --pipeline ocr --engines eager,onnxruntime [--runs 3]

``--pipeline ocr``: the whole OCR pipeline against RapidOCR (onnxruntime) on real images; see
``scripts/bench_ocr.py`` for what is measured.

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
from pathlib import Path

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
    parser.add_argument("--pipeline", choices=["ocr"], default=None, help="benchmark a whole pipeline instead")
    parser.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared/data/images/scenes"))
    parser.add_argument("--batch-size", type=int, default=8, help="--pipeline: images per batch for throughput")
    parser.add_argument("--memory", type=int, default=500, help="--pipeline: consecutive images for the RSS check")
    parser.add_argument("--limit-side-len", type=int, default=736, help="--pipeline: detector limit (both sides)")
    parser.add_argument("--limit-type", default="min", help="--pipeline: detector limit type (both sides)")
    parser.add_argument(
        "--engines", default=None, help="--pipeline: compare pxtorch engines instead, e.g. eager,onnxruntime"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.pipeline:
        return pipeline_main(args)
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


def pipeline_main(args: argparse.Namespace) -> None:
    """``--pipeline ocr``: per-image latency, throughput and memory against RapidOCR."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import onnxruntime

    from bench_ocr import run, run_engines

    if args.engines:
        engines = args.engines.split(",")
        print(
            f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
            f"limits {args.limit_side_len}/{args.limit_type}, median of {args.runs} per image, engines interleaved"
        )
        out = run_engines(Path(args.images), engines, args.threads, args.runs, args.limit_side_len, args.limit_type)
        ratio = out[f"ratio_to_{engines[0]}"]
        for e in engines:
            ms = out["median_image_s"][e] * 1000
            print(f"{e}: median per image {ms:.0f} ms, ratio to {engines[0]} {ratio[e]:.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        return

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, limits {args.limit_side_len}/{args.limit_type}, "
        f"median of {args.runs} per image"
    )
    print("| image | size | pxtorch ms | RapidOCR ms | ratio |\n|---|---|---|---|---|")
    out = run(
        Path(args.images), args.threads, args.runs, args.batch_size, args.memory, args.limit_side_len, args.limit_type
    )
    m, t, thr = out["median_image_s"], out["total_s"], out["throughput_img_s"]
    print(
        f"\nmedian per image: pxtorch {m['pxtorch'] * 1000:.0f} ms, RapidOCR {m['rapidocr'] * 1000:.0f} ms, "
        f"ratio {m['ratio']:.2f}"
    )
    print(f"sum over images: pxtorch {t['pxtorch']:.2f} s, RapidOCR {t['rapidocr']:.2f} s, ratio {t['ratio']:.2f}")
    print(
        f"throughput img/s: RapidOCR {thr['rapidocr_one_by_one']:.2f}, "
        f"pxtorch one-by-one {thr['pxtorch_one_by_one']:.2f}, "
        f"pxtorch batch_size={thr['batch_size']} {thr['pxtorch_batched']:.2f}"
    )
    if out["memory"]:
        mem = out["memory"]
        print(
            f"memory over {mem['images']} images: RSS {mem['rss_after_warmup_mb']} MB after warm-up -> "
            f"{mem['rss_end_mb']} MB, growth {mem['growth_mb']} MB; peak RSS {out['peak_rss_mb']} MB"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
