"""The audio files items name: the name on disk (across Unicode forms), and the same bytes under two ids.

Takes paths as written in a CSV or a dataset's metadata and gives the file that is really there
(:func:`resolve_path`); takes items (id, path, split) and gives the items whose audio is byte-identical
to an item kept in an earlier split (:func:`find_duplicates`). :meth:`musicrep.data.task.Task.load` and
every importer use both, so a task never names a file "missing" that is there under another Unicode
form, and never scores a test item that is also a training item.

Why Unicode forms: ``é`` can be one code point (NFC, what most editors and CSV writers produce) or
``e`` + a combining accent (NFD, what macOS file systems store). Linux stores names as the bytes given,
so a CSV row in one form does not open a file named in the other.

Why by content: public datasets hold byte-identical tracks under two ids (MTG-Jamendo has train/test
pairs); an id or a path tells nothing. Hashing every file would read the whole dataset on each load, so
files are grouped by size first (most sizes are unique), then by a fingerprint of their first and last
4 KiB, and only what still collides is hashed in full (:func:`musicrep.util.sha256_file`).
Near-duplicates (another encoding, a trimmed copy) are out of scope.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicrep.util import sha256_file

__all__ = ["SPLIT_ORDER", "Duplicate", "DuplicateAudioWarning", "find_duplicates", "resolve_path", "warn_duplicates"]

#: Split precedence when one of several identical files is kept: the earliest wins.
SPLIT_ORDER = {"train": 0, "valid": 1, "test": 2}
_EDGE = 4096  # bytes read from each end of a same-size file before hashing it in full


def resolve_path(path: str | os.PathLike[str], listings: dict[Path, dict[str, list[str]]] | None = None) -> Path:
    """The path of the file on disk that ``path`` names, matching names across NFC/NFD Unicode forms.

    Args:
        path: absolute or relative path as written (a CSV row, a metadata field).
        listings: a dict reused across calls so each folder is listed at most once (many lookups in one
            task); filled here.

    Returns:
        ``path`` itself when it exists; else the existing path whose every component equals the given one
        up to Unicode normalisation (a folder holding several such names: the first in sorted order);
        else ``path`` unchanged (the caller reports it missing).
    """
    p = Path(path)
    if p.exists():
        return p
    for form in ("NFC", "NFD"):  # the whole path in one form: two stats, no listing
        q = Path(unicodedata.normalize(form, str(p)))
        if q.exists():
            return q
    cache = listings if listings is not None else {}
    cur = Path(p.anchor) if p.anchor else Path()
    for part in p.parts[1:] if p.anchor else p.parts:
        nxt = cur / part
        if not nxt.exists():
            if cur not in cache:
                names: dict[str, list[str]] = defaultdict(list)
                try:
                    for entry in sorted(os.listdir(cur if str(cur) else ".")):
                        names[unicodedata.normalize("NFC", entry)].append(entry)
                except OSError:
                    pass
                cache[cur] = dict(names)
            found = cache[cur].get(unicodedata.normalize("NFC", part))
            if not found:
                return p
            nxt = cur / found[0]
        cur = nxt
    return cur


class DuplicateAudioWarning(UserWarning):
    """Items with byte-identical audio were found; all but one of each set were dropped."""


@dataclass(frozen=True)
class Duplicate:
    """One dropped item: ``dropped`` (in ``split``) has the same bytes as ``kept`` (in ``kept_split``)."""

    kept: str
    kept_split: str
    dropped: str
    split: str

    def as_dict(self) -> dict[str, str]:
        """The entry written under ``duplicates_dropped`` in ``task.yaml`` provenance."""
        return {"kept": self.kept, "kept_split": self.kept_split, "dropped": self.dropped, "split": self.split}


def find_duplicates(ids: Sequence[str], paths: Sequence[str | os.PathLike[str]],
                    splits: Sequence[str]) -> list[Duplicate]:
    """Items whose audio file is byte-identical to another item's; one of each identical set is kept.

    The kept item is the one in the earliest split (train, then valid, then test; other split names
    last), first listed among equals; every other item of the set is returned as dropped, in listing
    order. Files that cannot be read are ignored here (the audio check reports them).

    Args:
        ids, paths, splits: one per item, same length.

    Returns:
        :class:`Duplicate` per item to drop (empty when all audio is distinct).
    """
    if not (len(ids) == len(paths) == len(splits)):
        raise ValueError("find_duplicates: ids, paths and splits must have the same length")
    by_size: dict[int, list[int]] = defaultdict(list)
    inode: dict[int, tuple[int, int]] = {}
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError:
            continue
        by_size[st.st_size].append(i)
        inode[i] = (st.st_dev, st.st_ino)
    out: list[tuple[int, Duplicate]] = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        for same in _identical(same_size, paths, inode):
            keep = min(same, key=lambda i: (SPLIT_ORDER.get(splits[i], len(SPLIT_ORDER)), i))
            out.extend((i, Duplicate(ids[keep], splits[keep], ids[i], splits[i])) for i in same if i != keep)
    return [d for _, d in sorted(out, key=lambda x: x[0])]


def _identical(candidates: list[int], paths: Sequence[str | os.PathLike[str]],
               inode: dict[int, tuple[int, int]]) -> list[list[int]]:
    """Sets (≥ 2, ascending) among same-size ``candidates`` with identical bytes."""
    sets: dict[Any, list[int]] = defaultdict(list)
    by_edges: dict[bytes, list[int]] = defaultdict(list)
    for i in candidates:
        try:
            by_edges[_edges(paths[i])].append(i)
        except OSError:
            continue
    for group in by_edges.values():
        if len(group) < 2:
            continue
        digest: dict[tuple[int, int], str] = {}  # one file listed twice (or hard-linked) is read once
        for i in group:
            try:
                if inode[i] not in digest:
                    digest[inode[i]] = sha256_file(paths[i])
            except OSError:
                continue
            sets[digest[inode[i]]].append(i)
    return [sorted(s) for s in sets.values() if len(s) > 1]


def _edges(path: str | os.PathLike[str]) -> bytes:
    """The first and last 4 KiB of a file: equal for identical files, almost never for different ones."""
    with open(path, "rb") as f:
        head = f.read(_EDGE)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(len(head), size - _EDGE))
        return head + f.read(_EDGE)


def warn_duplicates(where: str, duplicates: Sequence[Duplicate]) -> None:
    """Issue one :class:`DuplicateAudioWarning` naming the dropped and kept ids (the first 5 pairs)."""
    if not duplicates:
        return
    pairs = "; ".join(f"{d.dropped!r} ({d.split}) = {d.kept!r} ({d.kept_split})" for d in duplicates[:5])
    more = f"; … {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
    warnings.warn(
        f"{where}: {len(duplicates)} item(s) have byte-identical audio to another item and were dropped, "
        f"keeping the copy in the earliest split: {pairs}{more} (recorded in provenance "
        f"'duplicates_dropped')",
        DuplicateAudioWarning, stacklevel=3)
