"""Pool presets: the registry, music-folder exclusion, reels, SWORD text, espeak-ng rows, a tiny nonmusic build.

No network and no apt: Debian packages are stood in for by local folders through ``fetch``.
"""

from __future__ import annotations

import csv
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrep.data import pool as P
from musicrep.data import pool_presets as R
from musicrep.data import pool_staging as S

HAS_ESPEAK = shutil.which("espeak-ng") is not None
NEEDS_ESPEAK = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")


def _tone(seconds: float, sr: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return 0.3 * np.sin(2 * np.pi * freq * t)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------- registry


def test_registry_resolves_presets_and_names_the_known_ones() -> None:
    music = R.get_pool_preset("default")
    assert [p.packages for p in music.parts] == [P.DEFAULT_DEBIAN_PACKAGES]  # --debian default reads the same list
    assert music.parts[0].source is None  # one source per package, as the music pool always was

    nonmusic = R.get_pool_preset("nonmusic")
    assert [p.source for p in nonmusic.parts] == ["recorded-speech", "sound-effects", "synthetic-speech"]
    assert nonmusic.target_minutes == music.target_minutes  # same size as the music pool
    recorded, effects, speech = nonmusic.parts
    assert all(p.startswith("asterisk-") and p.endswith("-wav") for p in recorded.packages)
    assert not set(recorded.packages + effects.packages) & set(P.DEFAULT_DEBIAN_PACKAGES)
    assert isinstance(speech, R.SpeechPart) and speech.minutes is None  # fills up to the target
    assert all(t.licence == "Public Domain" and t.voices for t in speech.texts)

    with pytest.raises(P.PoolError, match=r"unknown pool preset 'musik'.*default, nonmusic"):
        R.get_pool_preset("musik")


# --------------------------------------------------------------------------------------------- exclusion


def test_select_clips_drops_music_folders_and_music_files(tmp_path: Path) -> None:
    root = tmp_path / "game-data"
    wanted = ["sounds/boom.wav", "sounds/voices/hello.ogg", "data/sfx/step.wav"]
    unwanted = ["music/theme.ogg", "data/Musics/level1.ogg", "sounds/music/loop.wav", "snd/introzik.ogg",
                "sounds/jingle.ogg", "data/titles/StartOfGame.ogg", "sounds/frog_music.ogg"]
    for rel in wanted + unwanted:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, _tone(0.05, 8000), 8000, format="WAV" if rel.endswith(".wav") else "OGG")
    (root / "sounds/readme.txt").write_text("not audio")
    got = [f.relative_to(root).as_posix() for f in S.select_clips(root, R.MUSIC_PATH)]
    assert got == sorted(wanted)
    assert len(S.select_clips(root)) == len(wanted + unwanted)  # no pattern: every audio file


# --------------------------------------------------------------------------------------------- SWORD text


def _sword_module(folder: Path, verses: list[str]) -> None:
    """A zText testament written by hand from the format: zlib block + (off, size, usize) + verse index."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = b"".join(v.encode() for v in verses)
    comp = zlib.compress(raw)
    (folder / "ot.bzz").write_bytes(comp)
    (folder / "ot.bzs").write_bytes(struct.pack("<III", 0, len(comp), len(raw)))
    index, pos = [struct.pack("<IIH", 0, 0, 0)], 0  # entry 0: empty module heading, as in real modules
    for v in verses:
        n = len(v.encode())
        index.append(struct.pack("<IIH", 0, pos, n))
        pos += n
    (folder / "ot.bzv").write_bytes(b"".join(index))


def test_read_sword_text_strips_markup(tmp_path: Path) -> None:
    mod = tmp_path / "mod"
    _sword_module(mod, [
        '<w lemma="strong:H7225">In the beginning</w> <w lemma="x">God</w> created.',
        '<div type="x-p"/>God said, “ <w>Let</w> there be light” <note n="a">a footnote</note>&amp; there was .',
    ])
    assert S.read_sword_text(mod) == ["In the beginning God created.",
                                      "God said, “Let there be light” & there was."]
    with pytest.raises(P.PoolError, match="no SWORD zText module"):
        S.read_sword_text(tmp_path)


# --------------------------------------------------------------------------------------------- espeak


@NEEDS_ESPEAK
def test_espeak_row_is_a_16k_flac_with_duration(tmp_path: Path) -> None:
    folder = tmp_path / "speech"
    seconds = S.speak("Hello world. This is a test of the pool.", "en-us", folder / "hello.wav")
    wav = sf.info(folder / "hello.wav")
    assert seconds == pytest.approx(wav.frames / wav.samplerate) and seconds > 0.5
    report = P.build_pool([P.PoolSource("synthetic-speech", folder)], tmp_path / "pool", progress=False)
    assert report.failed == [] and report.added == ["synthetic-speech/hello"]
    (row,) = _rows(tmp_path / "pool" / P.MANIFEST)
    flac = sf.info(tmp_path / "pool" / row["path"])
    assert (flac.format, flac.samplerate, flac.channels) == ("FLAC", 16_000, 1)
    assert float(row["duration"]) == pytest.approx(seconds, abs=2e-3)  # 22.05 → 16 kHz keeps the length
    with pytest.raises(P.PoolError, match="no-such-voice"):
        S.speak("Hello.", "no-such-voice", folder / "bad.wav")


# --------------------------------------------------------------------------------------------- tiny build


@pytest.fixture()
def packages(tmp_path: Path) -> Path:
    """Fake unpacked packages: speech prompts (+ a silence folder), game data (+ music, duplicate, broken), a text."""
    root = tmp_path / "debs"
    prompts = root / "prompts-wav/usr/share/asterisk/sounds/en"
    (prompts / "silence").mkdir(parents=True)
    sf.write(prompts / "a-hello.wav", _tone(0.5, 8000), 8000, subtype="PCM_16")
    sf.write(prompts / "b-goodbye.wav", _tone(0.7, 8000, 330), 8000, subtype="PCM_16")
    sf.write(prompts / "silence" / "1.wav", np.zeros(8000), 8000, subtype="PCM_16")
    game = root / "game-data/usr/share/games/game"
    (game / "sounds").mkdir(parents=True)
    (game / "music").mkdir()
    sf.write(game / "sounds" / "boom.wav", _tone(0.3, 44_100, 110), 44_100)
    shutil.copyfile(game / "sounds" / "boom.wav", game / "sounds" / "boom-again.wav")  # same bytes: pooled once
    (game / "sounds" / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 40)
    (game / "sounds" / "LICENSE").write_text("CC0\n")
    sf.write(game / "music" / "theme.ogg", _tone(1.0, 22_050, 220), 22_050)
    _sword_module(root / "text-pkg/usr/share/sword/modules/texts/ztext/tiny",
                  ["In the beginning God created the heavens and the earth.", "And there was light."])
    for pkg in ("prompts-wav", "game-data", "text-pkg"):
        (root / pkg / "usr/share/doc" / pkg).mkdir(parents=True, exist_ok=True)
        (root / pkg / "usr/share/doc" / pkg / "copyright").write_text(f"{pkg}: GPL-2+\n")
    return root


def _tiny_preset(with_speech: bool) -> R.PoolPreset:
    parts: list[R.DebianPart | R.SpeechPart] = [
        R.DebianPart("recorded-speech", ("prompts-wav",), exclude=r"(^|/)silence/", reel_seconds=60.0),
        R.DebianPart("sound-effects", ("game-data", "missing-data"), exclude=R.MUSIC_PATH, reel_seconds=60.0),
    ]
    if with_speech:
        parts.append(R.SpeechPart("synthetic-speech", (R.SpokenText(
            "tiny", "text-pkg", "usr/share/sword/modules/texts/ztext/tiny", "Tiny text", "Public Domain",
            ("en-us", "en-gb")),), passage_words=5))
    return R.PoolPreset("tiny", "test", tuple(parts), target_minutes=0.1)


def test_tiny_nonmusic_build_from_local_folders(packages: Path, tmp_path: Path) -> None:
    from musicrep.data.subset import subset

    def fetch(pkg: str, work: Path) -> P.PoolSource:
        if not (packages / pkg).is_dir():
            raise P.PoolError(f"apt-get download failed: no package {pkg}")
        return P.PoolSource(pkg, packages / pkg, packages / pkg / "usr/share/doc" / pkg / "copyright")

    out = tmp_path / "pool"
    report = S.pool_from_preset(_tiny_preset(HAS_ESPEAK), out, fetch=fetch, download_dir=tmp_path / "work",
                                progress=False)
    # Bad input is named and skipped: the missing package and the broken clip.
    assert sorted(Path(f).name for f, _ in report.failed) == ["broken.wav", "debian:missing-data"]

    with open(out / P.MANIFEST, newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames or ()) == P.MANIFEST_COLUMNS
    rows = {r["id"]: r for r in _rows(out / P.MANIFEST)}
    kinds = {"recorded-speech", "sound-effects"} | ({"synthetic-speech"} if HAS_ESPEAK else set())
    assert {r["source"] for r in rows.values()} == kinds
    for row in rows.values():
        info = sf.info(out / row["path"])
        assert (info.format, info.samplerate, info.channels) == ("FLAC", 16_000, 1)
        assert (out / row["licence"]).is_file()  # every row names a licence copied into the pool

    # The two prompts form one reel: 0.5 s + 0.2 s gap + 0.7 s; the silence folder is left out.
    (speech,) = [r for r in rows.values() if r["source"] == "recorded-speech"]
    assert float(speech["duration"]) == pytest.approx(0.5 + S.REEL_GAP_SECONDS + 0.7, abs=2e-3)
    assert (out / speech["licence"]).read_text() == "prompts-wav: GPL-2+\n"
    (effects,) = [r for r in rows.values() if r["source"] == "sound-effects"]
    assert float(effects["duration"]) == pytest.approx(0.3, abs=2e-3)  # one boom: the copy and music dropped
    assert (out / effects["licence"]).read_text() == "CC0\n"  # the nearest licence file wins

    prov = _rows(out / S.PROVENANCE)
    origins = [p["origin"] for p in prov if p["source"] != "synthetic-speech"]
    assert origins == ["prompts-wav/usr/share/asterisk/sounds/en/a-hello.wav",
                       "prompts-wav/usr/share/asterisk/sounds/en/b-goodbye.wav",
                       "game-data/usr/share/games/game/sounds/boom-again.wav"]
    assert [float(p["start"]) for p in prov if p["origin"].endswith(("hello.wav", "goodbye.wav"))] == \
        pytest.approx([0.0, 0.5 + S.REEL_GAP_SECONDS], abs=1e-3)
    assert {(p["source"], p["source_path"]) for p in prov} == {(r["source"], r["source_path"]) for r in rows.values()}
    if HAS_ESPEAK:
        spoken = [r for r in rows.values() if r["source"] == "synthetic-speech"]
        assert spoken and all(float(r["duration"]) > 0 for r in spoken)
        assert "Public Domain" in (out / spoken[0]["licence"]).read_text()

    # load_pool and subset take it unchanged; a second run adds nothing (resumable).
    pool = P.load_pool(out, check=True)
    assert len(subset(pool, minutes=1.0, seed=0)) == len(rows)
    again = S.pool_from_preset(_tiny_preset(HAS_ESPEAK), out, fetch=fetch, download_dir=tmp_path / "work",
                               progress=False)
    assert again.added == [] and sorted(again.skipped) == sorted(rows)


def test_cli_preset_errors_name_the_fix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    res = CliRunner().invoke(app, ["data", "pool", "--out", str(tmp_path / "p"), "--preset", "musik"])
    assert res.exit_code == 2 and "known presets: default, nonmusic" in res.stderr
    res = CliRunner().invoke(app, ["data", "pool", "--out", str(tmp_path / "p"), "--preset", "nonmusic",
                                   "--from", str(tmp_path)])
    assert res.exit_code == 2 and "one of --from" in res.stderr
    assert not (tmp_path / "p").exists()  # nothing fetched or written
