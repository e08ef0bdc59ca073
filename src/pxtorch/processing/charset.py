"""Character dictionaries of CTC recognisers (PaddleX ``CTCLabelDecode`` conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["Charset", "parse_dict_text"]


def parse_dict_text(text: str) -> list[str]:
    """Split a dictionary file's text into entries, one per line.

    Only line terminators are removed (``\\n`` and a trailing ``\\r``); a line holding a single space
    stays a space (the English dictionary ends with one). A final newline adds no entry.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class Charset:
    """The class list of a CTC head: ``["blank", *characters, " " (if use_space_char)]``.

    Args:
        characters: dictionary entries in order (PaddleX ``character_dict``).
        use_space_char: append ``" "`` as the last class, as every PP-OCR recogniser does.
    """

    BLANK = "blank"

    def __init__(self, characters: Sequence[str], use_space_char: bool = True) -> None:
        self.characters = list(characters)
        self.use_space_char = use_space_char
        self.labels = [self.BLANK, *self.characters, *([" "] if use_space_char else [])]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @classmethod
    def from_file(cls, path: str | Path, use_space_char: bool = True) -> Charset:
        return cls(parse_dict_text(Path(path).read_text(encoding="utf-8")), use_space_char)

    def save(self, path: str | Path) -> None:
        """Write one entry per line (LF), UTF-8."""
        if any("\n" in c or "\r" in c for c in self.characters):
            raise ValueError("dictionary entries must not contain line breaks")
        Path(path).write_text("".join(f"{c}\n" for c in self.characters), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.characters)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.labels == other.labels

    def __repr__(self) -> str:
        return f"Charset({len(self.characters)} characters, use_space_char={self.use_space_char})"
