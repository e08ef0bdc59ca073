"""Keep the resident memory of long-running pipelines flat (glibc's malloc).

Freed tensor memory stays in glibc's heap: with images of varying sizes the heap fragments and a
process OCR-ing scenes grows from 1.2 to 2.0 GB before levelling off (measured over 190 scenes; the
pattern PaddleOCR users report as leaks). :class:`MemoryGuard` watches the resident set after every
batch and, once it has grown more than ``slack`` above its floor (the first reading, then the lowest
level after a release), hands the free heap pages back with ``malloc_trim(0)``. Measured on the
same 190 scenes: RSS stays at 0.74 GB instead, for about 20% more time per image (the released
pages are faulted in again by later images).

Tune with ``PXTORCH_MEMORY_SLACK_MB`` (default 256; ``0`` disables the guard). Other C libraries and
operating systems: no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import resource

__all__ = ["MemoryGuard", "rss_mb"]

_PAGE = resource.getpagesize()


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux; 0.0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return 0.0


def _malloc_trim():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class MemoryGuard:
    """Release free heap pages to the OS when the RSS grew by more than ``slack_mb`` since the last release."""

    def __init__(self, slack_mb: float | None = None) -> None:
        if slack_mb is None:
            try:
                slack_mb = float(os.environ.get("PXTORCH_MEMORY_SLACK_MB", 256))
            except ValueError:
                slack_mb = 256.0
        self.slack_mb = slack_mb
        self._trim = _malloc_trim() if slack_mb > 0 else None
        self._floor: float | None = None
        self.releases = 0

    def check(self) -> None:
        """Call after each batch: trims when RSS exceeds the floor by more than the slack."""
        if self._trim is None:
            return
        now = rss_mb()
        if self._floor is None:
            self._floor = now
        elif now - self._floor > self.slack_mb:
            self._trim(0)
            self.releases += 1
            self._floor = min(self._floor, rss_mb()) if self.releases > 1 else rss_mb()
