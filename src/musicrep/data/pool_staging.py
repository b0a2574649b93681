"""Build a pool from a preset (:mod:`musicrep.data.pool_presets`): stage what is not one-file-per-row, then pool it.

A preset's parts are first *staged* as plain audio trees, one folder per source, and then converted by
:func:`musicrep.data.pool.build_pool` like any folder, so the manifest, checksums, licences, resume and
bad-file handling are the pool's own::

    WORK/staging/<source>/<package>/<folder>/reel-001.wav    clips of one folder joined (DebianPart with a source)
    WORK/staging/<source>/<package>/copyright                the package's licence (nearest one for its reels)
    WORK/staging/<source>/<text>/<voice>/00001.wav           a passage read by espeak-ng (SpeechPart)
    WORK/staging/<source>/<text>/LICENCE.txt                 text source, its licence, the synthesiser

and ``OUT/provenance.csv`` (``source, source_path, start, duration, origin, origin_sha256``) says which
original clip or passage lies where in each staged file, so every second of the pool traces back to a file
of a named Debian package or to the verses read. Why reels: speech prompts and sound effects last 0.1–5 s,
shorter than the 3 s crops the trainer takes; joining one folder's clips (same speaker, same game) gives
rows of about a minute, like short tracks. Identical clips (the same ambience in several tilesets) are
joined once.

Staging is redone on each run (seconds for clips; espeak-ng speaks ~150× faster than real time) and gives
the same bytes, so :func:`build_pool` skips everything already pooled: the build is resumable.
"""

from __future__ import annotations

import csv
import functools
import html
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from musicrep.audio import DEFAULT_SR, AudioError, find_audio, load
from musicrep.data.pool import (
    PoolError,
    PoolReport,
    PoolSource,
    build_pool,
    fetch_debian,
    find_licences,
    pool_from_debian,
    sha256_file,
)
from musicrep.data.pool_presets import (
    DebianPart,
    PoolPreset,
    SpeechPart,
    SpokenText,
    get_pool_preset,
)

__all__ = [
    "PROVENANCE",
    "PROVENANCE_COLUMNS",
    "Fetch",
    "Staged",
    "espeak_version",
    "espeak_voices",
    "pool_from_preset",
    "read_sword_text",
    "select_clips",
    "speak",
    "stage_reels",
    "stage_speech",
]

#: File name of the provenance table inside the pool folder (presets with staged parts only).
PROVENANCE = "provenance.csv"
#: Its columns: the manifest row (``source``, ``source_path``), where in it (seconds), and what it came from.
PROVENANCE_COLUMNS = ("source", "source_path", "start", "duration", "origin", "origin_sha256")
#: Silence between joined clips (s): keeps two clips from sounding like one event.
REEL_GAP_SECONDS = 0.2

#: ``fetch(package, workdir) -> PoolSource`` of its unpacked tree; raises PoolError when it cannot.
Fetch = Callable[[str, Path], PoolSource]


@dataclass
class Staged:
    """What staging one part gave: provenance rows, seconds staged, and ``(file, reason)`` failures."""

    rows: list[dict[str, str]]
    seconds: float
    failed: list[tuple[str, str]]


# --------------------------------------------------------------------------------------------- clips


def select_clips(root: str | os.PathLike[str], exclude: str | None = None) -> list[Path]:
    """Audio files under ``root`` (sorted) whose root-relative path does not match ``exclude``.

    ``exclude`` is searched case-insensitively in the POSIX path relative to ``root`` (folders and
    name), e.g. :data:`musicrep.data.pool_presets.MUSIC_PATH` drops ``music/``, ``Musics/``, ``jingle.ogg``.
    """
    base = Path(root)
    pattern = re.compile(exclude, re.IGNORECASE) if exclude else None
    return [f for f in find_audio(base) if base.is_dir()
            and not (pattern and pattern.search(f.relative_to(base).as_posix()))]


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """16-bit WAV written under a temporary name and renamed (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(tmp, np.clip(audio, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    os.replace(tmp, path)


def _copy_licences(package: PoolSource, dest: Path, folders: Sequence[Path]) -> None:
    """The package's main licence as ``dest/copyright`` (covers all its reels), and each licence file of a
    folder that holds (or is above) one of ``folders`` at its own place, so the nearest one still wins."""
    dest.mkdir(parents=True, exist_ok=True)
    if package.main_licence is not None and package.main_licence.is_file():
        shutil.copyfile(package.main_licence, dest / "copyright")
    for lic in find_licences(package.root):
        if lic != package.main_licence and any(f.is_relative_to(lic.parent) for f in folders):
            target = dest / lic.relative_to(package.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lic, target)


def stage_reels(
    package: PoolSource,
    dest: str | os.PathLike[str],
    *,
    exclude: str | None = None,
    reel_seconds: float = 60.0,
    sr: int = DEFAULT_SR,
    seen: set[str] | None = None,
) -> Staged:
    """Join the clips of each folder of ``package`` into reels of about ``reel_seconds`` under ``dest``.

    Args:
        package: an unpacked package (``name``, ``root``, ``main_licence``).
        dest: the staged package folder (``WORK/staging/<source>/<package>``).
        exclude: regular expression on root-relative paths never staged (see :func:`select_clips`).
        reel_seconds: target reel length (s); a folder of ``T`` seconds gives ``max(1, round(T / reel))``
            reels of near-equal length, each clip whole and in sorted order, :data:`REEL_GAP_SECONDS` apart.
        sr: rate of the staged WAV files (Hz).
        seen: sha256 of clips already staged (shared across packages): a clip whose bytes were seen is skipped.

    Returns:
        :class:`Staged` with one provenance row per clip (``source``/``source_path`` left for the caller)
        and every unreadable clip in ``failed``, named by path.
    """
    out = Path(dest)
    seen = set() if seen is None else seen
    staged = Staged([], 0.0, [])
    folders: dict[Path, list[Path]] = {}
    for f in select_clips(package.root, exclude):
        folders.setdefault(f.parent, []).append(f)
    _copy_licences(package, out, list(folders))
    gap = np.zeros(round(REEL_GAP_SECONDS * sr), dtype=np.float32)
    for folder, files in folders.items():
        clips: list[tuple[Path, str, np.ndarray]] = []
        for f in files:
            try:
                sha = sha256_file(f)
                if sha in seen:
                    continue
                clips.append((f, sha, load(f, sr)))
                seen.add(sha)
            except AudioError as exc:
                staged.failed.append((str(f), exc.problem))
            except OSError as exc:
                staged.failed.append((str(f), f"cannot read ({exc.strerror or exc})"))
        if not clips:
            continue
        lengths = np.array([len(a) + len(gap) for _, _, a in clips], dtype=float)
        n_reels = max(1, round(lengths.sum() / (reel_seconds * sr)))
        # A clip goes to the reel its start falls in: reels of near-equal length, clips kept whole.
        starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        which = np.minimum((starts / lengths.sum() * n_reels).astype(int), n_reels - 1)
        rel_folder = folder.relative_to(package.root)
        for r in range(n_reels):
            members = [c for c, w in zip(clips, which) if w == r]
            if not members:
                continue
            name = (rel_folder / f"reel-{r + 1:03d}.wav").as_posix()
            pos = 0
            parts: list[np.ndarray] = []
            for f, sha, audio in members:
                staged.rows.append({"source_path": f"{package.name}/{name}", "start": f"{pos / sr:.3f}",
                                    "duration": f"{len(audio) / sr:.3f}",
                                    "origin": f"{package.name}/{f.relative_to(package.root).as_posix()}",
                                    "origin_sha256": sha})
                parts += [audio, gap]
                pos += len(audio) + len(gap)
            reel = np.concatenate(parts[:-1])  # no trailing gap
            _write_wav(out / name, reel, sr)
            staged.seconds += len(reel) / sr
    return staged


# --------------------------------------------------------------------------------------------- speech


def read_sword_text(module: str | os.PathLike[str]) -> list[str]:
    """The verses of a SWORD zText Bible module (``ot.*`` then ``nt.*``) as plain text, empty ones dropped.

    zText layout (SWORD's format): ``*.bzs`` holds one ``(offset, size, uncompressed size)`` little-endian
    uint32 triple per zlib-compressed block of ``*.bzz``; ``*.bzv`` one ``(block uint32, offset uint32,
    size uint16)`` entry per verse into its decompressed block. OSIS markup is removed (notes with their
    content), entities are decoded and white space collapsed.

    Raises:
        PoolError: the folder holds no readable ``ot``/``nt`` module files (names the folder).
    """
    base = Path(module)
    verses: list[str] = []
    for testament in ("ot", "nt"):
        files = [base / f"{testament}.{ext}" for ext in ("bzs", "bzv", "bzz")]
        if not all(f.is_file() for f in files):
            continue
        bzs, bzv, bzz = (f.read_bytes() for f in files)
        blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs) - 11, 12)]
        cache: dict[int, bytes] = {}
        for i in range(0, len(bzv) - 9, 10):
            block, offset, size = struct.unpack_from("<IIH", bzv, i)
            if size == 0 or block >= len(blocks):
                continue
            if block not in cache:
                start, length, _ = blocks[block]
                cache = {block: zlib.decompress(bzz[start:start + length])}  # verses come block by block
            raw = cache[block][offset:offset + size].decode("utf-8", errors="replace")
            text = re.sub(r"<note\b.*?</note>", " ", raw, flags=re.DOTALL)
            text = " ".join(html.unescape(re.sub(r"<[^>]*>", " ", text)).split())
            text = re.sub(r" ([,.;:!?»”’)])", r"\1", text)  # tags left spaces around punctuation
            text = re.sub(r"([«“‘(]) ", r"\1", text)
            if text:
                verses.append(text)
    if not verses:
        raise PoolError(f"{base}: no SWORD zText module here (expected ot.bzs/ot.bzv/ot.bzz or nt.*)")
    return verses


def _passages(verses: Sequence[str], words: int) -> list[tuple[int, int, str]]:
    """Consecutive verses grouped into passages of at least ``words`` words: ``(first, last, text)``.

    A verse longer than ``words`` (a module's preface, a book introduction) is cut at sentence ends,
    and a sentence still longer at ``words`` words, so no passage runs much past ``words``.
    """
    units: list[tuple[int, str]] = []
    for i, verse in enumerate(verses):
        if len(verse.split()) <= words:
            units.append((i, verse))
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", verse):
            tokens = sentence.split()
            units += [(i, " ".join(tokens[k:k + words])) for k in range(0, len(tokens), words)]
    out: list[tuple[int, int, str]] = []
    first, buf, n = 0, [], 0
    for i, unit in units:
        if not buf:
            first = i
        buf.append(unit)
        n += len(unit.split())
        if n >= words:
            out.append((first, i, " ".join(buf)))
            buf, n = [], 0
    if buf:
        out.append((first, units[-1][0], " ".join(buf)))
    return out


def espeak_version() -> str:
    """``espeak-ng --version`` first line; raises :class:`PoolError` when espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise PoolError("`espeak-ng` not found: the synthetic-speech part needs it (apt-get install espeak-ng)")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (r.stdout.strip().splitlines() or ["espeak-ng"])[0]
    return first.split("  Data at")[0].strip()  # "eSpeak NG text-to-speech: 1.51", without the data path


@functools.lru_cache(maxsize=1)
def espeak_voices() -> frozenset[str]:
    """Names ``espeak-ng -v`` accepts, lower-case: languages, voice files and their base names, ``+variants``.

    Why: espeak-ng falls back to its default voice, silently and with exit status 0, for an unknown name.
    """
    names: set[str] = set()
    for arg, prefix in (("--voices", ""), ("--voices=variant", "+")):
        r = subprocess.run(["espeak-ng", arg], capture_output=True, text=True, check=False)
        for line in r.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                if not prefix:
                    names.add(cols[1].lower())
                names.update(prefix + n.lower() for n in (cols[4], cols[4].rsplit("/", 1)[-1]))
    return frozenset(names)


def speak(text: str, voice: str, dst: str | os.PathLike[str], *, speed: int = 160) -> float:
    """Render ``text`` with ``espeak-ng -v voice -s speed`` to the WAV file ``dst``; return its seconds.

    espeak-ng writes 22.05 kHz mono 16-bit WAV; the pool resamples it to 16 kHz like any source.
    Raises :class:`PoolError` naming the voice when espeak-ng fails or writes no audio.
    """
    espeak_version()
    base, *variant = voice.lower().split("+", 1)
    known = espeak_voices()
    if base not in known or (variant and "+" + variant[0] not in known):
        raise PoolError(f"espeak-ng has no voice {voice!r} (list voices with `espeak-ng --voices` and "
                        "variants with `espeak-ng --voices=variant`)")
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tmp), "--stdin"],
                       input=text, capture_output=True, text=True, check=False)
    if r.returncode != 0 or not tmp.is_file() or sf.info(tmp).frames == 0:
        tmp.unlink(missing_ok=True)
        msg = (r.stderr.strip().splitlines() or ["no audio written"])[-1]
        raise PoolError(f"espeak-ng -v {voice} failed: {msg} (list voices with `espeak-ng --voices`)")
    os.replace(tmp, out)
    i = sf.info(out)
    return i.frames / i.samplerate


def stage_speech(
    part: SpeechPart,
    texts: dict[str, tuple[list[str], Path | None]],
    dest: str | os.PathLike[str],
    minutes: float,
    *,
    progress: bool = False,
) -> Staged:
    """Read passages of ``part.texts`` aloud into ``dest`` until ``minutes`` are staged (or text runs out).

    Args:
        part: the speech part (texts, voices, passage length, speed).
        texts: text name → (its verses, its package's copyright file or ``None``).
        dest: ``WORK/staging/<source>``; passage ``j`` of text ``t`` is ``<t>/<voice>/<j>.wav``, its voice
            ``t.voices[j mod len]``, texts taken in turn so each gets about the same minutes.
        minutes: how much to render.
        progress: show a tqdm bar in minutes rendered.

    Returns:
        :class:`Staged` with one provenance row per passage (origin: text, verse range, voice).
    """
    out = Path(dest)
    version = espeak_version()
    staged = Staged([], 0.0, [])
    order: list[tuple[SpokenText, list[tuple[int, int, str]]]] = []
    for spoken in part.texts:
        verses, copyright_file = texts[spoken.name]
        folder = out / spoken.name
        folder.mkdir(parents=True, exist_ok=True)
        notice = (f"Text: {spoken.title}, from the Debian package {spoken.package}.\n"
                  f"Text licence: {spoken.licence}.\n"
                  f"Spoken by {version} (GPL-3+) with the voices {', '.join(spoken.voices)}, "
                  f"{part.speed} words/min; the synthesiser's licence does not cover its output.\n")
        if copyright_file is not None and copyright_file.is_file():
            notice += "\n--- Debian copyright file of " + spoken.package + " ---\n" + copyright_file.read_text(
                encoding="utf-8", errors="replace")
        (folder / "LICENCE.txt").write_text(notice, encoding="utf-8")
        order.append((spoken, _passages(verses, part.passage_words)))
    k = 0
    longest = max((len(p) for _, p in order), default=0)
    bar = tqdm(total=round(minutes, 1), desc=f"speak {part.source}", unit="min", disable=not progress)
    while staged.seconds < minutes * 60 and k < longest * len(order):
        spoken, passages = order[k % len(order)]
        j = k // len(order)
        k += 1
        if j >= len(passages):
            continue
        voice = spoken.voices[j % len(spoken.voices)]
        first, last, text = passages[j]
        name = f"{spoken.name}/{voice}/{j + 1:05d}.wav"
        try:
            seconds = speak(text, voice, out / name, speed=part.speed)
        except PoolError as exc:
            staged.failed.append((f"espeak-ng:{name}", str(exc)))
            continue
        staged.seconds += seconds
        bar.update(round(min(seconds / 60, bar.total - bar.n), 3))
        staged.rows.append({"source_path": name, "start": "0.000", "duration": f"{seconds:.3f}",
                            "origin": f"{spoken.name} verses {first + 1}-{last + 1}, voice {voice}",
                            "origin_sha256": ""})
    bar.close()
    return staged


# --------------------------------------------------------------------------------------------- builder


def _debian_fetch(package: str, work: Path) -> PoolSource:
    sources, failures = fetch_debian([package], work, only_dirs={})
    if not sources:
        raise PoolError(failures[0][1] if failures else f"{package}: nothing unpacked")
    return sources[0]


def pool_from_preset(
    preset: str | PoolPreset,
    out: str | os.PathLike[str],
    *,
    download_dir: str | os.PathLike[str] | None = None,
    fetch: Fetch | None = None,
    sr: int = DEFAULT_SR,
    jobs: int = 1,
    progress: bool = True,
    on_failure: Callable[[str, str], None] | None = None,
) -> PoolReport:
    """Build the pool of a preset (a name in :data:`~musicrep.data.pool_presets.POOL_PRESETS`, or one).

    A preset of one :class:`DebianPart` without a source name is :func:`pool_from_debian` (the music
    pool, one row per track). Otherwise each part is staged (see the module docstring), in order, the
    :class:`SpeechPart` rendering what is left of ``target_minutes``, and the staged trees are pooled with
    :func:`build_pool`, one ``source`` per part; ``OUT/provenance.csv`` is written first.

    Args:
        preset: preset name or object.
        out: pool folder (created or extended; resumable).
        download_dir: keeps ``.deb`` files, unpacked trees and staging for a later run (default: temp).
        fetch: ``(package, workdir) -> PoolSource`` (default: ``apt-get download`` + ``dpkg -x``); tests
            pass local folders here.
        sr, jobs, progress, on_failure: as for :func:`build_pool`.

    Raises:
        PoolError: unknown preset, no apt-get, or nothing could be staged at all.
    """
    spec = get_pool_preset(preset) if isinstance(preset, str) else preset
    kw = {"sr": sr, "jobs": jobs, "progress": progress, "on_failure": on_failure}
    plain = [p for p in spec.parts if isinstance(p, DebianPart) and p.source is None]
    if plain and len(spec.parts) == 1 and fetch is None:
        return pool_from_debian(plain[0].packages, out, download_dir=download_dir,  # type: ignore[arg-type]
                                only_dirs=plain[0].only_dirs, **kw)
    fetch = fetch or _debian_fetch
    failed: list[tuple[str, str]] = []

    def fail(file: str, why: str) -> None:
        failed.append((file, why))
        if on_failure is not None:
            on_failure(file, why)

    with tempfile.TemporaryDirectory(prefix="musicrep-preset-") as tmp:
        work = Path(download_dir) if download_dir is not None else Path(tmp)
        staging = work / "staging"
        rows: list[dict[str, str]] = []
        sources: list[PoolSource] = []
        seconds = 0.0
        for part in spec.parts:
            if isinstance(part, DebianPart) and part.source is None:
                raise PoolError(f"preset {spec.name!r}: a part without a source name must be the only part")
            dest = staging / part.source  # type: ignore[union-attr]
            if dest.exists():  # restaged from scratch: a file left from another preset version must not stay
                shutil.rmtree(dest)
            if isinstance(part, DebianPart):
                seen: set[str] = set()
                for pkg in tqdm(part.packages, desc=f"stage {part.source}", unit="pkg", disable=not progress):
                    try:
                        package = fetch(pkg, work)
                    except PoolError as exc:
                        fail(f"debian:{pkg}", str(exc))
                        continue
                    if pkg in part.only_dirs:
                        package = PoolSource(package.name, package.root / part.only_dirs[pkg], package.main_licence)
                    got = stage_reels(package, dest / pkg, exclude=part.exclude,
                                      reel_seconds=part.reel_seconds or 60.0, sr=sr, seen=seen)
                    for file, why in got.failed:
                        fail(file, why)
                    rows += [{"source": part.source, **r} for r in got.rows]
                    seconds += got.seconds
                    if download_dir is None and fetch is _debian_fetch:  # bound the disk: one package at a time
                        shutil.rmtree(work / "unpacked" / pkg, ignore_errors=True)
            else:
                texts: dict[str, tuple[list[str], Path | None]] = {}
                for spoken in part.texts:
                    try:
                        package = fetch(spoken.package, work)
                        texts[spoken.name] = (read_sword_text(package.root / spoken.module), package.main_licence)
                    except PoolError as exc:
                        fail(f"debian:{spoken.package}", str(exc))
                spoken_part = SpeechPart(part.source, tuple(t for t in part.texts if t.name in texts),
                                         part.passage_words, part.speed, part.minutes)
                minutes = part.minutes if part.minutes is not None else (spec.target_minutes or 0.0) - seconds / 60
                if spoken_part.texts and minutes > 0:
                    got = stage_speech(spoken_part, texts, dest, minutes, progress=progress)
                    for file, why in got.failed:
                        fail(file, why)
                    rows += [{"source": part.source, **r} for r in got.rows]
                    seconds += got.seconds
            if dest.is_dir() and find_audio(dest):
                sources.append(PoolSource(part.source, dest))  # type: ignore[arg-type]
        if not sources:
            raise PoolError(f"preset {spec.name!r}: nothing could be staged ("
                            + "; ".join(f"{f}: {w}" for f, w in failed[:3]) + ")")
        Path(out).mkdir(parents=True, exist_ok=True)
        _write_provenance(Path(out), rows)
        report = build_pool(sources, out, **kw)  # type: ignore[arg-type]
    # Staging failures first (they are about original files), then the pool's own.
    report.failed[:0] = failed
    return report


def _write_provenance(out: Path, rows: list[dict[str, str]]) -> None:
    """``OUT/provenance.csv``, atomically (temp + rename), sorted for a stable file."""
    path = out / PROVENANCE
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(PROVENANCE_COLUMNS))
        w.writeheader()
        for row in sorted(rows, key=lambda r: (r["source"], r["source_path"], float(r["start"]))):
            w.writerow(row)
    os.replace(tmp, path)
