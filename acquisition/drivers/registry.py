"""Find drivers by name: the ``uxo.drivers`` entry-point group, plus `register`.

Entry points are imported lazily, only when a driver is asked for, so a broken
third-party driver cannot stop the service from starting with another one.
`register` adds a class at run time (tests, notebooks).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from acquisition.drivers.base import Driver
from acquisition.errors import UxoLookupError

GROUP = "uxo.drivers"
_runtime: dict[str, type[Driver]] = {}


class UnknownDriverError(UxoLookupError):
    """No driver is registered or installed under the name asked for."""


def register(name: str, cls: type[Driver]) -> None:
    """Make ``cls`` available as ``name`` (overrides an entry point of that name)."""
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"{cls!r} is not a Driver subclass")
    _runtime[name] = cls


def unregister(name: str) -> None:
    _runtime.pop(name, None)


def available() -> list[str]:
    """Names of all known drivers (entry points are not imported)."""
    names = {ep.name for ep in entry_points(group=GROUP)}
    return sorted(names | set(_runtime))


def get(name: str) -> type[Driver]:
    if name in _runtime:
        return _runtime[name]
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise UnknownDriverError(
            f"no driver named {name!r}; available: {', '.join(available()) or 'none'}"
        )
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"entry point {name!r} does not name a Driver subclass: {cls!r}")
    return cls


def create(name: str, port: str, **options: Any) -> Driver:
    """Instantiate driver ``name`` on ``port`` with driver options."""
    return get(name)(port, **options)
