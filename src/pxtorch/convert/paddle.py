"""Read PaddlePaddle inference models (``inference.pdmodel`` + ``.pdiparams`` + ``.pdiparams.info``) without Paddle.

- ``.pdmodel`` is a ``ProgramDesc`` protobuf; block 0 lists every variable with its ``persistable`` flag.
- ``.pdiparams`` (``save_combine``) concatenates one LoDTensor record per persistable variable (feed and
  fetch excluded), in lexicographic order of the variable names.
- ``.pdiparams.info`` is a pickled ``{paddle_name: {"structured_name": ...}}`` dict giving each tensor's
  dygraph module path. It is decoded by :func:`read_params_info`, which interprets only data opcodes
  and refuses anything that could execute code: weights are never unpickled.
"""

from __future__ import annotations

import pickletools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .protobuf import ProtobufError, fields, packed_varints

__all__ = [
    "PaddleFormatError",
    "PaddleVar",
    "load_paddle_inference",
    "read_params_info",
    "read_pdiparams",
    "read_pdmodel_vars",
]

# framework.proto VarType.Type
_DTYPES = {
    0: np.bool_,
    1: np.int16,
    2: np.int32,
    3: np.int64,
    4: np.float16,
    5: np.float32,
    6: np.float64,
    20: np.uint8,
    21: np.int8,
}
_LOD_TENSOR, _FEED_MINIBATCH, _FETCH_LIST = 7, 9, 10


class PaddleFormatError(ValueError):
    """A Paddle model file that does not parse as expected."""


@dataclass(frozen=True)
class PaddleVar:
    name: str
    var_type: int
    persistable: bool
    dims: tuple[int, ...]


def _parse_var(raw: bytes) -> PaddleVar:
    name, persistable, var_type, dims = "", False, -1, ()
    for num, _, val in fields(raw):
        if num == 1:
            name = val.decode("utf-8")
        elif num == 3:
            persistable = bool(val)
        elif num == 2:
            for tnum, _, tval in fields(val):
                if tnum == 1:
                    var_type = tval
                elif tnum == 3:  # LoDTensorDesc -> TensorDesc
                    for lnum, _, lval in fields(tval):
                        if lnum == 1:
                            dims = tuple(
                                d for f_num, _, f_val in fields(lval) if f_num == 2 for d in packed_varints(f_val)
                            )
    dims = tuple(d - (1 << 64) if d >= 1 << 63 else d for d in dims)
    return PaddleVar(name, var_type, persistable, dims)


def read_pdmodel_vars(path: str | Path) -> list[PaddleVar]:
    """Variables of block 0 of a legacy ``ProgramDesc`` ``.pdmodel`` file."""
    data = Path(path).read_bytes()
    try:
        for num, _, block in fields(data):
            if num == 1:  # first BlockDesc
                return [_parse_var(v) for bnum, _, v in fields(block) if bnum == 3]
    except ProtobufError as e:
        raise PaddleFormatError(
            f"{path}: not a ProgramDesc protobuf ({e}). PIR '.json' programs are not supported."
        ) from e
    raise PaddleFormatError(f"{path}: no program block found")


def _read_tensor(buf: memoryview, pos: int, name: str) -> tuple[np.ndarray, int]:
    try:
        (version,) = struct.unpack_from("<I", buf, pos)
        (lod_level,) = struct.unpack_from("<Q", buf, pos + 4)
        pos += 12
        for _ in range(lod_level):
            (nbytes,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + nbytes
        (tversion, desc_len) = struct.unpack_from("<Ii", buf, pos)
        pos += 8
        desc = bytes(buf[pos : pos + desc_len])
        pos += desc_len
    except struct.error as e:
        raise PaddleFormatError(f"truncated record for '{name}'") from e
    if version != 0 or tversion != 0:
        raise PaddleFormatError(f"unsupported tensor record version for '{name}'")
    dtype_id, dims = None, []
    for num, _, val in fields(desc):
        if num == 1:
            dtype_id = val
        elif num == 2:
            dims.extend(packed_varints(val))
    if dtype_id not in _DTYPES:
        raise PaddleFormatError(f"unsupported dtype id {dtype_id} for '{name}'")
    dtype = np.dtype(_DTYPES[dtype_id]).newbyteorder("<")
    count = int(np.prod(dims)) if dims else 1
    nbytes = count * dtype.itemsize
    if pos + nbytes > len(buf):
        raise PaddleFormatError(f"truncated data for '{name}'")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=pos).reshape(dims).copy()
    return arr, pos + nbytes


def read_pdiparams(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """Read a combined ``.pdiparams`` file holding ``names`` (sorted lexicographically, as Paddle saves them)."""
    buf = memoryview(Path(path).read_bytes())
    out, pos = {}, 0
    for name in sorted(names):
        out[name], pos = _read_tensor(buf, pos, name)
    if pos != len(buf):
        raise PaddleFormatError(f"{path}: {len(buf) - pos} trailing bytes; the program and the params file disagree")
    return out


_MEMO_PUT = {"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"}
_MEMO_GET = {"BINGET", "LONG_BINGET", "GET"}
_CONSTS = {"NEWTRUE": True, "NEWFALSE": False, "NONE": None}


def read_params_info(path: str | Path) -> dict[str, str]:
    """``{paddle_var_name: structured_name}`` from a ``.pdiparams.info`` pickle, decoded as data only.

    Only dict/list/str/int/bool/None opcodes are interpreted; any other opcode (globals, reduce,
    object construction) raises :class:`PaddleFormatError`.
    """
    data = Path(path).read_bytes()
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    try:
        ops = list(pickletools.genops(data))
    except Exception as e:
        raise PaddleFormatError(f"{path}: not a pickle ({e})") from e
    for op, arg, _ in ops:
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            break
        if name in ("EMPTY_DICT", "EMPTY_LIST"):
            stack.append({} if name == "EMPTY_DICT" else [])
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"):
            stack.append(str(arg))
        elif name in ("BININT", "BININT1", "BININT2", "LONG1", "INT"):
            stack.append(int(arg))
        elif name in _CONSTS:
            stack.append(_CONSTS[name])
        elif name in _MEMO_PUT:
            memo[len(memo) if arg is None else arg] = stack[-1]
        elif name in _MEMO_GET:
            stack.append(memo[arg])
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            start = marks.pop()
            items = stack[start:]
            del stack[start:]
            stack[-1].update(zip(items[::2], items[1::2], strict=True))
        elif name in ("APPEND", "APPENDS"):
            if name == "APPEND":
                stack[-2].append(stack.pop())
            else:
                start = marks.pop()
                items = stack[start:]
                del stack[start:]
                stack[-1].extend(items)
        else:
            raise PaddleFormatError(f"{path}: refusing pickle opcode {name} (only plain data is read)")
    if len(stack) != 1 or not isinstance(stack[0], dict):
        raise PaddleFormatError(f"{path}: expected a dict at the top level")
    out = {}
    for key, value in stack[0].items():
        if isinstance(value, dict) and isinstance(value.get("structured_name"), str):
            out[key] = value["structured_name"]
    return out


def load_paddle_inference(model_dir: str | Path, prefix: str = "inference") -> dict[str, np.ndarray]:
    """All saved tensors of a Paddle inference model, keyed by dygraph structured name.

    Raises:
        FileNotFoundError: a required file is missing (the message names it).
        PaddleFormatError: the files do not parse, or a tensor has no structured name.
    """
    model_dir = Path(model_dir)
    files = {ext: model_dir / f"{prefix}.{ext}" for ext in ("pdmodel", "pdiparams", "pdiparams.info")}
    for f in files.values():
        if not f.is_file():
            raise FileNotFoundError(f"Paddle inference model file missing: {f}")
    variables = read_pdmodel_vars(files["pdmodel"])
    saved = [v.name for v in variables if v.persistable and v.var_type not in (_FEED_MINIBATCH, _FETCH_LIST)]
    tensors = read_pdiparams(files["pdiparams"], saved)
    info = read_params_info(files["pdiparams.info"])
    missing = [n for n in tensors if n not in info]
    if missing:
        raise PaddleFormatError(f"{files['pdiparams.info']}: no structured name for {missing[:5]}")
    return {info[n]: arr for n, arr in tensors.items()}
