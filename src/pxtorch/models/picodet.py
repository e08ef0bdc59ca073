"""Placeholder: filled in by the issue-7 work on this model family."""

__all__: list[str] = []
