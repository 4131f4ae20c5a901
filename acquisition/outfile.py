"""Output files (target lists, plans, exports) written whole, and never through a symlink.

An output is built in a new temporary file beside it (created exclusively,
``O_EXCL``, by `tempfile.mkstemp`) and renamed over the name when complete,
so a reader never sees half a target list and a crash leaves the old file.
A symlink at the name is refused, as ``O_NOFOLLOW`` would: a link planted
where a report is written must not redirect it onto another file. A device
or pipe at the name (``/dev/null``, a fifo) is written to directly.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from acquisition.errors import UxoOSError

# The permissions a plain open() would give (mkstemp makes 0600); read once.
_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(UxoOSError):
    """The output name cannot be written safely (a symlink, a directory)."""


@contextlib.contextmanager
def open_output(path: str | os.PathLike[str], *, newline: str | None = None) -> Iterator[TextIO]:
    """A text handle (UTF-8) whose content becomes ``path`` when the block ends without error."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{p} is a symlink: not written through it (remove it, or give "
                          "another name)")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{p} is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        fd = os.open(p, os.O_WRONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
            os.fchmod(fh.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output(path: str | Path, text: str) -> Path:
    """Write ``text`` as the whole of ``path`` (see `open_output`)."""
    with open_output(path) as fh:
        fh.write(text)
    return Path(path)
