"""The unlabelled pool: conversion to 16 kHz mono FLAC, manifest checksums, licences, bad files, resume."""

from __future__ import annotations

import csv
import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrep.data import pool as P


def _tone(freq: float, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    """A fake music folder: stereo 44.1 kHz WAV, mono 22.05 kHz OGG in a sub-folder, a corrupt MP3, licences."""
    root = tmp_path / "game-music"
    (root / "album").mkdir(parents=True)
    sf.write(root / "intro.wav", _tone(440, 0.6, 44_100, channels=2), 44_100)
    sf.write(root / "album" / "track1.ogg", _tone(220, 0.4, 22_050), 22_050)
    (root / "album" / "broken.mp3").write_bytes(b"\xff\xfb" + b"not audio at all" * 50)
    (root / "COPYING").write_text("GPL-2+\n")
    (root / "album" / "LICENSE.txt").write_text("CC-BY-SA 3.0\n")
    (root / "notes.txt").write_text("not a licence, not audio\n")
    return root


def _manifest(out: Path) -> dict[str, dict[str, str]]:
    with open(out / P.MANIFEST, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_pool_converts_reports_bad_file_and_writes_true_checksums(music: Path, tmp_path: Path) -> None:
    out = tmp_path / "pool"
    seen: list[str] = []
    report = P.pool_from_folder(music, out, progress=False, on_failure=lambda f, why: seen.append(f))

    # The corrupt file is reported by name and skipped; the two good ones are pooled.
    assert [Path(f).name for f, _ in report.failed] == ["broken.mp3"]
    assert [Path(f).name for f in seen] == ["broken.mp3"]
    assert sorted(report.added) == ["game-music/album/track1", "game-music/intro"]

    rows = _manifest(out)
    assert list(next(iter(rows.values())).keys()) == list(P.MANIFEST_COLUMNS)
    assert set(rows) == {"game-music/album/track1", "game-music/intro"}
    for row in rows.values():
        flac = out / row["path"]
        i = sf.info(flac)
        assert (i.format, i.samplerate, i.channels) == ("FLAC", 16_000, 1)
        # Checksums are those of the bytes on disk (pool FLAC and original source file).
        assert row["sha256"] == hashlib.sha256(flac.read_bytes()).hexdigest()
        src = music / row["source_path"]
        assert row["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert float(row["duration"]) == pytest.approx(i.frames / 16_000, abs=1e-3)
        assert row["source"] == "game-music"
    assert float(rows["game-music/intro"]["duration"]) == pytest.approx(0.6, abs=2e-3)
    assert float(rows["game-music/album/track1"]["duration"]) == pytest.approx(0.4, abs=2e-3)
    assert report.seconds_total == pytest.approx(1.0, abs=4e-3)

    # The nearest licence file covers each item, and licence files are copied into the pool.
    assert rows["game-music/intro"]["licence"] == "licences/game-music/COPYING"
    assert rows["game-music/album/track1"]["licence"] == "licences/game-music/album/LICENSE.txt"
    assert (out / "licences/game-music/album/LICENSE.txt").read_text() == "CC-BY-SA 3.0\n"
    assert not (out / "licences/game-music/notes.txt").exists()


def test_pool_audio_is_the_source_resampled(music: Path, tmp_path: Path) -> None:
    """The FLAC holds the source's mono mix at 16 kHz (compared with an independent librosa decode)."""
    import librosa

    out = tmp_path / "pool"
    P.pool_from_folder(music, out, progress=False)
    got, sr = sf.read(out / "audio/game-music/intro.flac", dtype="float32")
    ref, _ = librosa.load(music / "intro.wav", sr=16_000, mono=True, res_type="soxr_hq")
    assert sr == 16_000 and got.ndim == 1
    n = min(len(got), len(ref))
    assert abs(len(got) - len(ref)) <= 1
    assert np.max(np.abs(got[:n] - ref[:n])) < 2e-3  # 16-bit quantisation


def test_pool_rerun_skips_done_work_and_redoes_changed_or_damaged(music: Path, tmp_path: Path) -> None:
    out = tmp_path / "pool"
    P.pool_from_folder(music, out, progress=False)
    flac = out / "audio/game-music/intro.flac"
    mtime = flac.stat().st_mtime_ns

    again = P.pool_from_folder(music, out, progress=False)
    assert again.added == []
    assert sorted(again.skipped) == ["game-music/album/track1", "game-music/intro"]
    assert flac.stat().st_mtime_ns == mtime  # not rewritten

    # A changed source is converted again; a damaged pool file is rebuilt; new files are added.
    sf.write(music / "intro.wav", _tone(660, 0.3, 44_100, channels=2), 44_100)
    (out / "audio/game-music/album/track1.flac").write_bytes(b"damaged")
    sf.write(music / "album" / "track2.flac", _tone(330, 0.2, 16_000), 16_000)
    third = P.pool_from_folder(music, out, progress=False)
    assert sorted(third.added) == ["game-music/album/track1", "game-music/album/track2", "game-music/intro"]
    rows = _manifest(out)
    assert len(rows) == 3
    assert float(rows["game-music/intro"]["duration"]) == pytest.approx(0.3, abs=2e-3)
    for row in rows.values():
        assert row["sha256"] == hashlib.sha256((out / row["path"]).read_bytes()).hexdigest()


def test_pool_from_several_sources_and_parallel_jobs_agree(music: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "intro.wav", _tone(550, 0.25, 48_000), 48_000)
    sources = [P.PoolSource("game-music", music), P.PoolSource("other", other, main_licence=None)]
    a = P.build_pool(sources, tmp_path / "a", progress=False, jobs=1)
    b = P.build_pool(sources, tmp_path / "b", progress=False, jobs=2)
    assert sorted(a.added) == sorted(b.added) == ["game-music/album/track1", "game-music/intro", "other/intro"]
    ra, rb = _manifest(tmp_path / "a"), _manifest(tmp_path / "b")
    assert {k: v["sha256"] for k, v in ra.items()} == {k: v["sha256"] for k, v in rb.items()}
    assert ra["other/intro"]["licence"] == ""  # no licence file known: left empty, not invented


def test_pool_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(P.PoolError, match="not a folder"):
        P.pool_from_folder(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / P.MANIFEST).write_text("a,b\n1,2\n")
    with pytest.raises(P.PoolError, match="missing column"):
        P.read_manifest(tmp_path / "out")


def test_fetch_debian_unpacks_without_installing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--debian path with apt-get faked (no network): a real .deb built with dpkg-deb is unpacked by dpkg -x."""
    import shutil

    if shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None:
        pytest.skip("dpkg not available")
    pkg = tmp_path / "build" / "fake-music"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: fake-music\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (pkg / "usr/share/games/fake/music").mkdir(parents=True)
    sf.write(pkg / "usr/share/games/fake/music/theme.ogg", _tone(330, 0.3, 44_100), 44_100)
    import io
    import zipfile

    buf = io.BytesIO()
    sf.write(buf, _tone(660, 0.2, 22_050), 22_050, format="OGG")
    with zipfile.ZipFile(pkg / "usr/share/games/fake/music.pk3", "w") as z:  # tracks hidden in a .pk3
        z.writestr("sound/cdtracks/boss.ogg", buf.getvalue())
    (pkg / "usr/share/doc/fake-music").mkdir(parents=True)
    (pkg / "usr/share/doc/fake-music/copyright").write_text("License: GPL-2+\n")
    deb_store = tmp_path / "store"
    deb_store.mkdir()
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb_store / "fake-music_1.0_all.deb")],
                   check=True, capture_output=True)

    real_run = subprocess.run

    def fake_run(cmd: list[str], *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        if cmd[:2] == ["apt-get", "download"]:
            name = cmd[2]
            src = deb_store / f"{name}_1.0_all.deb"
            if not src.exists():
                return subprocess.CompletedProcess(cmd, 100, "", f"E: Unable to locate package {name}")
            shutil.copy(src, Path(str(kwargs["cwd"])) / src.name)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return real_run(cmd, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(P.subprocess, "run", fake_run)
    report = P.pool_from_debian(["fake-music", "no-such-music"], tmp_path / "pool", progress=False)
    assert sorted(report.added) == ["fake-music/usr/share/games/fake/music.pk3.d/sound/cdtracks/boss",
                                    "fake-music/usr/share/games/fake/music/theme"]
    assert report.failed[0][0] == "debian:no-such-music" and "Unable to locate" in report.failed[0][1]
    row = _manifest(tmp_path / "pool")["fake-music/usr/share/games/fake/music/theme"]
    assert row["licence"] == "licences/fake-music/usr/share/doc/fake-music/copyright"
    assert (tmp_path / "pool" / row["licence"]).read_text() == "License: GPL-2+\n"

    # A package that also ships sound effects is restricted to its music folder.
    monkeypatch.setitem(P.DEBIAN_MUSIC_DIRS, "fake-music", "usr/share/games/fake/music")
    only = P.pool_from_debian(["fake-music"], tmp_path / "only", progress=False)
    assert only.added == ["fake-music/theme"]
    assert _manifest(tmp_path / "only")["fake-music/theme"]["licence"] == "licences/fake-music/copyright"


def test_pool_keeps_one_copy_of_identical_or_symlinked_tracks(tmp_path: Path) -> None:
    """A track shipped once per language folder (symlinks or copies) is pooled once, not six times,
    and the copy kept is the first in sorted order even when an earlier run pooled another one."""
    import shutil

    root = tmp_path / "game"
    # Run 1 sees the tracks only under de/ (real files).
    sf.write(_mkdir(root / "de") / "track1.ogg", _tone(440, 0.3, 22_050), 22_050)
    sf.write(root / "de" / "track2.ogg", _tone(550, 0.3, 22_050), 22_050)
    first = P.pool_from_folder(root, tmp_path / "pool", progress=False)
    assert sorted(first.added) == ["game/de/track1", "game/de/track2"]
    # Then the package layout changes to Drascula's: audio/ holds the files, de/ symlinks, fr/ a copy.
    _mkdir(root / "audio")
    for n in ("track1.ogg", "track2.ogg"):
        shutil.move(root / "de" / n, root / "audio" / n)
        (root / "de" / n).symlink_to(Path("..") / "audio" / n)
    shutil.copy(root / "audio" / "track1.ogg", _mkdir(root / "fr") / "track1.ogg")
    report = P.pool_from_folder(root, tmp_path / "pool", progress=False)
    assert sorted(report.added) == ["game/audio/track1", "game/audio/track2"]
    assert sorted(twin for _, twin in report.duplicates) == ["game/audio/track1"] * 2 + ["game/audio/track2"]
    rows = _manifest(tmp_path / "pool")
    assert sorted(rows) == ["game/audio/track1", "game/audio/track2"]
    assert not (tmp_path / "pool/audio/game/de/track1.flac").exists()  # the stale twin's FLAC is gone
    again = P.pool_from_folder(root, tmp_path / "pool", progress=False)
    assert again.added == [] and sorted(again.skipped) == ["game/audio/track1", "game/audio/track2"]


def test_extract_audio_from_pk3_keeps_audio_and_licences_only(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    sf.write(buf, _tone(440, 0.1, 16_000), 16_000, format="OGG")
    pk3 = tmp_path / "music.pk3"
    with zipfile.ZipFile(pk3, "w") as z:
        z.writestr("sound/cdtracks/theme.ogg", buf.getvalue())
        z.writestr("sound/cdtracks/LICENSE", "CC-BY-SA")
        z.writestr("maps/level.bsp", b"not audio")
        z.writestr("../escape.ogg", buf.getvalue())
    got = P.extract_audio(pk3, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in got) == [
        "sound/cdtracks/LICENSE", "sound/cdtracks/theme.ogg"]
    assert not (tmp_path / "escape.ogg").exists()
    assert sf.info(tmp_path / "out/sound/cdtracks/theme.ogg").samplerate == 16_000


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_cli_pool_names_bad_file_and_exits_1(music: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["data", "pool", "--from", str(music), "--out", str(tmp_path / "p")])
    assert res.exit_code == 1
    assert "broken.mp3" in res.output and "2 added" in res.output
    assert len(_manifest(tmp_path / "p")) == 2
    both = runner.invoke(app, ["data", "pool", "--out", str(tmp_path / "p")])
    assert both.exit_code == 2  # neither --from nor --debian


def test_pool_budgets_are_nested_whole_tracks(tmp_path: Path) -> None:
    """load_pool gives what subset() budgets: nested minute budgets of whole pooled tracks."""
    from musicrep.data.subset import subset

    root = tmp_path / "music"
    root.mkdir()
    for i in range(12):
        sf.write(root / f"t{i:02d}.wav", _tone(200 + 20 * i, 0.5 + 0.25 * i, 16_000), 16_000)
    P.pool_from_folder(root, tmp_path / "pool", progress=False)
    pool = P.load_pool(tmp_path / "pool", check=True)
    assert len(pool) == 12 and pool["duration"].sum() == pytest.approx(sum(0.5 + 0.25 * i for i in range(12)), abs=0.01)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in pool["path"])
    small, large = subset(pool, minutes=0.05, seed=1), subset(pool, minutes=0.15, seed=1)
    assert set(small["id"]) < set(large["id"])
    assert small["duration"].sum() >= 3.0 and large["duration"].sum() >= 9.0
    (tmp_path / "pool" / pool["path"].iloc[0]).write_bytes(b"damaged")
    with pytest.raises(P.PoolError, match="checksum"):
        P.load_pool(tmp_path / "pool", check=True)


def test_pool_inside_its_source_folder_does_not_pool_itself(music: Path) -> None:
    first = P.pool_from_folder(music, music / "pool", progress=False)  # --out inside --from
    second = P.pool_from_folder(music, music / "pool", progress=False)
    assert second.added == [] and sorted(second.skipped) == sorted(first.added)
    assert len(_manifest(music / "pool")) == 2


def test_default_debian_list_and_music_dirs_are_consistent() -> None:
    assert len(set(P.DEFAULT_DEBIAN_PACKAGES)) == len(P.DEFAULT_DEBIAN_PACKAGES)
    assert set(P.DEBIAN_MUSIC_DIRS) <= set(P.DEFAULT_DEBIAN_PACKAGES)
