"""``oneshot`` trainable: one weight-sharing architecture search per trial.

The same trainable as ``darts`` (``raynas.trainables.darts``, whose docstring describes the
options, the Tune config keys and the per-epoch report), registered under the family's name;
the ``method`` option picks DARTS (default), RSPS, GDAS, SETN or ENAS
(``raynas.oneshot.methods``). Trial config keys keep the ``darts.`` prefix for both names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raynas.trainables.darts import make_named
from search_spaces.base import SearchSpace


def make(space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The ``oneshot`` trainable for ``space``; options are those of ``DartsOptions``.

    Raises:
        ValueError: unsupported space, unknown method, unknown option or invalid value.
    """
    return make_named("oneshot", space, **options)
