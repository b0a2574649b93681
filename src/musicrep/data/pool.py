"""The unlabelled pool: any folder of music (or Debian's music packages) → 16 kHz mono FLAC + a manifest.

Takes audio files (a local folder, or Debian packages fetched with ``apt-get download`` and unpacked
with ``dpkg -x``, no system install) and gives a pool folder::

    OUT/
      manifest.csv              id, path, duration, sha256, source, licence, source_path, source_sha256
      audio/<source>/<…>.flac   16 kHz mono 16-bit FLAC, one per readable input file
      licences/<source>/<…>     every copyright / licence / COPYING file found beside the audio

Why FLAC at 16 kHz mono: every musicrep encoder reads 16 kHz mono, so decoding and resampling once here
(instead of at every pretraining epoch) is the cheapest place to pay for it, and FLAC keeps it lossless
at about a third of the size of WAV.

Why two checksums: ``sha256`` is the checksum of the FLAC in the pool (what a consumer verifies and what
the embedding store keys on), ``source_sha256`` the checksum of the original file, so a second run can
tell *without decoding* that a source file was already converted and skip it (resumable), and redo it
when the source changed or the FLAC was damaged.

Why the licence column: the pool is built from other people's music under GPL/CC terms; each row names
the licence file that covers it (nearest licence file in the same or a parent folder, else the source's
main one, e.g. Debian's ``usr/share/doc/<package>/copyright``) so attribution travels with the audio.

Budgets: :func:`load_pool` returns the manifest as the DataFrame that
:func:`musicrep.data.subset.subset` takes, so nested, reproducible minute budgets of whole tracks
(``subset(load_pool(out), minutes=5)``) come from the same code as labelled-task budgets.

Bad input never stops a build: an unreadable file is reported by name in :attr:`PoolReport.failed` and
skipped; the rest is converted.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from musicrep.audio import DEFAULT_SR, AudioError, find_audio, stream
from musicrep.data.pool_presets import DEBIAN_MUSIC_DIRS, DEFAULT_DEBIAN_PACKAGES  # re-exported; home: the registry
from musicrep.util import sha256_file  # re-exported: the pool's file hash is the shared one

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEBIAN_MUSIC_DIRS",
    "DEFAULT_DEBIAN_PACKAGES",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "PoolError",
    "PoolReport",
    "PoolSource",
    "build_pool",
    "extract_audio",
    "fetch_debian",
    "find_licences",
    "load_pool",
    "pool_from_debian",
    "pool_from_folder",
    "read_manifest",
    "sha256_file",
]

#: File name of the pool manifest inside the pool folder.
MANIFEST = "manifest.csv"
#: Columns of :data:`MANIFEST`, in order. ``path`` and ``licence`` are relative to the pool folder.
MANIFEST_COLUMNS = ("id", "path", "duration", "sha256", "source", "licence", "source_path", "source_sha256")
#: A file whose name matches this (case-insensitive) is a licence / copyright notice and is copied.
_LICENCE_NAME = re.compile(r"(copying|copyright|licen[cs]e|credits|authors)", re.IGNORECASE)
#: Zip-format archives that game packages hide their audio in (Quake-style .pk3, Warzone 2100's .wz);
#: unpacked by :func:`fetch_debian`.
_ARCHIVES = (".pk3", ".zip", ".wz")
#: Seconds between manifest checkpoints during a long build (an interrupted build keeps its progress).
_CHECKPOINT_SECONDS = 10.0


class PoolError(Exception):
    """The pool cannot be built at all (no sources, no apt-get, unusable output folder)."""


@dataclass(frozen=True)
class PoolSource:
    """A tree of audio files with one name (the ``source`` column) and its licence files."""

    name: str
    root: Path
    #: The licence that covers files with no licence file in their own or a parent folder.
    main_licence: Path | None = None


@dataclass
class PoolReport:
    """What a build did. ``failed`` holds ``(file, reason)`` for every skipped bad input."""

    out: Path
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: ``(file, id it duplicates)``: same bytes as an item already pooled (symlinked or copied tracks).
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds_added: float = 0.0
    seconds_total: float = 0.0
    elapsed: float = 0.0

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST


# --------------------------------------------------------------------------------------------- helpers


def find_licences(root: str | os.PathLike[str]) -> list[Path]:
    """Licence / copyright / COPYING / credits files under ``root`` (sorted; audio files excluded)."""
    from musicrep.audio import AUDIO_EXTENSIONS

    base = Path(root)
    return sorted(
        p for p in base.rglob("*")
        if p.is_file() and _LICENCE_NAME.search(p.name) and p.suffix.lower() not in AUDIO_EXTENSIONS
    )


def read_manifest(out: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of ``OUT/manifest.csv`` as dicts (empty list when the pool does not exist yet).

    Raises :class:`PoolError` naming the file when the header lacks a required column.
    """
    path = Path(out) / MANIFEST
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PoolError(f"{path}: not a pool manifest (missing column(s) {', '.join(missing)}); "
                            "delete it or choose another --out")
        return list(reader)


def load_pool(out: str | os.PathLike[str], *, check: bool = False) -> pd.DataFrame:
    """The pool manifest as a DataFrame: ``path`` made absolute, ``duration`` in seconds (float).

    This is the shape :func:`musicrep.data.subset.subset` budgets take, so a nested 5/10/…-minute
    pretraining set is ``subset(load_pool(out), minutes=5, seed=0)`` (whole tracks, reproducible).
    ``check=True`` also verifies every FLAC's sha256 against the manifest and raises :class:`PoolError`
    naming the first damaged or missing file (run the pool command again to repair it).
    """
    import pandas as pd

    rows = read_manifest(out)
    if not rows:
        raise PoolError(f"{Path(out) / MANIFEST}: no pool here; build one with `musicrep data pool --out {out} …`")
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    base = Path(out).resolve()
    df["path"] = [str(base / p) for p in df["path"]]
    df["duration"] = df["duration"].astype(float)
    if check:
        for path, sha in zip(df["path"], df["sha256"]):
            if not Path(path).is_file() or sha256_file(path) != sha:
                raise PoolError(f"{path}: missing or not matching its manifest checksum; "
                                f"rerun `musicrep data pool --out {out} …` to rebuild it")
    return df


def _write_manifest(out: Path, rows: Iterable[dict[str, str]]) -> None:
    """Write the manifest atomically (temp file + rename) so a crash never leaves half a CSV."""
    path = out / MANIFEST
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for row in sorted(rows, key=lambda r: r["id"]):
            w.writerow(row)
    os.replace(tmp, path)


def _safe_name(name: str) -> str:
    """A source name usable as one folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._")
    return cleaned or "source"


def _licence_for(audio: Path, source: PoolSource, licences: list[Path]) -> Path | None:
    """The licence file in the deepest folder that contains ``audio``; else the source's main one."""
    best: Path | None = None
    best_depth = -1
    for lic in licences:
        folder = lic.parent
        if audio.is_relative_to(folder) and len(folder.parts) > best_depth:
            best, best_depth = lic, len(folder.parts)
    return best if best is not None else (source.main_licence or (licences[0] if licences else None))


def _convert(src: str, dst: str, sr: int) -> tuple[float, str] | str:
    """Decode ``src`` to ``sr`` Hz mono 16-bit FLAC at ``dst``; return ``(seconds, sha256)`` or an error.

    Runs in worker processes, so it returns the error text instead of raising. Writes to a temporary
    name and renames, so a crash never leaves a truncated FLAC that a later run would trust.
    """
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    n = 0
    try:
        with sf.SoundFile(tmp, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as w:
            for block in stream(src, sr, block_seconds=30.0):
                # soxr can overshoot full scale slightly; clip rather than let the int conversion wrap.
                w.write(np.clip(block, -1.0, 1.0))
                n += block.shape[0]
    except AudioError as exc:
        tmp.unlink(missing_ok=True)
        return exc.problem
    except Exception as exc:  # noqa: BLE001 — any decoder/encoder failure is one bad file, not a crash
        tmp.unlink(missing_ok=True)
        return f"{type(exc).__name__}: {exc}"
    os.replace(tmp, out)
    return n / sr, sha256_file(out)


# --------------------------------------------------------------------------------------------- builder


def build_pool(
    sources: Sequence[PoolSource],
    out: str | os.PathLike[str],
    *,
    sr: int = DEFAULT_SR,
    jobs: int = 1,
    progress: bool = True,
    on_failure: Callable[[str, str], None] | None = None,
) -> PoolReport:
    """Convert every audio file of ``sources`` into the pool at ``out`` (created if needed).

    Args:
        sources: trees of audio; each file becomes ``audio/<source>/<relative path>.flac``.
        out: pool folder; an existing pool is extended, never rebuilt: a file whose source checksum is
            already in the manifest (and whose FLAC is intact) is skipped.
        sr: output rate (Hz); 16 kHz is what every encoder expects.
        jobs: worker processes for decoding (1 = in-process; the machine's cores are shared).
        progress: show a tqdm progress bar (minutes of audio in the postfix).
        on_failure: called with ``(file, reason)`` as each bad file is met (e.g. to print it at once).

    Returns:
        :class:`PoolReport` listing added, skipped and failed files and the minutes of audio.
    """
    from tqdm.auto import tqdm

    if not sources:
        raise PoolError("no sources given: pass --from FOLDER or --debian PKG…")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = PoolReport(out=out_dir)
    rows = {r["id"]: r for r in read_manifest(out_dir)}
    by_source = {(r["source"], r["source_path"]): r for r in rows.values()}

    # Plan: one (source, file, id, licence) per audio file; ids stay unique across and within sources.
    plan: list[tuple[PoolSource, Path, str, str]] = []
    seen_files: dict[Path, str] = {}  # the same file reached twice (symlinked folders) is planned once
    linked: list[tuple[str, str, Path, str]] = []  # (source, relative path, file, id of the planned copy)
    taken = {(r["source"], r["source_path"]): r["id"] for r in rows.values()}
    used_ids = set(rows)
    own = out_dir.resolve()
    for source in sources:
        name = _safe_name(source.name)
        licences = find_licences(source.root)
        if source.main_licence is not None and source.main_licence not in licences:
            licences.append(source.main_licence)
        copied: dict[Path, str] = {}
        for lic in licences:
            rel = lic.relative_to(source.root) if lic.is_relative_to(source.root) else Path(lic.name)
            dest = out_dir / "licences" / name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lic, dest)
            copied[lic] = dest.relative_to(out_dir).as_posix()
        for f in find_audio(source.root):
            real = f.resolve()
            if real.is_relative_to(own):  # --out inside --from: never pool the pool's own FLACs
                continue
            rel = f.relative_to(source.root).as_posix()
            if real in seen_files:
                linked.append((name, rel, f, seen_files[real]))
                continue
            key = (name, rel)
            if key in taken:
                item_id = taken[key]
            else:
                item_id = f"{name}/{Path(rel).with_suffix('').as_posix()}"
                if item_id in used_ids:  # a.ogg next to a.wav: keep both, the extension disambiguates
                    item_id = f"{name}/{rel}"
                used_ids.add(item_id)
            seen_files[real] = item_id
            lic = _licence_for(f, source, licences)
            plan.append((source, f, item_id, copied.get(lic, "") if lic is not None else ""))

    bar = tqdm(total=len(plan), desc="pool", unit="file", disable=not progress)
    pending: list[tuple[Path, str, str, str, str, Path]] = []
    # Owners of source checksums: rows from sources outside this run keep theirs; within the run the
    # first file in sorted order wins, so the result does not depend on what an earlier run did.
    for name, rel, f, twin in linked:
        report.duplicates.append((str(f), twin))
        stale = by_source.get((name, rel))  # pooled by an older run that followed the link
        if stale is not None and rows.pop(stale["id"], None) is not None:
            (out_dir / stale["path"]).unlink(missing_ok=True)
    planned = {(_safe_name(src.name), f.relative_to(src.root).as_posix()) for src, f, _, _ in plan}
    sha_owner: dict[str, str] = {r["source_sha256"]: r["id"] for r in rows.values()
                                 if (r["source"], r["source_path"]) not in planned}
    for source, f, item_id, licence in plan:
        name = _safe_name(source.name)
        rel = f.relative_to(source.root).as_posix()
        try:
            src_sha = sha256_file(f)
        except OSError as exc:
            _fail(report, on_failure, str(f), f"cannot read ({exc.strerror or exc})")
            bar.update(1)
            continue
        dst = out_dir / "audio" / f"{item_id}.flac"
        old = by_source.get((name, rel))
        # Identical bytes under another name (Drascula ships each track once per language folder)
        # would bias pretraining towards duplicated tracks: pool them once.
        twin = sha_owner.get(src_sha)
        if twin is not None and twin != item_id:
            report.duplicates.append((str(f), twin))
            if rows.pop(item_id, None) is not None:  # pooled by an older run: drop the twin's FLAC too
                dst.unlink(missing_ok=True)
            bar.update(1)
            continue
        sha_owner[src_sha] = item_id
        if (old is not None and old["source_sha256"] == src_sha and dst.exists()
                and sha256_file(dst) == old["sha256"]):
            old["licence"] = licence or old["licence"]
            report.skipped.append(item_id)
            bar.update(1)
            continue
        pending.append((f, item_id, name, rel, src_sha, dst))
    # Decoding is the expensive part; it runs in-process or over `jobs` workers, in a fixed order.
    last_checkpoint = time.monotonic()
    licence_of = {item_id: lic for _, _, item_id, lic in plan}
    try:
        results = _run(pending, sr, jobs)
        for (f, item_id, name, rel, src_sha, dst), result in zip(pending, results):
            if isinstance(result, str):
                _fail(report, on_failure, str(f), result)
            else:
                seconds, sha = result
                rows[item_id] = {
                    "id": item_id,
                    "path": dst.relative_to(out_dir).as_posix(),
                    "duration": f"{seconds:.3f}",
                    "sha256": sha,
                    "source": name,
                    "licence": licence_of[item_id],
                    "source_path": rel,
                    "source_sha256": src_sha,
                }
                report.added.append(item_id)
                report.seconds_added += seconds
                bar.set_postfix_str(f"{report.seconds_added / 60:.1f} min new")
            bar.update(1)
            if time.monotonic() - last_checkpoint > _CHECKPOINT_SECONDS:
                _write_manifest(out_dir, rows.values())
                last_checkpoint = time.monotonic()
    finally:
        bar.close()
        _write_manifest(out_dir, rows.values())
    report.seconds_total = sum(float(r["duration"]) for r in rows.values())
    report.elapsed = time.perf_counter() - t0
    return report


def _fail(report: PoolReport, hook: Callable[[str, str], None] | None, file: str, reason: str) -> None:
    report.failed.append((file, reason))
    if hook is not None:
        hook(file, reason)


def _run(pending: list[tuple[Path, str, str, str, str, Path]], sr: int, jobs: int) -> Iterable[tuple[float, str] | str]:
    """Yield :func:`_convert` results in ``pending`` order, in-process or over a process pool."""
    args = [(str(f), str(dst), sr) for f, _, _, _, _, dst in pending]
    if jobs <= 1 or len(args) <= 1:
        for a in args:
            yield _convert(*a)
        return
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        yield from ex.map(_convert, *zip(*args))


# --------------------------------------------------------------------------------------------- sources


def pool_from_folder(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    source: str | None = None,
    **kwargs: object,
) -> PoolReport:
    """Pool every audio file under ``folder`` (source name: the folder's name unless ``source`` is given)."""
    root = Path(folder)
    if not root.is_dir():
        raise PoolError(f"{root}: not a folder; --from expects a folder of audio files")
    name = source or root.resolve().name
    return build_pool([PoolSource(name, root)], out, **kwargs)  # type: ignore[arg-type]


def fetch_debian(
    packages: Sequence[str],
    workdir: str | os.PathLike[str],
    only_dirs: Mapping[str, str] | None = None,
) -> tuple[list[PoolSource], list[tuple[str, str]]]:
    """Download ``packages`` with ``apt-get download`` into ``workdir`` and unpack each with ``dpkg -x``.

    Nothing is installed on the system and no root is needed beyond what ``apt-get download`` needs
    (it only reads the package lists; run ``apt-get update`` once if it says a package is unknown).
    A ``.deb`` already in ``workdir/debs`` is reused instead of downloaded again. ``only_dirs`` maps a
    package to the sub-folder that holds the wanted audio (default :data:`DEBIAN_MUSIC_DIRS`).

    Returns:
        ``(sources, failures)``: one :class:`PoolSource` per unpacked package (its main licence is
        ``usr/share/doc/<package>/copyright``), and ``(package, reason)`` for each that failed.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise PoolError(f"`{tool}` not found: --debian needs a Debian/Ubuntu system; use --from FOLDER instead")
    work = Path(workdir)
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    sources: list[PoolSource] = []
    failures: list[tuple[str, str]] = []
    for pkg in packages:
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
            if r.returncode != 0 or not found:
                msg = (r.stderr.strip().splitlines() or ["no .deb was written"])[-1]
                failures.append((pkg, f"apt-get download failed: {msg} "
                                      "(check the name with `apt-cache show`; run `apt-get update` once)"))
                continue
        root = work / "unpacked" / pkg
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        r = subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], capture_output=True, text=True)
        if r.returncode != 0:
            failures.append((pkg, f"dpkg -x {found[-1].name} failed: {r.stderr.strip()}"))
            continue
        for archive in sorted(p for p in root.rglob("*") if p.suffix.lower() in _ARCHIVES and p.is_file()):
            extract_audio(archive, archive.with_name(archive.name + ".d"))
        copyright_file = root / "usr" / "share" / "doc" / pkg / "copyright"
        dirs = DEBIAN_MUSIC_DIRS if only_dirs is None else only_dirs
        music_root = root / dirs[pkg] if pkg in dirs else root
        sources.append(PoolSource(pkg, music_root, copyright_file if copyright_file.exists() else None))
    return sources, failures


def extract_audio(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Extract the audio and licence files of a zip-format archive (``.zip``, Quake-style ``.pk3``).

    Why: several game-music packages (ufoai-music, nexuiz-music) ship their tracks inside one ``.pk3``.
    Members with absolute paths or ``..`` are ignored (a hostile archive cannot write outside ``dest``).
    Returns the extracted files; an unreadable archive yields an empty list.
    """
    import zipfile

    from musicrep.audio import AUDIO_EXTENSIONS

    out = Path(dest)
    written: list[Path] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile):
        return written
    with zf:
        for member in zf.infolist():
            rel = Path(member.filename)
            if member.is_dir() or rel.is_absolute() or ".." in rel.parts:
                continue
            if rel.suffix.lower() not in AUDIO_EXTENSIONS and not _LICENCE_NAME.search(rel.name):
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written.append(target)
    return written


def pool_from_debian(
    packages: Sequence[str] = DEFAULT_DEBIAN_PACKAGES,
    out: str | os.PathLike[str] = "pool",
    *,
    download_dir: str | os.PathLike[str] | None = None,
    only_dirs: Mapping[str, str] | None = None,
    **kwargs: object,
) -> PoolReport:
    """Fetch Debian music packages (:func:`fetch_debian`, ``only_dirs`` passed on) and pool their audio.

    ``download_dir`` keeps the ``.deb`` files and unpacked trees for a later run; by default they live
    in a temporary folder removed afterwards. Packages that cannot be fetched are reported in
    ``PoolReport.failed`` (as ``debian:<package>``) and the others are still pooled.
    """
    with tempfile.TemporaryDirectory(prefix="musicrep-debs-") as tmp:
        work = Path(download_dir) if download_dir is not None else Path(tmp)
        sources, failures = fetch_debian(packages, work, only_dirs)
        hook = kwargs.get("on_failure")
        if not sources:
            reasons = "; ".join(f"{p}: {why}" for p, why in failures)
            raise PoolError(f"no Debian package could be fetched ({reasons})")
        report = build_pool(sources, out, **kwargs)  # type: ignore[arg-type]
        for pkg, why in failures:
            report.failed.append((f"debian:{pkg}", why))
            if callable(hook):
                hook(f"debian:{pkg}", why)
        return report
