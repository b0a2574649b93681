"""Small shared helpers with no heavy imports.

Takes file paths and validation errors; gives content hashes and readable messages. Why one module: the weights checksum
(:func:`musicrep.models.base.file_checksum`), the pool's source/rendered-file hashes
(:func:`musicrep.data.pool.sha256_file`) and the store's audio identity must hash files the same
way, so they call one function instead of keeping three copies of the loop in step.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "default_file_mode", "read_yaml_mapping", "sha256_file", "validation_problems"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full hex SHA-256 of a file's bytes, streamed (bounded memory whatever the file size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def default_file_mode(path: str | os.PathLike[str]) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would (0666 minus the umask).

    Why: atomic writes go through ``tempfile.mkstemp``, which creates files 0600, so results tables and
    store shards would be unreadable to everyone else who shares the run folder.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it onto ``path``.

    Why: a run killed mid-write (SIGKILL, power) must leave either the old file or the new one, never half
    of one — checkpoints are resumed from and results tables are read by other processes. The temporary
    file is removed if the block raises; it gets the mode a plain ``open()`` would give.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        default_file_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def validation_problems(exc: Any) -> list[tuple[str, str]]:
    """``(dotted.key, message)`` for each error of a pydantic ``ValidationError``.

    Why shared: configs and task specs both promise that a bad file names the offending key, in the same
    words ("unknown key" for a typo rather than pydantic's "Extra inputs are not permitted").
    """
    out = []
    for e in exc.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key (not a setting here; check the spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        out.append((key, msg))
    return out


def read_yaml_mapping(path: str | os.PathLike[str], error: type[Exception], what: str) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; raise ``error`` naming the file for anything else.

    ``what`` completes the message for a non-mapping (e.g. "settings", "keys (name, kind, …)").
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of {what} at the top level")
    return data
