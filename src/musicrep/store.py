"""On-disk embedding store: (representation id, audio content hash, window config) → ``[L, H]`` per item.

Layout (human-inspectable, one folder per representation and window config)::

    STORE/<representation id>/<window key>/
        meta.json                 representation name/config/layer names+dims, window config
        shard-<digest>.npz        keys [n], mean [n, L, H], n_windows [n] (+ frames, offsets when frame-level)
        errors.jsonl              files that could not be read (path, hash, message), one JSON per line

Why shards named by the digest of their member keys, written atomically: a shard is the unit of work.
It is computed whole and renamed into place (``os.replace``), so a killed run leaves only complete shards
and a resumed run recomputes exactly the planned shards that are missing — the finished store is
byte-identical to an uninterrupted one. (When some keys of a planned shard are already stored, e.g.
shared with another task, only the missing keys form the new shard.) The same unit is what Ray workers
compute, so local and Ray executors produce the same store.

Why content hashes: the same audio used by two tasks (or renamed) is embedded once; edited audio is
embedded again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.util import atomic_path, sha256_file

__all__ = ["EmbeddingStore", "Shard", "content_hash", "shard_name"]


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 (first 24 hex digits) of a file's bytes: the audio's identity in the store."""
    return sha256_file(path)[:24]


def shard_name(keys: Iterable[str]) -> str:
    """Deterministic shard file name from its member keys (order-independent)."""
    h = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"shard-{h}.npz"


@dataclass
class Shard:
    """One unit of stored work: embeddings of a fixed set of items."""

    keys: list[str]
    mean: np.ndarray  # [n, L, H] float32 timeline means
    n_windows: np.ndarray  # [n] int
    frames: np.ndarray | None = None  # [sum n_windows, L, H] per-window embeddings (frame-level)
    offsets: np.ndarray | None = None  # [n + 1] start of each item's windows in ``frames``


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Deterministic .npz bytes (fixed zip timestamps) so identical content gives identical files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, arr_buf.getvalue())
    return buf.getvalue()


class EmbeddingStore:
    """Embeddings of one representation under one window config.

    Args:
        root: the store folder (shared by all representations).
        rep_id: the representation's stable id.
        window_key: a short string identifying the window config.
        meta: what to write into ``meta.json`` on first use (representation and window description).
    """

    def __init__(self, root: str | os.PathLike[str], rep_id: str, window_key: str, meta: dict[str, Any] | None = None):
        self.dir = Path(root) / rep_id / window_key
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta is not None and not meta_path.exists():
            _atomic_write_bytes(meta_path, json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
        self._index: dict[str, tuple[str, int]] | None = None

    # ----- reading -------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        p = self.dir / "meta.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def shard_files(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.npz"))

    def index(self, refresh: bool = False) -> dict[str, tuple[str, int]]:
        """key → (shard file name, row)."""
        if self._index is None or refresh:
            idx: dict[str, tuple[str, int]] = {}
            for f in self.shard_files():
                with np.load(f) as z:
                    for i, k in enumerate(z["keys"].tolist()):
                        idx[k] = (f.name, i)
            self._index = idx
        return self._index

    def __contains__(self, key: str) -> bool:
        return key in self.index()

    def keys(self) -> list[str]:
        return sorted(self.index())

    def get(self, keys: list[str], frames: bool = False) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Timeline means ``[len(keys), L, H]`` (and per-item window embeddings when ``frames``).

        Raises ``KeyError`` naming the first missing key.
        """
        idx = self.index()
        missing = [k for k in keys if k not in idx]
        if missing:
            raise KeyError(f"{len(missing)} item(s) not in store {self.dir} (first: {missing[0]})")
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for pos, k in enumerate(keys):
            name, row = idx[k]
            by_shard.setdefault(name, []).append((pos, row))
        out: np.ndarray | None = None
        framelist: list[np.ndarray | None] = [None] * len(keys)
        for name, pairs in by_shard.items():
            with np.load(self.dir / name) as z:
                mean = z["mean"]
                if out is None:
                    out = np.empty((len(keys),) + mean.shape[1:], dtype=np.float32)
                for pos, row in pairs:
                    out[pos] = mean[row]
                if frames:
                    if "frames" not in z:
                        raise KeyError(f"{self.dir / name} holds no frame-level embeddings; re-extract with frames")
                    fr, off = z["frames"], z["offsets"]
                    for pos, row in pairs:
                        framelist[pos] = fr[off[row] : off[row + 1]]
        assert out is not None or not keys
        if out is None:
            out = np.zeros((0,), dtype=np.float32)
        return out, ([f for f in framelist] if frames else None)  # type: ignore[misc]

    def errors(self) -> list[dict[str, str]]:
        p = self.dir / "errors.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    # ----- writing -------------------------------------------------------------------------------
    def write_shard(self, shard: Shard) -> Path:
        """Write a complete shard atomically; returns its path."""
        arrays: dict[str, np.ndarray] = {
            "keys": np.asarray(shard.keys, dtype=np.str_),
            "mean": shard.mean.astype(np.float32, copy=False),
            "n_windows": np.asarray(shard.n_windows, dtype=np.int64),
        }
        if shard.frames is not None:
            arrays["frames"] = shard.frames.astype(np.float32, copy=False)
            arrays["offsets"] = np.asarray(shard.offsets, dtype=np.int64)
        path = self.dir / shard_name(shard.keys)
        _atomic_write_bytes(path, _npz_bytes(arrays))
        self._index = None
        return path

    def log_errors(self, errors: list[dict[str, str]]) -> None:
        """Append unreadable-file records (kept so a report can list them; retried on the next run)."""
        if not errors:
            return
        known = {(e.get("key"), e.get("error")) for e in self.errors()}
        new = [e for e in errors if (e.get("key"), e.get("error")) not in known]
        if new:
            with open(self.dir / "errors.jsonl", "a") as f:
                for e in new:
                    f.write(json.dumps(e, sort_keys=True) + "\n")
