"""essentia's harmonic pitch-class profiles (Gómez 2006) as a representation: no weights, a handcrafted layer.

Registers ``essentia-hpcp``: audio ``[B, samples]`` at 16 kHz → ``[B, 2, T, 36]`` (12- and 36-bin HPCP),
one frame every ``hop`` samples (31.25 Hz by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrep.models import register
from musicrep.models.base import Representation
from musicrep.models.packaged import wheel
from musicrep.models.packaged.wheel import PackageRepresentation

__all__ = ["EssentiaHPCP", "essentia_available"]

def essentia_available() -> tuple[bool, str]:
    if not wheel.has_modules("essentia"):
        return False, "pip install essentia"
    return True, ""


class EssentiaHPCP(PackageRepresentation):
    """Harmonic pitch-class profiles (Gómez 2006) from essentia: spectral peaks → HPCP, 12 and 36 bins.

    Frames of ``frame_size`` samples, centred every ``hop`` samples (zero-padded at the ends), Blackman-
    Harris window, peaks between 40 Hz and ``max_hz``; bin 0 is A (reference 440 Hz), unit-max normalised.
    """

    name = "essentia-hpcp"
    sample_rate = 16_000

    def __init__(self, frame_size: int = 4096, hop: int = 512, max_hz: float = 5000.0) -> None:
        import essentia

        essentia.log.infoActive = False
        essentia.log.warningActive = False
        import essentia.standard as es

        self.frame_size, self.hop, self.max_hz = int(frame_size), int(hop), float(max_hz)
        sr = float(self.sample_rate)
        self._win = es.Windowing(type="blackmanharris62", size=self.frame_size)
        self._spec = es.Spectrum(size=self.frame_size)
        self._peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-5, minFrequency=40,
                                       maxFrequency=self.max_hz, maxPeaks=60, sampleRate=sr)
        common = dict(referenceFrequency=440.0, harmonics=8, bandPreset=False, minFrequency=40.0,
                      maxFrequency=self.max_hz, weightType="cosine", nonLinear=False, windowSize=1.0,
                      normalized="unitMax", sampleRate=sr)
        self._hpcp = [es.HPCP(size=12, **common), es.HPCP(size=36, **common)]
        self.frame_rate = sr / self.hop
        self.layer_names, self.layer_dims = ["hpcp12", "hpcp36"], [12, 36]

    def config(self) -> dict[str, Any]:
        return {"frame_size": self.frame_size, "hop": self.hop, "max_hz": self.max_hz}

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        x = np.pad(np.asarray(audio, np.float32), self.frame_size // 2)
        outs: list[list[np.ndarray]] = [[], []]
        for i in range(self.n_frames(len(audio))):
            fr = x[i * self.hop : i * self.hop + self.frame_size]
            if len(fr) < self.frame_size:
                fr = np.pad(fr, (0, self.frame_size - len(fr)))
            freqs, mags = self._peaks(self._spec(self._win(fr)))
            for j, h in enumerate(self._hpcp):
                outs[j].append(np.asarray(h(freqs, mags), np.float32))
        return [np.stack(o) for o in outs]


@register("essentia-hpcp", "handcrafted", "essentia HPCP (12 and 36 bins, reference A440)",
          available=essentia_available)
def _essentia_hpcp(**cfg: Any) -> Representation:
    return EssentiaHPCP(**cfg)
