"""Former name of ``raynas.estimators.learning_curves`` (kept so old imports keep working)."""

from raynas.estimators.learning_curves import *  # noqa: F403
from raynas.estimators.learning_curves import __all__ as __all__
