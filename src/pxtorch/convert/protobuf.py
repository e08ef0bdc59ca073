"""A minimal protobuf wire-format reader (no generated code, no ``protobuf`` dependency).

Enough to walk PaddlePaddle's ``ProgramDesc`` (``.pdmodel``) and ``TensorDesc`` records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["ProtobufError", "fields", "read_varint"]


class ProtobufError(ValueError):
    """Malformed protobuf bytes."""


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns ``(value, new_pos)``."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited values are ``bytes``.

    Fixed-size values (wire types 1 and 5) are returned as raw little-endian integers.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                raise ProtobufError("truncated length-delimited field")
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def packed_varints(value: int | bytes) -> list[int]:
    """A repeated varint field arrives either packed (bytes) or one element at a time (int)."""
    if isinstance(value, int):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = read_varint(value, pos)
        out.append(v)
    return out
