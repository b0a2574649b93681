"""Deformations of a waveform: named, parameterised, seeded, serialisable — for robustness and augmentation.

Takes mono float32 audio ``[samples]`` at a sample rate (Hz); gives audio of the same length, finite.
Each deformation is a :class:`Deformation` — ``{name, variant, params}`` — whose canonical string
(``noise:pink@snr=10``, ``mp3@kbps=64``, ``pitch@semitones=-1``) fills the ``deformation`` column of the
results table and joins the unit and store keys, so every number says exactly what was done to the audio
(the idea of lhotse's serialisable transforms). :func:`parse` reads such a string back.

Determinism: the random choices of a deformation (noise samples, which background file and where) come
from a generator seeded by ``(item id, canonical string, seed)``, so the same item deformed twice is
byte-identical and two items never share noise.

Effects and codecs are pedalboard's (Spotify's JUCE wrappers); only what pedalboard lacks is written here
(coloured noise, mixing at an exact SNR, codec delay alignment). The registry :data:`DEFORMATIONS` maps a
name to its :class:`Transform`; a new deformation is one function plus one registry line in
``effects.py``, ``noise.py`` or ``codecs.py``.
"""

from musicrep.augment.base import (
    DEFORMATIONS,
    Deformation,
    DeformationError,
    Transform,
    apply,
    item_rng,
    parse,
    register,
)

# the modules that register transforms (one per family of deformation)
from musicrep.augment import codecs, effects, noise  # noqa: E402,F401  (registration side effects)

__all__ = ["DEFORMATIONS", "Deformation", "DeformationError", "Transform", "apply", "item_rng", "parse", "register"]
