"""Forward latency of each pxtorch model against onnxruntime on the shipped ONNX, side by side.

    python scripts/benchmark.py [--threads 2] [--runs 15] [--models '*'] [--json out.json]
    python scripts/benchmark.py --pipeline ocr [--images DIR] [--batch-size 8] [--memory 500]
    python scripts/benchmark.py --pipeline ocr --engines eager,compile,onnxruntime,eager:bfloat16 [--runs 3]
    python scripts/benchmark.py --write-priors src/pxtorch/engine_priors.json [--device cuda] [--runs 15]

``--pipeline ocr``: the whole OCR pipeline against RapidOCR (onnxruntime) on real images; see
``scripts/bench_ocr.py`` for what is measured. With ``--engines`` it compares pxtorch engines instead.
An engine spec is ``ENGINE[:OPTION...]``: ENGINE is ``eager``, ``compile`` or ``onnxruntime``; each
OPTION is a dtype (``bfloat16``/``bf16``, ``float16``/``fp16``, ``float32``) or an ``engine_config``
``KEY=VALUE`` (VALUE read as JSON when it parses): ``eager:bfloat16``, ``compile:mode=reduce-overhead``,
``compile:bfloat16:dynamic=true``. ``--device cuda`` runs the pxtorch side on the GPU.

``--write-priors PATH``: for each model, measure the candidate engines (``--engines``, default eager,
eager:bfloat16, compile, compile:bfloat16, onnxruntime on the CPU; eager/compile in float32, float16 and
bfloat16 on CUDA) on the model's typical pipeline inputs (the demo image and the first two ``--images``),
keep the candidates whose outputs match eager float32 (float32: max|diff| <= 1e-4 on probabilities and the
detector's probability map; bfloat16/float16: argmax-equal probabilities, detector max|diff| <= 0.02),
order them by median latency and write them under this machine's environment key (``cpu_x86_64``,
``cuda``, ...) of the JSON that ``engine="auto"`` reads, keeping the other environments. ``--provisional``
marks the numbers as such.

Same inputs, same thread count (torch intra-op threads = ORT intra-op threads, ORT inter-op 1),
runs interleaved (torch, ORT, torch, ... with the order alternating every round) after warm-up, and
the median of each reported with the ratio pxtorch / onnxruntime. pxtorch runs eager PyTorch in the
deploy (re-parameterised) form the official weights come in; ORT runs with its full graph optimisation.
``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (override by exporting it): with OpenMP's default
busy-waiting, torch on a shared 2-core machine is erratic and several times slower. Every header names
the device (CPU model or GPU).
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
from typing import Any

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


def device_name(device: str) -> str:
    """A readable name of ``device``: the GPU's name, or the CPU model from /proc/cpuinfo."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="*", help="fnmatch pattern over model names")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--device", default="cpu", help="--pipeline/--write-priors: cpu or cuda[:N]")
    parser.add_argument("--pipeline", choices=["ocr"], default=None, help="benchmark a whole pipeline instead")
    parser.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared/data/images/scenes"))
    parser.add_argument("--batch-size", type=int, default=8, help="--pipeline: images per batch for throughput")
    parser.add_argument("--memory", type=int, default=500, help="--pipeline: consecutive images for the RSS check")
    parser.add_argument("--limit-side-len", type=int, default=736, help="--pipeline: detector limit (both sides)")
    parser.add_argument("--limit-type", default="min", help="--pipeline: detector limit type (both sides)")
    parser.add_argument(
        "--engines",
        default=None,
        help="--pipeline: compare pxtorch engines instead, e.g. eager,compile,onnxruntime,eager:bfloat16; "
        "--write-priors: the candidates to measure (default: per device)",
    )
    parser.add_argument("--write-priors", metavar="PATH", default=None, help="measure engines, write engine priors")
    parser.add_argument("--provisional", action="store_true", help="--write-priors: mark the numbers provisional")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.write_priors:
        return priors_main(args)
    if args.pipeline:
        return pipeline_main(args)
    if args.device != "cpu":
        parser.error("the per-model comparison with onnxruntime runs on the CPU; use --pipeline or --write-priors")
    import onnxruntime

    env = (
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {device_name('cpu')}"
        f", {args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, median of {args.runs}"
    )
    print(env)
    print("| model | input | pxtorch ms | onnxruntime ms | ratio |\n|---|---|---|---|---|")
    rows = [r for name in pxtorch.list_models(args.models) for r in bench(name, args.threads, args.runs, args.warmup)]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": rows}, f, indent=1)


def _ort_version() -> str:
    try:
        import onnxruntime
    except ImportError:
        return "not installed"
    return onnxruntime.__version__


def pipeline_main(args: argparse.Namespace) -> None:
    """``--pipeline ocr``: per-image latency, throughput and memory against RapidOCR, or engines compared."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_ocr import run, run_engines

    if args.engines:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        print(
            f"torch {torch.__version__}, onnxruntime {_ort_version()}, {device_name(args.device)} ({args.device}), "
            f"{args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
            f"limits {args.limit_side_len}/{args.limit_type}, median of {args.runs} per image, engines interleaved"
        )
        out = run_engines(
            Path(args.images), engines, args.threads, args.runs, args.limit_side_len, args.limit_type, args.device
        )
        out["device_name"] = device_name(args.device)
        ratio = out[f"ratio_to_{engines[0]}"]
        same = out[f"images_with_same_texts_as_{engines[0]}"]
        for e in engines:
            ms = out["median_image_s"][e] * 1000
            print(
                f"{e}: median per image {ms:.0f} ms, ratio to {engines[0]} {ratio[e]:.2f}, "
                f"warm-up {out['warmup_s'][e]:.1f} s, same texts as {engines[0]} on {same[e]}/{out['images']} images"
            )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        return

    print(
        f"torch {torch.__version__}, onnxruntime {_ort_version()}, {device_name(args.device)} ({args.device}), "
        f"{args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"limits {args.limit_side_len}/{args.limit_type}, median of {args.runs} per image"
    )
    print("| image | size | pxtorch ms | RapidOCR ms | ratio |\n|---|---|---|---|---|")
    out = run(
        Path(args.images),
        args.threads,
        args.runs,
        args.batch_size,
        args.memory,
        args.limit_side_len,
        args.limit_type,
        args.device,
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


# -- engine priors (--write-priors) ------------------------------------------------------------------
#: candidates measured per device kind when --engines is not given
PRIOR_CANDIDATES = {
    "cpu": ["eager", "eager:bfloat16", "compile", "compile:bfloat16", "onnxruntime"],
    "cuda": ["eager", "eager:float16", "eager:bfloat16", "compile", "compile:float16", "compile:mode=reduce-overhead"],
}
#: accuracy gates against eager float32: probabilities (rec/cls) or the probability map (det)
FP32_ATOL = 1e-4
REDUCED_DET_ATOL = 0.02


def _priors_inputs(image_paths: list[Path], device: str) -> dict[str, list[torch.Tensor]]:
    """Typical pipeline inputs per task, prepared the pipelines' way from real images.

    Detection: each image at the OCR pipeline's limits (64/min) and at 960/max. Recognition and orientation:
    the text lines the default detector finds, sorted by aspect ratio and batched by 6 (the OCR config's
    batch size), recognition batches padded to their widest crop.
    """
    from pxtorch.pipelines import TextDetectionPipeline, TextlineOrientationPipeline, TextRecognitionPipeline
    from pxtorch.processing.crop import crop_by_quad
    from pxtorch.processing.image import read_image
    from pxtorch.processing.rec_resize import pad_batch
    from pxtorch.processing.sort_boxes import sort_quad_boxes

    det = TextDetectionPipeline(device="cpu")
    rec = TextRecognitionPipeline(device="cpu")
    cls = TextlineOrientationPipeline(device="cpu")
    out: dict[str, list[torch.Tensor]] = {"text_detection": [], "text_recognition": [], "textline_orientation": []}
    for path in image_paths:
        image = read_image(path)
        for limits in ((64, "min"), (960, "max")):
            params = det._resolve_params(limit_side_len=limits[0], limit_type=limits[1])
            out["text_detection"].append(torch.from_numpy(det.preprocess(image, params)[0])[None])
        with torch.inference_mode():
            polys, _ = det.detect([image], det._resolve_params(limit_side_len=64, limit_type="min"))[0]
        crops = sorted((crop_by_quad(image, p) for p in sort_quad_boxes(polys)), key=lambda c: c.shape[1] / c.shape[0])
        for i in range(0, len(crops), 6):
            chunk = crops[i : i + 6]
            out["text_recognition"].append(torch.from_numpy(pad_batch([rec.preprocess(c) for c in chunk])))
            out["textline_orientation"].append(torch.from_numpy(np.stack([cls.preprocess(c) for c in chunk])))
    return {task: [x.to(device) for x in xs] for task, xs in out.items()}


def _compare(task: str, reduced: bool, out: list[torch.Tensor], ref: list[torch.Tensor]) -> tuple[bool, dict]:
    """Whether an engine's outputs match eager float32 within the priors' tolerance, and the measured deviations."""
    max_abs = max(float((o.float() - r).abs().max()) for o, r in zip(out, ref, strict=True))
    stats: dict[str, Any] = {"max_abs_diff": max_abs}
    if task == "text_detection":
        return max_abs <= (REDUCED_DET_ATOL if reduced else FP32_ATOL), stats
    agree = [(o.argmax(-1) == r.argmax(-1)).float().mean().item() for o, r in zip(out, ref, strict=True)]
    stats["argmax_agreement"] = min(agree)
    return (min(agree) == 1.0) if reduced else max_abs <= FP32_ATOL, stats


def measure_engines(
    name: str, specs: list[str], inputs: list[torch.Tensor], device: str, runs: int, warmup: int
) -> tuple[list[dict], list[dict]]:
    """``(accepted, rejected)`` engine candidates of model ``name``; accepted ones sorted by median latency."""
    import copy

    from pxtorch.engines import apply_engine, candidate_available, parse_engine_spec
    from pxtorch.pipelines.base import class_probabilities

    dev = torch.device(device)
    base = pxtorch.create_model(name, pretrained=True).eval().to(dev)
    task = base.pretrained_cfg.task
    with torch.inference_mode():
        ref = [class_probabilities(base, base(x)) if task != "text_detection" else base(x).float() for x in inputs]
    engines: dict[str, Any] = {}
    rejected: list[dict] = []
    info: dict[str, dict] = {}
    for spec in specs:
        engine, config = parse_engine_spec(spec)
        reason = candidate_available(engine, config, dev)
        if reason:
            rejected.append({"spec": spec, "reason": reason})
            continue
        try:
            model = apply_engine(copy.deepcopy(base), engine, config, dev)
            t0 = time.perf_counter()
            with torch.inference_mode():
                for _ in range(max(warmup, 1)):
                    out = [
                        class_probabilities(model, model(x)) if task != "text_detection" else model(x) for x in inputs
                    ]
        except Exception as e:  # a candidate that cannot run here is reported, not fatal
            rejected.append({"spec": spec, "reason": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
            continue
        reduced = config.get("dtype", "float32") not in ("float32", "fp32")
        ok, stats = _compare(task, reduced, out, ref)
        info[spec] = {
            "engine": engine,
            "engine_config": config,
            "warmup_s": round(time.perf_counter() - t0, 2),
            **stats,
        }
        if ok:
            engines[spec] = model
        else:
            rejected.append(
                {"spec": spec, "reason": "outputs differ from eager float32 beyond tolerance", **info[spec]}
            )
    times: dict[str, list[float]] = {spec: [] for spec in engines}
    specs_ok = list(engines)
    with torch.inference_mode():
        for r in range(runs):
            for spec in specs_ok[r % len(specs_ok) :] + specs_ok[: r % len(specs_ok)]:
                model = engines[spec]
                t0 = time.perf_counter()
                for x in inputs:
                    model(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                times[spec].append((time.perf_counter() - t0) * 1000)
    accepted = [{**info[spec], "median_ms": round(statistics.median(times[spec]), 3)} for spec in specs_ok]
    accepted.sort(key=lambda c: c["median_ms"])
    for c in accepted:
        print(f"| {name} | {_spec_label(c)} | {c['median_ms']:.1f} | {c['warmup_s']:.1f} | ok |", flush=True)
    for c in rejected:
        print(f"| {name} | {c['spec']} | - | - | {c['reason']} |", flush=True)
    return accepted, rejected


def _spec_label(c: dict) -> str:
    return c["engine"] + "".join(f":{k}={v}" for k, v in sorted(c["engine_config"].items()))


def priors_main(args: argparse.Namespace) -> None:
    """``--write-priors PATH``: measure each model's engines on typical pipeline inputs and write the priors file.

    The file keeps the other environments' entries (a GPU run adds ``cuda`` beside ``cpu_x86_64``).
    """
    import datetime
    import sys

    from pxtorch.engines import engine_environment

    dev = torch.device(args.device)
    env = engine_environment(dev)
    specs = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else PRIOR_CANDIDATES[dev.type]
    demo = Path(pxtorch.__file__).parent / "assets" / "demo_ocr.jpg"
    scenes = sorted(p for p in Path(args.images).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:2]
    inputs = _priors_inputs([demo, *scenes], args.device)
    print(
        f"torch {torch.__version__}, onnxruntime {_ort_version()}, {device_name(args.device)} ({env}), "
        f"{args.threads} threads, median of {args.runs} rounds over each model's inputs"
    )
    print("| model | engine | median ms | warm-up s | verdict |\n|---|---|---|---|---|")
    models: dict[str, list[dict]] = {}
    rejected: dict[str, list[dict]] = {}
    for name in pxtorch.list_models(args.models):
        task = pxtorch.get_pretrained_cfg(name).task
        models[name], rejected[name] = measure_engines(name, specs, inputs[task], args.device, args.runs, args.warmup)
    path = Path(args.write_priors)
    priors = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    priors.setdefault("format", 1)
    priors.setdefault(
        "description",
        "Measured pxtorch engines per environment and model for engine='auto': candidates in order of median "
        "latency on typical pipeline inputs, kept only when their outputs match eager float32 "
        f"(float32 engines: max|diff| <= {FP32_ATOL} on probabilities / the detector's probability map; "
        f"bfloat16/float16: argmax-equal probabilities, detector max|diff| <= {REDUCED_DET_ATOL}). "
        "Regenerate with scripts/benchmark.py --write-priors.",
    )
    priors.setdefault("environments", {})[env] = {
        "metadata": {
            "provisional": bool(args.provisional),
            "date": datetime.date.today().isoformat(),
            "command": "python " + " ".join(sys.argv),
            "torch": torch.__version__,
            "onnxruntime": _ort_version(),
            "hardware": device_name(args.device),
            "threads": args.threads,
            "runs": args.runs,
            "inputs": f"{demo.name} + {', '.join(p.name for p in scenes) or 'no scenes'}",
        },
        "models": {
            name: [
                {
                    "engine": c["engine"],
                    "engine_config": c["engine_config"],
                    "median_ms": c["median_ms"],
                    "warmup_s": c["warmup_s"],
                    **{k: c[k] for k in ("max_abs_diff", "argmax_agreement") if k in c},
                }
                for c in cands
            ]
            for name, cands in models.items()
        },
        "rejected": {name: rej for name, rej in rejected.items() if rej},
    }
    path.write_text(json.dumps(priors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path} ({env})")


if __name__ == "__main__":
    main()
