"""Former home of the scheduler base, the decision log and its report (kept for imports).

Now: ``schedulers.base`` (``DecisionScheduler``, option checks), ``raynas.decision_log`` (the
JSONL file) and ``raynas.decision_report`` (``summarise_decisions``).
"""

from raynas.atomic import write_json as _write_json
from raynas.decision_log import (
    DECISIONS_FILE,
    append_records,
    locate_log,
    parse_lines,
    read_decisions,
    stored_results,
)
from raynas.decision_report import summarise_decisions
from schedulers.base import (
    CONTINUE,
    STATE_VERSION,
    STOP,
    DecisionScheduler,
    check_common,
    check_int,
    number,
)


def write_json_atomic(path: str, data) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``raynas.atomic.write_json``)."""
    _write_json(path, data)


__all__ = [
    "CONTINUE",
    "DECISIONS_FILE",
    "STATE_VERSION",
    "STOP",
    "DecisionScheduler",
    "append_records",
    "check_common",
    "check_int",
    "locate_log",
    "number",
    "parse_lines",
    "read_decisions",
    "stored_results",
    "summarise_decisions",
    "write_json_atomic",
]
