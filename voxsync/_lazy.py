"""Lazy exports for the packages' ``__init__`` modules (PEP 562).

A package lists the names it exports and the module each comes from; a name
is imported the first time it is used, so ``import voxsync`` (or
``import voxsync.uhlive`` for its sans-I/O codec) does not load the runtime,
numpy or a provider it does not use::

    __getattr__, __dir__ = lazy_exports(__name__, {
        "voxsync.connection": ("Connection", "State", "close_all"),
    })

``from voxsync import Connection``, ``voxsync.Connection``, ``dir(voxsync)``
and ``__all__`` behave as with eager imports; the package repeats the
imports under ``if TYPE_CHECKING:`` for type checkers.

An export may share its name with a submodule (``voxsync.connection`` is a
function, ``voxsync/connection.py`` a module): importing the submodule
later must not replace the export, as it would by default (the import
system sets the submodule as an attribute of its package). The package's
module type is therefore changed to one that keeps such an export.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

__all__ = ["lazy_exports"]


class _Package(types.ModuleType):
    """A package whose lazy exports win over its submodules of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        exports: Dict[str, str] = self.__dict__.get("_lazy_exports", {})
        if (
            name in exports
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            return  # the import system setting the submodule: the export keeps the name
        super().__setattr__(name, value)


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]], submodules: Sequence[str] = ()
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping
        Module name -> the names the package exports from it.
    submodules : sequence of str
        Short names of further submodules that attribute access imports
        (``package.errors``), as if the package had imported them: packages
        that used to import them eagerly keep them reachable that way. The
        package's own submodules named in ``exports`` are reachable too.

    Returns
    -------
    (__getattr__, __dir__)
        Assign them in the package's namespace. ``__getattr__`` imports a
        name's module on first use and caches the value in the package (later
        look-ups cost nothing); a submodule's name imports the submodule;
        other names raise :class:`AttributeError`. Safe from any thread (the
        import system serialises the imports; a race caches the same value).
    """
    module = sys.modules[package]
    table = {name: source for source, names in exports.items() for name in names}
    children = {
        source.rpartition(".")[2]
        for source in exports
        if source.rpartition(".")[0] == package and source.rpartition(".")[2] not in table
    }
    children.update(submodules)
    module.__dict__["_lazy_exports"] = table
    module.__class__ = _Package

    def getattr_(name: str) -> Any:
        source = table.get(name)
        if source is None:
            if name in children:
                return importlib.import_module(f"{package}.{name}")  # sets the attribute
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        module.__dict__[name] = value
        return value

    def dir_() -> List[str]:
        return sorted(set(module.__dict__) | set(table) | children)

    return getattr_, dir_
