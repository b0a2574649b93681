"""In-process SoundFont synthesis: note lists → mono float32 audio, deterministic and fast.

Takes a SoundFont (a name such as ``timgm6mb`` / ``fluidr3`` / ``musescore`` or a path) and gives a
:class:`Synth` whose :meth:`Synth.render` turns a list of :class:`Note` and a channel → GM program map
into a 1-D float32 signal at 16 kHz.

Why tinysoundfont: it is a pip wheel (no system library), renders the TimGM6mb SoundFont that ships
inside ``pretty_midi`` and reads Debian's FluidR3 / MuseScore General files too, so the same code works
with pip alone and uses better SoundFonts when the machine has them. It renders thousands of times
faster than realtime, in-process, with the SoundFont parsed once.

Why every render starts with a reset *and* a short discarded render: tinysoundfont's reset only puts
sounding voices into a quick release; without flushing them, the first milliseconds of the next item
depend on what was rendered before, which would make output depend on job order (and so on the number
of worker processes). With the flush, an item's samples depend only on its own notes — that is what
makes renders byte-identical across runs and across ``--workers``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GM_FAMILIES", "Note", "SOUNDFONTS", "Synth", "SynthError", "gm_family", "resolve_soundfont"]

#: The 16 General MIDI instrument families, 8 programs each, in program order.
GM_FAMILIES = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
)  # fmt: skip

#: Where known SoundFonts live (paths or globs). ``timgm6mb`` ships in the pretty_midi wheel; the others
#: are Debian packages (fluid-soundfont-gm, musescore-general-soundfont[-small], opl3-soundfont,
#: timgm6mb-soundfont), used when installed.
SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "timgm6mb": ("<pretty_midi>/TimGM6mb.sf2",),
    "fluidr3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/FluidR3_GM.sf3"),
    "musescore": ("/usr/share/sounds/sf2/MuseScore_General.sf2", "/usr/share/sounds/sf3/MuseScore_General.sf3"),
    "opl3": ("/usr/share/sounds/sf2/*[Oo][Pp][Ll]*3*.sf2", "/usr/share/sounds/opl3/*.sf2"),
    "timgm6mb-debian": ("/usr/share/sounds/sf2/TimGM6mb.sf2",),
}
_FLUSH = 4096  # samples rendered and discarded after a reset (≫ tinysoundfont's quick release)


class SynthError(Exception):
    """A SoundFont cannot be found or used; the message names it and what to do."""


@dataclass(frozen=True, order=True)
class Note:
    """One note: times in seconds, MIDI pitch and velocity (1–127), and the channel it plays on."""

    start: float
    end: float
    pitch: int
    velocity: int = 100
    channel: int = 0


def gm_family(program: int) -> str:
    """GM family name of a program number 0–127 (e.g. 0 → ``piano``, 40 → ``strings``)."""
    return GM_FAMILIES[program // 8]


def resolve_soundfont(soundfont: str | os.PathLike[str] | None = None) -> Path:
    """Path of a SoundFont given a known name (see :data:`SOUNDFONTS`), ``auto`` or a file path.

    ``None`` means ``timgm6mb``: the default never depends on what else is installed, so a render is
    reproducible on any machine. ``auto`` prefers FluidR3, then MuseScore General, then TimGM6mb.
    """
    name = "timgm6mb" if soundfont is None else str(soundfont)
    if name == "auto":
        for candidate in ("fluidr3", "musescore", "timgm6mb"):
            try:
                return resolve_soundfont(candidate)
            except SynthError:
                continue
    if name.lower() in SOUNDFONTS:
        for pattern in SOUNDFONTS[name.lower()]:
            if pattern.startswith("<pretty_midi>"):
                import pretty_midi

                p = Path(pretty_midi.__file__).parent / pattern.split("/", 1)[1]
            else:  # a glob where the Debian file name is not certain (first match in sorted order)
                p = next(iter(sorted(Path("/").glob(pattern.lstrip("/")))), Path(pattern))
            if p.is_file():
                return p
        raise SynthError(
            f"SoundFont {name!r} is not installed (looked in {', '.join(SOUNDFONTS[name.lower()])}); "
            f"install its Debian package or pass --soundfont PATH/TO/FILE.sf2"
        )
    p = Path(name).expanduser()
    if not p.is_file():
        raise SynthError(f"SoundFont {name!r}: no such file and not one of {', '.join(SOUNDFONTS)}")
    return p


class Synth:
    """A loaded SoundFont that renders note lists to mono float32 audio.

    >>> synth = Synth()                                   # TimGM6mb from pretty_midi, 16 kHz
    >>> y = synth.render([Note(0.0, 1.0, 60)], {0: 0}, duration=1.5)   # middle C on a piano
    """

    def __init__(self, soundfont: str | os.PathLike[str] | None = None, sample_rate: int = 16_000,
                 gain_db: float = 0.0, max_voices: int = 256) -> None:
        from tinysoundfont import _tinysoundfont as tsf

        self.path = resolve_soundfont(soundfont)
        self.sample_rate = int(sample_rate)
        try:
            self._sf = tsf.SoundFont(str(self.path))
        except Exception as exc:  # tinysoundfont raises a bare Exception on unreadable files
            raise SynthError(f"{self.path}: cannot be loaded as a SoundFont ({exc})") from None
        self._sf.set_output(tsf.OutputMode.Mono, self.sample_rate, float(gain_db))
        self._sf.set_max_voices(int(max_voices))
        self._scratch = np.zeros(_FLUSH, dtype=np.float32)

    @property
    def name(self) -> str:
        return self.path.name

    def has_program(self, program: int, bank: int = 0) -> bool:
        """Whether the SoundFont defines this (bank, program)."""
        return self._sf.get_preset_index(bank, program) >= 0

    def render(self, notes: Iterable[Note], programs: Mapping[int, int], duration: float) -> np.ndarray:
        """Render ``notes`` (channel → GM program in ``programs``) into ``duration`` seconds of audio.

        Notes are cut at ``duration``; the result is exactly ``round(duration * sample_rate)`` samples.
        Channel 9 (GM drums) is played as a melodic channel: drums are not used by musicrep's tasks.
        """
        n = int(round(duration * self.sample_rate))
        out = np.zeros(n, dtype=np.float32)
        sf = self._sf
        sf.reset()
        sf.render(memoryview(self._scratch).cast("B"), False)  # flush released voices (module docstring)
        for ch, prog in sorted(programs.items()):
            sf.channel_set_bank(ch, 0)
            try:
                sf.channel_set_preset_number(ch, int(prog), False)
            except RuntimeError:
                raise SynthError(f"{self.path.name}: has no program {prog} in bank 0") from None
        # (sample, 0 = off before 1 = on at the same sample, channel, pitch, velocity)
        events = []
        for note in notes:
            on = int(round(note.start * self.sample_rate))
            off = int(round(note.end * self.sample_rate))
            if on >= n or off <= on:
                continue
            events.append((on, 1, note.channel, note.pitch, note.velocity))
            events.append((min(off, n), 0, note.channel, note.pitch, 0))
        events.sort()
        pos = 0
        for at, kind, ch, pitch, vel in events:
            if at > pos:
                sf.render(memoryview(out[pos:at]).cast("B"), False)
                pos = at
            if kind:
                sf.channel_note_on(ch, pitch, vel / 127.0)
            else:
                sf.channel_note_off(ch, pitch)
        if pos < n:
            sf.render(memoryview(out[pos:]).cast("B"), False)
        return out
