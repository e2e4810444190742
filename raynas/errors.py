"""Exceptions shared by every layer of raynas."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user error in an experiment file or its overrides (CLI exit code 2)."""
