"""Pool presets: which Debian packages, which folders, which synthesised speech make a named pool.

One registry, :data:`POOL_PRESETS`, read by ``musicrep data pool --preset NAME`` (and by
``--debian default``, which is the ``default`` preset's package list). A preset is a list of *parts*:

- :class:`DebianPart`: the audio files of Debian packages (``apt-get download`` + ``dpkg -x``, no install).
  With ``source=None`` each package is its own ``source`` (the music pool, as it always was); with a
  ``source`` name every package of the part is pooled under that name, clips of one folder joined into
  *reels* of about ``reel_seconds`` (speech prompts and sound effects last 0.1–5 s, shorter than the 3 s
  crops the trainer takes, so one file per row would leave most of the pool unusable).
- :class:`SpeechPart`: public-domain text read aloud by ``espeak-ng`` with several voices, in passages of
  about ``passage_words`` words, until the preset reaches ``target_minutes`` (this part fills the rest).

This module is data only (cheap to import for ``--help``); the builders are in
:mod:`musicrep.data.pool_staging` and :mod:`musicrep.data.pool`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEBIAN_MUSIC_DIRS",
    "DEFAULT_DEBIAN_PACKAGES",
    "MUSIC_PATH",
    "POOL_PRESETS",
    "DebianPart",
    "PoolPreset",
    "SpeechPart",
    "SpokenText",
    "get_pool_preset",
]

#: Debian packages of recorded game music (GPL / CC licences), each checked by unpacking it.
DEFAULT_DEBIAN_PACKAGES = (
    "warzone2100-music",
    "ufoai-music",
    "wesnoth-1.16-music",
    "nexuiz-music",
    "singularity-music",
    "drascula-music",
    "asc-music",
    "hyperrogue-music",
)
#: Packages that also ship sound effects: only this sub-folder of the unpacked tree is music.
DEBIAN_MUSIC_DIRS: dict[str, str] = {"hyperrogue-music": "usr/share/hyperrogue/music"}

#: Package-relative paths (case-insensitive search) that are music or music-like in game data packages:
#: music folders (music/, Musics/, musik/, soundtrack/), title-screen tunes (freedroidrpg's titles/),
#: jingles, files named *music* (warmux's frog_music.ogg) and frozen-bubble's *zik* tunes. Checked by
#: listing every package of the ``nonmusic`` preset (files over 25 s were listened for by name).
MUSIC_PATH = r"music|musik|soundtrack|jingle|(^|/)titles/|zik"


@dataclass(frozen=True)
class DebianPart:
    """Audio files of Debian packages.

    Attributes:
        source: value of the manifest's ``source`` column for every file of this part; ``None`` makes
            each package its own source (one row per file, no reels: the music pool).
        packages: Debian package names.
        only_dirs: package → the sub-folder of its unpacked tree that holds the wanted audio.
        exclude: regular expression (case-insensitive ``re.search``) on package-relative paths never pooled.
        reel_seconds: join the clips of each folder into reels of about this many seconds (``None``: no).
    """

    source: str | None
    packages: tuple[str, ...]
    only_dirs: Mapping[str, str] = field(default_factory=dict)
    exclude: str | None = None
    reel_seconds: float | None = None


@dataclass(frozen=True)
class SpokenText:
    """A public-domain text shipped in a Debian package as a SWORD zText module, and its readers.

    Attributes:
        name: folder name under the speech source (``web``, ``rv1909``).
        package: the Debian package that ships it.
        module: folder of the zText module inside the package (holds ``ot.bzs``, ``ot.bzv``, ``ot.bzz``…).
        title: human-readable title, written into the licence file.
        licence: the text's licence as its module states it.
        voices: ``espeak-ng -v`` voices that read it, in turn (``+f3`` etc. are espeak's voice variants).
    """

    name: str
    package: str
    module: str
    title: str
    licence: str
    voices: tuple[str, ...]


@dataclass(frozen=True)
class SpeechPart:
    """Text read aloud by espeak-ng: passage ``k`` of text ``k mod n`` in that text's next voice.

    Attributes:
        source: the ``source`` column of its rows.
        texts: the texts read, in turn (so every text gets about the same minutes).
        passage_words: words per passage (one pooled file; ~1 min at ``speed``).
        speed: speaking rate in words per minute (``espeak-ng -s``).
        minutes: minutes to render; ``None`` fills the preset up to its ``target_minutes``.
    """

    source: str
    texts: tuple[SpokenText, ...]
    passage_words: int = 160
    speed: int = 160
    minutes: float | None = None


@dataclass(frozen=True)
class PoolPreset:
    """A named pool recipe: its parts, in build order, and the minutes it aims at."""

    name: str
    description: str
    parts: tuple[DebianPart | SpeechPart, ...]
    target_minutes: float | None = None


#: The music pool (game music packages, 1 row per track) and its out-of-domain twin of the same size.
POOL_PRESETS: dict[str, PoolPreset] = {
    "default": PoolPreset(
        "default",
        "recorded game music from Debian packages (~848 min)",
        (DebianPart(None, DEFAULT_DEBIAN_PACKAGES, only_dirs=DEBIAN_MUSIC_DIRS),),
        target_minutes=848.0,
    ),
    "nonmusic": PoolPreset(
        "nonmusic",
        "out-of-domain pool of the music pool's size: recorded speech prompts (5 languages), game sound "
        "effects (music folders excluded), espeak-ng speech of public-domain Bibles (English, Spanish)",
        (
            # Telephone prompts (8 kHz recordings by professional speakers); silence/ holds pure silence.
            DebianPart(
                "recorded-speech",
                ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav",
                 "asterisk-core-sounds-it-wav", "asterisk-core-sounds-ru-wav", "asterisk-prompt-it-menardi-wav"),
                exclude=r"(^|/)silence/",
                reel_seconds=60.0,
            ),
            # Sound effects, ambiences and voice barks of game data packages (their music folders excluded).
            DebianPart(
                "sound-effects",
                ("0ad-data", "ufoai-sound", "megaglest-data", "hedgewars-data", "warzone2100-data",
                 "widelands-data", "lincity-ng-data", "scorched3d-data", "openarena-data", "wesnoth-1.16-data",
                 "warmux-data", "freedroidrpg-data", "supertux-data", "frozen-bubble-data", "bzflag-data",
                 "extremetuxracer-data", "pokerth-data", "pingus-data"),
                exclude=MUSIC_PATH,
                reel_seconds=60.0,
            ),
            SpeechPart(
                "synthetic-speech",
                (
                    SpokenText("web", "sword-text-web", "usr/share/sword/modules/texts/ztext/engWEB2015eb",
                               "World English Bible (SWORD module engWEB2015eb)", "Public Domain",
                               ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb-x-rp+f2")),
                    SpokenText("rv1909", "sword-text-sparv", "usr/share/sword/modules/texts/ztext/spaRV1909eb",
                               "Reina-Valera 1909 (SWORD module spaRV1909eb)", "Public Domain",
                               ("es", "es-419", "es+f3", "es-419+f2")),
                ),
            ),
        ),
        target_minutes=848.0,
    ),
}


def get_pool_preset(name: str) -> PoolPreset:
    """The preset called ``name``; raises :class:`~musicrep.data.pool.PoolError` naming the known ones."""
    try:
        return POOL_PRESETS[name]
    except KeyError:
        # pool imports this module: import on use, no cycle
        from musicrep.data.pool import PoolError

        raise PoolError(f"unknown pool preset {name!r}; known presets: {', '.join(sorted(POOL_PRESETS))}") from None
