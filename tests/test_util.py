"""The shared file hash: equals hashlib over the whole bytes (also across read-chunk boundaries), and the
weights checksum and the pool's file hash are that same function."""

from __future__ import annotations

import hashlib

from musicrep.data import pool
from musicrep.models import base
from musicrep.util import sha256_file


def test_sha256_file_matches_hashlib_and_is_shared(tmp_path) -> None:
    data = bytes(range(256)) * 9000 + b"tail"  # > 2 MiB: several read chunks
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_file(f) == want and sha256_file(str(f)) == want
    assert base.file_checksum(f) == want
    assert pool.sha256_file is sha256_file
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_default_file_mode_is_what_open_would_give(tmp_path) -> None:
    import os
    import tempfile

    from musicrep.util import default_file_mode

    fd, tmp = tempfile.mkstemp(dir=tmp_path)  # 0600, as the atomic writers get it
    os.close(fd)
    default_file_mode(tmp)
    plain = tmp_path / "plain"
    plain.write_text("x")  # what open() gives under the current umask
    assert os.stat(tmp).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
