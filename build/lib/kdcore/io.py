"""Atomic writes: a crash leaves either the old file or the new one, never half of one; and a
folder's lock, for files that several processes may want to build there."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def ensure_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and its parents; a file in the way is an error that says so."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # mkdir's word for "a file stands where a folder should be"
        raise NotADirectoryError(errno.ENOTDIR, "a file, where a folder is needed", e.filename) from None
    return Path(folder)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    ensure_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would leave reports unreadable to a web server
        _fsync(tmp)  # the data is on disk before the name points at it: a power cut leaves old or new
        os.replace(tmp, path)
        _fsync(path.parent)  # and the rename itself is on disk
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive(folder: str | os.PathLike, what: str):
    """Hold ``folder``'s lock while the block runs: another process, or thread, asking for it waits
    until the block ends or its holder dies. A lock on the folder itself leaves no file behind."""
    fd = os.open(ensure_folder(folder), os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {what}: another process is writing in {folder}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


WRITER_ENV = "KDCORE_WRITER"  # set for the processes a lock holder starts: they write under its lock


@contextmanager
def writer_lock(folder: str | os.PathLike, who: str, wait: bool = True):
    """One writer per study output: hold ``folder``'s writer lock while the block runs. Another
    process asking for it waits, saying who holds it (``wait=False``: a ``KDError`` saying so);
    a holder that died (even by SIGKILL) holds nothing: the operating system released its lock,
    and the next writer takes over. Processes the holder starts (a study's stage kernels) inherit
    the lock through the environment and do not ask again."""
    from datetime import datetime

    from kdcore.errors import KDError

    folder = ensure_folder(folder)
    token = f"{os.getpid()}:{folder.resolve()}"
    inherited_tokens = os.environ.get(WRITER_ENV, "").split(";")
    if f"{_holder_pid(folder)}:{folder.resolve()}" in inherited_tokens or job_token(folder) in inherited_tokens:
        yield  # our parent holds it, or we are a study's Slurm job
        return
    fd = os.open(folder / ".kdcore-writer", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            line = (f"waiting for {holder.get('who', 'another process')} (pid {holder.get('pid', '?')}, started "
                    f"{holder.get('started', '?')}) on {folder}")
            if not wait:
                raise KDError(line.replace("waiting for", "another writer holds the output:", 1)
                              + " (without --no-wait, kd waits for it)") from None
            print(line, file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"who": who, "pid": os.getpid(),
                                  "started": datetime.now().strftime("%H:%M")}).encode(), 0)
        inherited = os.environ.get(WRITER_ENV)
        os.environ[WRITER_ENV] = ";".join(filter(None, (inherited, token)))
        try:
            yield
        finally:
            if inherited is None:
                os.environ.pop(WRITER_ENV, None)
            else:
                os.environ[WRITER_ENV] = inherited
    finally:
        os.close(fd)  # releases the lock


def job_token(folder: str | os.PathLike) -> str:
    """What a study's Slurm job writes under: not the lock of the driver that submitted it, which may
    be gone, but the study's own rule that no driver runs a stage whose job is queued or running."""
    return f"job:{Path(folder).resolve()}"


def _holder_pid(folder: Path) -> int | None:
    """The pid the writer lock file names (who holds, or last held, it)."""
    try:
        return json.loads((folder / ".kdcore-writer").read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def remove_stray_temporaries(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """The ``.NAME.XXXX.tmp`` files a killed write leaves behind (SIGKILL skips the cleanup), of any
    file under ``folder`` or of the file ``name``; only while nothing else writes them."""
    strays = [p for p in Path(folder).rglob(f".{name}.*.tmp") if p.is_file()] if Path(folder).is_dir() else []
    for p in strays:
        p.unlink(missing_ok=True)
    return strays


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, paths and tuples as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def link_tree(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """``target`` becomes a copy of file or folder ``source`` made of hard links (a plain copy where
    the file system has none): a finished result shared without its bytes twice on disk. A file
    rewritten later at either place is replaced (a new file, by rename), never changed in place,
    so each keeps what it was given."""
    source, target = Path(source), Path(target)
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    for file in files:
        dest = target / file.relative_to(source) if source.is_dir() else target
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(file, dest)
        except OSError:
            shutil.copy2(file, dest)
