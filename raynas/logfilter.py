"""Leave out third-party log messages that raynas says in its own words."""

from __future__ import annotations

import logging


class DropMessages(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not ours to judge
            return True
        return not message.startswith(self.prefixes)


def drop_messages(logger_name: str, *prefixes: str) -> None:
    """Drop the messages of logger ``logger_name`` starting with ``prefixes`` (idempotent)."""
    logger = logging.getLogger(logger_name)
    for f in logger.filters:
        if isinstance(f, DropMessages) and f.prefixes == prefixes:
            return
    logger.addFilter(DropMessages(*prefixes))
