"""OCR pipeline benchmark against RapidOCR (onnxruntime), used by ``scripts/benchmark.py --pipeline ocr``.

Both sides run the same PP-OCRv4 mobile det+rec weights on the same decoded BGR images, with the
same detector limits (RapidOCR's 736/min by default), no orientation stage, the same intra-op thread
count (ORT inter-op 1). Three measurements:

- per-image latency: every image, pxtorch and RapidOCR interleaved (order alternating per round);
  the median over rounds per image, then the median over images and the ratio;
- throughput: all images once, one by one and with ``predict(batch_size=N)`` (true batching);
- memory: the resident set size every 25 of ``--memory N`` consecutive pxtorch images (after a
  warm-up pass); growth = highest RSS of the last 100 images minus that of the first 100; peak RSS.

``run_engines`` (``--engines``) instead compares pxtorch engines with each other on the same pipeline:
per-image latency interleaved across engines after a warm-up pass over every image (compilation).
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_images(image_dir: Path) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [(p.name, cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in files]


def make_pxtorch(
    limit_side_len: int,
    limit_type: str,
    engine: str = "eager",
    threads: int | None = None,
    device: str = "cpu",
    engine_config: dict[str, Any] | None = None,
):
    """The PP-OCRv4 OCR pipeline (no orientation stage) on ``engine``; onnxruntime gets ``threads`` intra-op threads."""
    import pxtorch

    config = dict(engine_config or {})
    if engine == "onnxruntime" and threads:
        config.setdefault("num_threads", threads)
    return pxtorch.pipeline(
        "OCR",
        ocr_version="PP-OCRv4",
        device=device,
        use_textline_orientation=False,
        text_det_limit_side_len=limit_side_len,
        text_det_limit_type=limit_type,
        engine=engine,
        engine_config=config or None,
    )


def run_engines(
    image_dir: Path,
    engines: list[str],
    threads: int,
    runs: int,
    limit_side_len: int,
    limit_type: str,
    device: str = "cpu",
) -> dict[str, Any]:
    """Per-image latency of the pxtorch OCR pipeline under each engine spec, interleaved (order rotating per round).

    ``engines`` are specs as :func:`pxtorch.engines.parse_engine_spec` reads them (``eager``,
    ``eager:bfloat16``, ``compile:mode=max-autotune-no-cudagraphs``). Every engine first sees every image
    once (warm-up: compilation, allocator pools), timed separately. Returns the median over rounds per image
    and engine, the median over images, each engine's ratio to the first one, the warm-up seconds and
    whether each engine's texts equal the first engine's.
    """
    from pxtorch.engines import parse_engine_spec

    images = load_images(image_dir)
    pipes = {}
    for spec in engines:
        engine, config = parse_engine_spec(spec)
        pipes[spec] = make_pxtorch(limit_side_len, limit_type, engine, threads, device, config)
    warmup_s: dict[str, float] = {}
    texts: dict[str, list[list[str]]] = {}
    for spec, pipe in pipes.items():  # warm-up: every image once (compiles every shape family)
        t0 = time.perf_counter()
        texts[spec] = [pipe(img)[0]["rec_texts"] for _, img in images]
        warmup_s[spec] = time.perf_counter() - t0
    times: dict[str, dict[str, list[float]]] = {e: {n: [] for n, _ in images} for e in engines}
    for r in range(runs):
        for name, img in images:
            order = engines[r % len(engines) :] + engines[: r % len(engines)]
            for e in order:
                t0 = time.perf_counter()
                pipes[e](img)
                times[e][name].append(time.perf_counter() - t0)
    per_image = {e: {n: statistics.median(v) for n, v in t.items()} for e, t in times.items()}
    median = {e: statistics.median(v.values()) for e, v in per_image.items()}
    base = engines[0]
    same = {e: sum(a == b for a, b in zip(texts[e], texts[base], strict=True)) for e in engines}
    return {
        "device": device,
        "images": len(images),
        "per_image_s": per_image,
        "median_image_s": median,
        "ratio_to_" + base: {e: median[e] / median[base] for e in engines},
        "warmup_s": warmup_s,
        "images_with_same_texts_as_" + base: same,
    }


def make_rapidocr(threads: int, limit_side_len: int, limit_type: str):
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(
        intra_op_num_threads=threads,
        inter_op_num_threads=1,
        det_limit_side_len=limit_side_len,
        det_limit_type=limit_type,
        use_cls=False,
    )


def run(
    image_dir: Path,
    threads: int,
    rounds: int,
    batch_size: int,
    memory_images: int,
    limit_side_len: int = 736,
    limit_type: str = "min",
    device: str = "cpu",
) -> dict[str, Any]:
    images = load_images(image_dir)
    ours = make_pxtorch(limit_side_len, limit_type, device=device)
    theirs = make_rapidocr(threads, limit_side_len, limit_type)

    def px(img: np.ndarray) -> None:
        ours(img)

    def ro(img: np.ndarray) -> None:
        theirs(img, use_cls=False)

    for _, img in images[:3]:  # warm-up
        px(img)
        ro(img)
    per_image = []
    for name, img in images:
        t_px, t_ro = [], []
        for r in range(rounds):
            pair = [(px, t_px), (ro, t_ro)]
            for fn, acc in pair if r % 2 == 0 else pair[::-1]:
                t0 = time.perf_counter()
                fn(img)
                acc.append(time.perf_counter() - t0)
        per_image.append(
            dict(
                image=name,
                hw=list(img.shape[:2]),
                pxtorch_s=statistics.median(t_px),
                rapidocr_s=statistics.median(t_ro),
            )
        )
        row = per_image[-1]
        print(
            f"| {name} | {img.shape[1]}x{img.shape[0]} | {row['pxtorch_s'] * 1000:.0f} | "
            f"{row['rapidocr_s'] * 1000:.0f} | {row['pxtorch_s'] / row['rapidocr_s']:.2f} |",
            flush=True,
        )
    med_px = statistics.median(r["pxtorch_s"] for r in per_image)
    med_ro = statistics.median(r["rapidocr_s"] for r in per_image)
    sum_px = sum(r["pxtorch_s"] for r in per_image)
    sum_ro = sum(r["rapidocr_s"] for r in per_image)

    arrays = [img for _, img in images]
    t0 = time.perf_counter()
    for img in arrays:
        theirs(img, use_cls=False)
    seq_ro = time.perf_counter() - t0
    t0 = time.perf_counter()
    for img in arrays:
        ours(img)
    seq_px = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours(arrays, batch_size=batch_size)
    batch_px = time.perf_counter() - t0

    memory: dict[str, Any] = {}
    if memory_images:
        gc.collect()
        for img in arrays:  # warm-up pass: allocator pools, cached kernels
            ours(img)
        start = _rss_mb()
        samples = []
        for i in range(memory_images):
            ours(arrays[i % len(arrays)])
            if (i + 1) % 25 == 0:
                samples.append(round(_rss_mb(), 1))
        memory = dict(
            images=memory_images,
            rss_after_warmup_mb=round(start, 1),
            rss_end_mb=samples[-1] if samples else None,
            # growth: the highest RSS of the last 100 images minus that of the first 100 (upward trend)
            growth_mb=round(max(samples[-4:]) - max(samples[:4]), 1) if len(samples) >= 8 else None,
            samples_every_25_mb=samples,
        )
    return dict(
        images=len(images),
        rounds=rounds,
        threads=threads,
        limits=f"{limit_side_len}/{limit_type}",
        per_image=per_image,
        median_image_s=dict(pxtorch=med_px, rapidocr=med_ro, ratio=med_px / med_ro),
        total_s=dict(pxtorch=sum_px, rapidocr=sum_ro, ratio=sum_px / sum_ro),
        throughput_img_s=dict(
            rapidocr_one_by_one=len(arrays) / seq_ro,
            pxtorch_one_by_one=len(arrays) / seq_px,
            pxtorch_batched=len(arrays) / batch_px,
            batch_size=batch_size,
        ),
        memory=memory,
        peak_rss_mb=round(_peak_rss_mb(), 1),
    )
