"""Text labels -> class ids for CTC and the NRTR guidance branch (PaddleOCR ``MultiLabelEncode``).

PaddleOCR facts (``ppocr/data/imaug/label_ops.py``, ``BaseRecLabelEncode`` / ``CTCLabelEncode`` /
``NRTRLabelEncode`` / ``MultiLabelEncode``):

- A text whose *raw* length is 0 or more than ``max_text_length`` is rejected before anything else.
- Characters missing from the dictionary are silently dropped; nothing left -> rejected.
- CTC ids index ``["blank", *dict, " "]`` (= ``Charset.labels``), blank = 0 never appears in a label.
- NRTR ids index ``["blank", "<unk>", "<s>", "</s>", *dict, " "]`` (space only with ``use_space_char``):
  pad = 0, ``<s>`` = 2, ``</s>`` = 3, a dictionary character has its CTC id + 3. The label is
  ``[2, *ids, 3]`` zero-padded to ``max_text_length``; texts with ``len(ids) >= max_text_length - 1``
  are rejected. ``MultiLabelEncode`` drops the sample when either encoding fails, so with the default
  25 a PP-OCRv4/v5 training sample keeps at most 23 dictionary characters.
- When a character occurs twice in the dictionary the *last* index wins (PaddleOCR builds its
  ``char -> id`` dict by enumeration), which this module reproduces.
- PaddleOCR's NRTR head projects to one class more than its token list (``Transformer`` adds 1 to
  ``out_channels = len(CTC labels) + 3``); :func:`nrtr_vocab_size` returns that head size.
"""

from __future__ import annotations

from collections import OrderedDict

from ..processing.charset import Charset

__all__ = [
    "NRTR_BOS",
    "NRTR_EOS",
    "NRTR_PAD",
    "NRTR_SPECIAL_TOKENS",
    "NRTR_UNK",
    "LabelEncoder",
    "encode_ctc",
    "encode_nrtr",
    "nrtr_tokens",
    "nrtr_vocab_size",
]

NRTR_SPECIAL_TOKENS = ("blank", "<unk>", "<s>", "</s>")
NRTR_PAD, NRTR_UNK, NRTR_BOS, NRTR_EOS = 0, 1, 2, 3


def nrtr_tokens(charset: Charset) -> list[str]:
    """NRTR token list: ``["blank", "<unk>", "<s>", "</s>", *characters, " " (if use_space_char)]``."""
    return [*NRTR_SPECIAL_TOKENS, *charset.labels[1:]]


def nrtr_vocab_size(charset: Charset) -> int:
    """Output classes of PaddleOCR's NRTR head: ``len(nrtr_tokens(charset)) + 1`` = ``charset.num_classes + 4``.

    The extra last class is never a target (PaddleOCR's ``Transformer`` reserves it); it takes part in the
    softmax and in the label smoothing, so keeping it reproduces PaddleOCR's loss exactly and lets a
    PaddleOCR ``*_pretrained.pdparams`` NRTR head load without reshaping.
    """
    return len(nrtr_tokens(charset)) + 1


class LabelEncoder:
    """Cached ``char -> id`` tables of one charset.

    Args:
        charset: the recogniser's CTC class list.
        max_text_length: PaddleOCR ``Global.max_text_length`` (25 for PP-OCRv4/v5 rec).
    """

    def __init__(self, charset: Charset, max_text_length: int = 25) -> None:
        self.charset = charset
        self.max_text_length = max_text_length
        # Enumeration order, later duplicates overwrite earlier ones: PaddleOCR's dict.
        self._ctc = {c: i for i, c in enumerate(charset.labels)}
        self._nrtr = {c: i for i, c in enumerate(nrtr_tokens(charset))}
        self.nrtr_vocab_size = nrtr_vocab_size(charset)

    def _encode(self, text: str, table: dict[str, int]) -> list[int] | None:
        if len(text) == 0 or len(text) > self.max_text_length:
            return None
        ids = [table[c] for c in text if c in table]
        return ids or None

    def ctc(self, text: str) -> list[int] | None:
        """CTC ids (unpadded, no blank) or ``None`` when PaddleOCR's ``CTCLabelEncode`` drops the text."""
        return self._encode(text, self._ctc)

    def nrtr(self, text: str) -> list[int] | None:
        """``[<s>, *ids, </s>]`` (unpadded) or ``None`` when ``NRTRLabelEncode`` drops the text."""
        ids = self._encode(text, self._nrtr)
        if ids is None or len(ids) >= self.max_text_length - 1:
            return None
        return [NRTR_BOS, *ids, NRTR_EOS]

    def multi(self, text: str) -> tuple[list[int], list[int]] | None:
        """``(ctc_ids, nrtr_ids)`` or ``None`` when either fails (``MultiLabelEncode``).

        The sample's ``length`` is ``len(ctc_ids)`` (= ``len(nrtr_ids) - 2``).
        """
        ctc = self.ctc(text)
        if ctc is None:
            return None
        nrtr = self.nrtr(text)
        if nrtr is None:
            return None
        return ctc, nrtr


# (id(charset), max_text_length) -> (charset, encoder); the strong reference keeps the id unique while cached.
_ENCODERS: OrderedDict[tuple[int, int], tuple[Charset, LabelEncoder]] = OrderedDict()
_MAX_CACHED = 16


def _encoder(charset: Charset, max_text_length: int) -> LabelEncoder:
    key = (id(charset), max_text_length)
    hit = _ENCODERS.get(key)
    if hit is not None and hit[0] is charset:
        _ENCODERS.move_to_end(key)
        return hit[1]
    enc = LabelEncoder(charset, max_text_length)
    _ENCODERS[key] = (charset, enc)
    while len(_ENCODERS) > _MAX_CACHED:
        _ENCODERS.popitem(last=False)
    return enc


def encode_ctc(text: str, charset: Charset, max_text_length: int = 25) -> list[int] | None:
    """CTC ids of ``text`` in ``charset.labels`` (see :meth:`LabelEncoder.ctc`); the table is cached per charset."""
    return _encoder(charset, max_text_length).ctc(text)


def encode_nrtr(text: str, charset: Charset, max_text_length: int = 25) -> list[int] | None:
    """NRTR ids ``[2, *ids, 3]`` of ``text`` (see :meth:`LabelEncoder.nrtr`); the table is cached per charset."""
    return _encoder(charset, max_text_length).nrtr(text)
