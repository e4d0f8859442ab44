"""Atomic output directories: a stage writes into a hidden temporary sibling and renames it
into place only when everything succeeded.

An interrupted or failed run therefore leaves either the previous complete output or nothing
under the requested name. Every directory tinyprune creates carries a marker file; ``--force``
replaces an existing directory only when it has that marker, so tinyprune never deletes a
directory it did not create.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from tinyprune.errors import BadInput

MARKER = ".tinyprune-output"
_TMP_TAG = ".tinyprune-tmp-"
# writing failed for want of room or permission: disk full, file too large, quota, read-only
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def check_output_dir(out: Path, force: bool) -> None:
    """Refuse early (before any long work) if ``out`` cannot be written."""
    out = Path(out)
    _restore_interrupted_swap(out)
    if out.exists():
        if not force:
            raise BadInput(
                f"output directory {out} already exists",
                hint="choose another --out, or pass --force to replace an earlier tinyprune output",
            )
        if not out.is_dir() or not (out / MARKER).exists():
            raise BadInput(
                f"{out} exists and was not created by tinyprune; refusing to replace it even with --force",
                hint="choose another --out",
            )
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"cannot create {out}: {parent} is not a directory")


@contextlib.contextmanager
def staged_output(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it becomes ``out``.

    On any exception (including KeyboardInterrupt) the temporary directory is removed and
    ``out`` is left as it was.
    """
    out = Path(out)
    check_output_dir(out, force)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create {parent}: {exc.strerror}") from None
    _remove_stale_temporaries(parent, out.name)
    tmp = parent / f".{out.name}{_TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
    except OSError as exc:
        raise BadInput(f"cannot create {out}: {exc.strerror}") from None
    try:
        yield tmp
        (tmp / MARKER).write_text("written by tinyprune; `--force` may replace this directory\n")
        _swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in _WRITE_ERRNOS or (exc.filename and str(exc.filename).startswith(str(tmp))):
            raise BadInput(f"cannot write {out}: {exc.strerror or exc}; nothing was written",
                           hint="free some space (or choose another --out) and run again") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        if _exchange(tmp, out):  # atomic: `out` is the old output, then the new one, never neither
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = out.parent / f".{out.name}{_TMP_TAG}old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)  # killed between these two renames: the next run restores `old`
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux renameat2 with RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _remove_stale_temporaries(parent: Path, name: str) -> None:
    """Temporaries left by a killed run (their process is gone) are removed."""
    for path in sorted(parent.glob(f".{name}{_TMP_TAG}*")):
        pid_part = path.name.rsplit(_TMP_TAG, 1)[1].split("-", 1)[0]
        if pid_part.isdigit() and _process_alive(int(pid_part)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _restore_interrupted_swap(out: Path) -> None:
    """A run killed between the two renames of a non-atomic swap left the previous output under
    a temporary name and nothing at ``out``: put the previous output back."""
    if out.exists() or not out.parent.is_dir():
        return
    for path in sorted(out.parent.glob(f".{out.name}{_TMP_TAG}old-*")):
        if (path / MARKER).exists():
            os.rename(path, out)
            return


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_file_target(path: Path, what: str = "--json") -> None:
    """Refuse early (before any long work) a report file that could not be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BadInput(f"{what} {path} is a directory", hint="give the path of a file, e.g. report.json")
    if not parent.is_dir():
        raise BadInput(f"{what} {path}: directory {parent} does not exist", hint="create it first or choose another path")


def write_files(out_dir: Path, files: dict[str, bytes | str]) -> list[Path]:
    """Write ``{relative path: content}`` under ``out_dir`` (a staging directory: not atomic per
    file), creating subdirectories such as ``board/``; text is written as UTF-8."""
    written = []
    for name, content in files.items():
        path = Path(out_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        written.append(path)
    return written


def write_file_atomic(path: Path, data: bytes | str) -> None:
    """Write a single file (e.g. ``--json FILE``) so that readers never see half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{_TMP_TAG}{os.getpid()}")
    mode = "w" if isinstance(data, str) else "wb"
    try:
        with open(tmp, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BadInput(f"cannot write {path}: {exc.strerror}") from None
