"""``pxtorch --pipeline …``: PaddleX's pipeline command line (``paddlex --pipeline OCR --input …``).

Flags and their parsing follow PaddleX: booleans accept ``True/False/T/F/true/false``, ``None``
means "use the config value". Each result is printed and saved (json + visualisation) under
``--save_path``. Unreadable inputs are reported one line each on stderr and the exit code is 1;
bad arguments or configs exit with code 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

__all__ = ["pipeline_main"]

# PaddleX's OCR flags (paddlex/utils/pipeline_arguments.py) and their types
_OCR_PREDICT_FLAGS: dict[str, str] = {
    "use_doc_orientation_classify": "bool",
    "use_doc_unwarping": "bool",
    "use_textline_orientation": "bool",
    "text_det_limit_side_len": "int",
    "text_det_limit_type": "str",
    "text_det_max_side_limit": "int",
    "text_det_thresh": "float",
    "text_det_box_thresh": "float",
    "text_det_unclip_ratio": "float",
    "text_rec_score_thresh": "float",
}
# PaddleOCR's constructor options (model choice and batching)
_OCR_INIT_FLAGS: dict[str, str] = {
    "ocr_version": "str",
    "lang": "str",
    "text_detection_model_name": "str",
    "text_detection_model_dir": "str",
    "text_recognition_model_name": "str",
    "text_recognition_model_dir": "str",
    "textline_orientation_model_name": "str",
    "textline_orientation_model_dir": "str",
    "text_recognition_batch_size": "int",
    "textline_orientation_batch_size": "int",
    "engine": "str",
    "engine_config": "json",
}
# help for the engine flags (the others are PaddleX's, documented there)
_FLAG_HELP: dict[str, str] = {
    "engine": "inference engine: eager (default), compile (torch.compile), onnxruntime (CPU), "
    "or auto (the fastest measured engine for each model on this device)",
    "engine_config": 'engine settings as a JSON object, e.g. \'{"dtype": "bfloat16"}\' or '
    '\'{"mode": "max-autotune-no-cudagraphs"}\' (keys: dtype, num_threads, channels_last; '
    "compile: mode, dynamic, fullgraph, backend)",
}


def _typed(kind: str):
    def parse(text: str) -> Any:
        if text in ("None", "none"):
            return None
        if kind == "bool":
            low = text.lower()
            if low in ("true", "t"):
                return True
            if low in ("false", "f"):
                return False
            raise argparse.ArgumentTypeError(f"expected True/False, got {text!r}")
        if kind == "json":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({e.msg})") from e
            if not isinstance(value, dict):
                raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
            return value
        try:
            return {"int": int, "float": float, "str": str}[kind](text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from e

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pxtorch", description="Run a PaddleX pipeline with PyTorch models.")
    p.add_argument("--pipeline", help="pipeline name (OCR, text_detection, …) or a pipeline YAML path")
    p.add_argument("--input", "-i", nargs="+", help="image/PDF paths, directories or URLs")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, gpu, gpu:N (default: CUDA if available)")
    p.add_argument("--save_path", default="output", help="directory for *_res.json and visualisations")
    p.add_argument("--batch_size", type=int, default=None, help="images per batch (true batching)")
    p.add_argument("--get_pipeline_config", metavar="NAME", help="copy the shipped NAME.yaml to --save_path")
    p.add_argument("--no_save", action="store_true", help="print results only")
    for name, kind in {**_OCR_PREDICT_FLAGS, **_OCR_INIT_FLAGS}.items():
        p.add_argument(f"--{name}", type=_typed(kind), default=None, help=_FLAG_HELP.get(name))
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"pxtorch: error: {message}", file=sys.stderr)
    return code


def pipeline_main(argv: list[str]) -> int:
    """Entry point for PaddleX-style flags; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from .engines import EngineError
    from .pipelines import OCRPipeline, get_pipeline_config, pipeline

    if args.get_pipeline_config:
        try:
            path = get_pipeline_config(args.get_pipeline_config, args.save_path)
        except ValueError as e:
            return _fail(str(e))
        print(f"pipeline config saved to {path}")
        return 0
    if not args.pipeline or not args.input:
        return _fail("--pipeline and --input are required (or --get_pipeline_config NAME)")
    init = {k: getattr(args, k) for k in _OCR_INIT_FLAGS if getattr(args, k) is not None}
    call = {k: getattr(args, k) for k in _OCR_PREDICT_FLAGS if getattr(args, k) is not None}
    try:
        pipe = pipeline(args.pipeline, device=args.device, **init)
    except (ValueError, TypeError, FileNotFoundError, KeyError, EngineError) as e:
        return _fail(f"{type(e).__name__}: {e}".splitlines()[0])
    if call and not isinstance(pipe, OCRPipeline):
        return _fail(f"{', '.join('--' + k for k in call)} apply to the OCR pipeline only")
    inputs = args.input[0] if len(args.input) == 1 else args.input
    failed = 0
    try:
        for res in pipe.predict(inputs, batch_size=args.batch_size, on_error="keep", **call):
            if "error" in res:
                failed += 1
                print(f"pxtorch: error: {res['error']}", file=sys.stderr)
                continue
            res.print()
            if not args.no_save:
                res.save_all(args.save_path)
    except (ValueError, TypeError, EngineError) as e:
        return _fail(f"{type(e).__name__}: {e}".splitlines()[0])
    return 1 if failed else 0
