"""``pxtorch --pipeline …``: PaddleX's pipeline command line (``paddlex --pipeline OCR --input …``).

Flags and their parsing follow PaddleX: booleans accept ``True/False/T/F/true/false``, ``None``
means "use the config value". Each result is printed and saved (json + visualisation) under
``--save_path``. Unreadable inputs are reported one line each on stderr and the exit code is 1;
bad arguments or configs exit with code 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
from typing import Any

__all__ = ["pipeline_main"]

# PaddleX's per-pipeline predict flags (paddlex/utils/pipeline_arguments.py) and their types
_DOC_FLAGS: dict[str, str] = {"use_doc_orientation_classify": "bool", "use_doc_unwarping": "bool"}
_TEXT_DET_FLAGS: dict[str, str] = {
    "text_det_limit_side_len": "int",
    "text_det_limit_type": "str",
    "text_det_max_side_limit": "int",
    "text_det_thresh": "float",
    "text_det_box_thresh": "float",
    "text_det_unclip_ratio": "float",
    "text_rec_score_thresh": "float",
}
_LAYOUT_FLAGS: dict[str, str] = {
    "layout_threshold": "literal",
    "layout_nms": "bool",
    "layout_unclip_ratio": "literal",
    "layout_merge_bboxes_mode": "literal",
}
_OCR_PREDICT_FLAGS: dict[str, str] = {**_DOC_FLAGS, "use_textline_orientation": "bool", **_TEXT_DET_FLAGS}
_PREDICT_FLAGS: dict[str, dict[str, str]] = {
    "OCR": _OCR_PREDICT_FLAGS,
    "doc_preprocessor": _DOC_FLAGS,
    "seal_recognition": {
        **_DOC_FLAGS,
        "use_layout_detection": "bool",
        **_LAYOUT_FLAGS,
        "seal_det_limit_side_len": "int",
        "seal_det_limit_type": "str",
        "seal_det_thresh": "float",
        "seal_det_box_thresh": "float",
        "seal_det_unclip_ratio": "float",
        "seal_rec_score_thresh": "float",
    },
    "table_recognition": {**_DOC_FLAGS, "use_layout_detection": "bool", "use_ocr_model": "bool", **_TEXT_DET_FLAGS},
    # PaddleX's module flags: object detection's --threshold, plus the layout post-processing options
    "layout_detection": {
        "threshold": "literal",
        **{k.replace("layout_", "layout_"): v for k, v in _LAYOUT_FLAGS.items()},
    },
}
_PREDICT_FLAGS["layout_detection"].pop("layout_threshold")
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
        if kind == "literal":  # PaddleX: Python literals (a float, a {cls_id: value} dict, a (w, h) tuple)
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError) as e:
                raise argparse.ArgumentTypeError(f"expected a number, tuple or dict literal, got {text!r}") from e
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
    flags = {k: v for table in _PREDICT_FLAGS.values() for k, v in table.items()} | _OCR_INIT_FLAGS
    for name, kind in flags.items():
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
    from .pipelines import get_pipeline_config, pipeline

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
    given = {k for table in _PREDICT_FLAGS.values() for k in table if getattr(args, k) is not None}
    try:
        pipe = pipeline(args.pipeline, device=args.device, **init)
    except (ValueError, TypeError, FileNotFoundError, KeyError, EngineError) as e:
        return _fail(f"{type(e).__name__}: {e}".splitlines()[0])
    accepted = _PREDICT_FLAGS.get(pipe.pipeline_name, {})
    wrong = sorted(given - set(accepted))
    if wrong:
        where = {k: [p for p, table in _PREDICT_FLAGS.items() if k in table] for k in wrong}
        return _fail(
            "; ".join(f"--{k} applies to {', '.join(ps)}, not {pipe.pipeline_name}" for k, ps in where.items())
        )
    call = {k: getattr(args, k) for k in sorted(given)}
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
