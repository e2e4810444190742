"""raynas: Neural Architecture Search orchestrated by Ray Tune.

The distribution installs three import packages: ``raynas``, ``search_spaces`` and
``schedulers`` (the layout the design card fixes). ``raynas.search_spaces`` and
``raynas.schedulers`` name the same modules (not copies) under the ``raynas`` namespace, so
user code can avoid the generic top-level names; see ARCHITECTURE.md, "Import names".
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: ``raynas.<alias>`` -> the top-level package it names.
_ALIASES = {"raynas.search_spaces": "search_spaces", "raynas.schedulers": "schedulers"}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``raynas.search_spaces[.x]`` as the module ``search_spaces[.x]`` itself."""

    def find_spec(self, fullname, path=None, target=None):
        for alias in _ALIASES:
            if fullname == alias or fullname.startswith(alias + "."):
                return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        for alias, real in _ALIASES.items():
            if spec.name == alias or spec.name.startswith(alias + "."):
                return importlib.import_module(real + spec.name[len(alias) :])
        raise ImportError(spec.name)  # find_spec only answers for the aliases

    def exec_module(self, module) -> None:
        pass  # the real module ran when create_module imported it


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
