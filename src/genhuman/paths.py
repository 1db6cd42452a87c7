"""Path checks made before any work by every command and engine that writes a file.

An output that is one of the inputs (the same name, a symlink, a hard link, ``./`` or
``..`` spellings) would be overwritten by the job reading it, so it is refused; so is a
name the file system cannot hold. An OSError on a path later on (a missing folder, a
name too long, no permission) is the user's input too: :func:`path_error` words it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional

from genhuman.errors import InputError

# errno values that say something about the path the user gave, not about GenHuman.
PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                         errno.EPERM, errno.ELOOP, errno.EROFS, errno.EEXIST, errno.ENOTEMPTY})
SHOWN_NAME_CHARS = 60  # a 300-character name is shortened in messages, keeping both ends


def shown(path: str | bytes | os.PathLike) -> str:
    """``repr`` of a path, the middle of an absurdly long one elided."""
    text = os.fsdecode(path)
    if len(text) > SHOWN_NAME_CHARS:
        keep = SHOWN_NAME_CHARS // 2
        text = f"{text[:keep]}...{text[-keep:]}"
    return repr(text)


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the file system holding ``path`` allows."""
    for folder in (path.parent, *path.parent.parents):
        try:
            return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):
            continue
    return 255


def check_name_length(path: Path) -> None:
    """InputError when a component of ``path`` or the whole is longer than allowed."""
    limit = _name_max(path)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise InputError(f"file name too long: {shown(part)} ({size} bytes, at most {limit})")
    size = len(os.fsencode(path))
    if size >= 4096:  # PATH_MAX on Linux
        raise InputError(f"path too long ({size} bytes): {shown(path)}")


def check_output(output: Path, inputs: dict[str, Optional[Path]]) -> None:
    """Refuse an ``output`` that names one of ``inputs`` (role -> path), or a name too long."""
    check_name_length(output)
    for role, source in inputs.items():
        if source is None:
            continue
        try:
            same = os.path.samefile(output, source)
        except (OSError, ValueError):  # one of them does not exist (yet): not the same file
            same = False
        if same:
            raise InputError(f"output {shown(output)} is the {role} {shown(source)}; "
                             "choose another output name")


def path_error(exc: OSError) -> Optional[str]:
    """One line for an OSError about a path the user gave, or None if it is not one."""
    if exc.errno not in PATH_ERRNOS or not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return None
    if exc.errno == errno.ENAMETOOLONG:
        return f"file name too long: {shown(exc.filename)}"
    return f"{exc.strerror or os.strerror(exc.errno)}: {shown(exc.filename)}"
