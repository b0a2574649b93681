"""Small shared helpers with no heavy imports.

Takes file paths; gives their content hashes. Why one module: the weights checksum
(:func:`musicrep.models.base.file_checksum`), the pool's source/rendered-file hashes
(:func:`musicrep.data.pool.sha256_file`) and the store's audio identity must hash files the same
way, so they call one function instead of keeping three copies of the loop in step.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_file"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full hex SHA-256 of a file's bytes, streamed (bounded memory whatever the file size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
