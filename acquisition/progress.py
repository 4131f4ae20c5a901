"""Progress bars for long batch work, shown on a terminal and silent in a pipe.

One helper for every batch command (``uxo process``, ``uxo borehole process``,
``uxo map``, ``uxo report``, ``uxo daily``): wrap an iterable or count steps by
hand. The bar goes to standard error and only when standard error is a
terminal, so ``uxo map ... 2>log`` or a cron job stays quiet and output piped
into another program is never mixed with bar redraws. tqdm draws it; without
tqdm installed the helper does nothing (the work is the same).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


def bar_enabled(stream: TextIO | None = None) -> bool:
    """True when a bar would be drawn on ``stream`` (default stderr): a terminal."""
    s = sys.stderr if stream is None else stream
    try:
        return bool(s.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


class Progress:
    """A step counter drawn as a bar on a terminal; ``with Progress(5, "map") as p: p.step()``."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "step",
                 stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.count = 0
        self.total = total
        self._bar: Any = None
        on = bar_enabled(stream) if enabled is None else enabled
        if on:
            try:
                from tqdm import tqdm
            except ImportError:  # the `maps` extra is not installed: no bar, same work
                return
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False,
                             file=sys.stderr if stream is None else stream,
                             dynamic_ncols=True)

    @property
    def drawn(self) -> bool:
        return self._bar is not None

    def step(self, n: int = 1, what: str | None = None) -> None:
        self.count += n
        if self._bar is not None:
            if what:
                self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "item",
             stream: TextIO | None = None) -> Iterator[T]:
    """Yield ``items``, drawing a bar on a terminal (see `Progress`)."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with Progress(total, desc, unit=unit, stream=stream) as p:
        for item in items:
            yield item
            p.step()
