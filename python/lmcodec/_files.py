"""Writing files without ever damaging what was there: atomic replace, and no-clobber.

``write_atomic(path, writer, overwrite)`` writes through a temporary file in
the destination's folder and moves it into place only once it is complete,
so an interrupted or failed write leaves no half-written file and never
damages an existing one. With ``overwrite=False`` the final step refuses to
replace a file that exists, even one that appeared while we were writing
(``os.link`` of the finished temporary file fails if the name exists).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, BinaryIO

from ._core import LmcError


class OutputExists(LmcError):
    """The output file exists and the caller did not allow overwriting it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: "str | os.PathLike", writer: Callable[[BinaryIO], None], *, overwrite: bool,
                 hint: str = "") -> None:
    """Write `path` via writer(file) into a temporary file beside it, then move it into place."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"{path} exists; not overwritten{hint}")
    if overwrite and os.path.exists(path):
        st = os.stat(path)  # follows links
        if not stat.S_ISREG(st.st_mode):
            # a device, FIFO or socket (/dev/stdout, /dev/null, a named pipe): write to it as a stream;
            # never replace the node itself
            with open(path, "wb") as f:
                writer(f)
            return
        path = Path(os.path.realpath(path))  # a link to a file: replace the file it names, keep the link
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600 files: give the result the mode a plain open() would (or keep the replaced file's)
        try:
            mode = os.stat(path).st_mode & 0o7777 if overwrite and path.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with EEXIST if the name appeared meanwhile: never clobbers
            except OSError as e:
                if e.errno == errno.EEXIST:
                    raise OutputExists(f"{path} exists; not overwritten{hint}") from None
                if os.path.lexists(path):
                    raise OutputExists(f"{path} exists; not overwritten{hint}") from None
                os.replace(tmp, path)  # a file system without hard links (checked just above)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def same_file(a: "str | os.PathLike", b: "str | os.PathLike") -> bool:
    """True when a and b name the same existing file (links and relative paths resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
