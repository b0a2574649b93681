"""Rhythm features as representations: ``tempogram``, the onset-strength autocorrelation over tempo lags.

Takes 16 kHz audio ``[B, samples]``; gives one layer with one frame per window, ``[B, 1, 1, N_LAGS]``:
feature ``h`` is the autocorrelation of the window's onset-strength envelope at a lag of ``h`` envelope
frames (:data:`ENVELOPE_RATE` = 100 frames/s, so lag ``h`` is a beat period of ``h / 100`` s, a tempo of
``6000 / h`` BPM), divided by the lag-0 value (so every window weighs the same: lag 0 is 1, and a
silent window is all zeros). Its timeline mean is therefore a tempo histogram, and the zero-shot
``tempo`` probe (:mod:`musicrep.probe.tempo`) reads a tempo off it.

The envelope is spectral flux of the log-mel of :class:`musicrep.frontends.LogMel` (half-wave rectified
frame difference, averaged over bands), smoothed with a 5-frame Hann window — a beat period that falls
between two lags then keeps its full peak height instead of splitting it over both, which would hand
the win to an exact multiple — and made zero-mean. The autocorrelation is unbiased (lag ``h`` is
divided by the ``frames - h`` products it sums), as Ellis 2007 and librosa's tempo estimator use.

Why 8 s windows (librosa's ``ac_size``): two beats at the slowest tempo the lags cover (30 BPM) fit in
a window with room to spare, so long lags are averaged over several products.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from musicrep.frontends import LogMel
from musicrep.models import register
from musicrep.models.base import Representation

__all__ = ["ENVELOPE_RATE", "N_LAGS", "Tempogram", "onset_envelope", "lag_autocorrelation"]

#: Onset-envelope frames per second: lag ``h`` of the tempogram is ``h / ENVELOPE_RATE`` seconds.
ENVELOPE_RATE = 100.0
#: Lags 0..201 envelope frames: tempi down to 30 BPM (lag 200) plus one lag beyond, for the peak refinement.
N_LAGS = 202


def onset_envelope(logmel: Tensor) -> Tensor:
    """Spectral-flux onset strength ``[B, T]`` of a log-mel spectrogram ``[B, bands, T]`` (frame 0 is 0)."""
    flux = torch.clamp(logmel[:, :, 1:] - logmel[:, :, :-1], min=0).mean(dim=1)
    return torch.cat([flux.new_zeros(flux.shape[0], 1), flux], dim=1)


def lag_autocorrelation(env: Tensor, n_lags: int = N_LAGS) -> Tensor:
    """Normalised, unbiased autocorrelation ``[B, n_lags]`` of envelopes ``[B, T]`` (see module docstring).

    Lags at or beyond ``T`` (a window shorter than the lag) are 0; so is every lag of a constant envelope.
    """
    hann = torch.hann_window(7, periodic=False, dtype=env.dtype, device=env.device)[1:-1]
    e = torch.nn.functional.conv1d(env[:, None], (hann / hann.sum())[None, None], padding=2)[:, 0]
    e = e - e.mean(dim=1, keepdim=True)
    n = e.shape[1]
    size = 2 * max(n, n_lags)
    spec = torch.fft.rfft(e, n=size)
    ac = torch.fft.irfft(spec * spec.conj(), n=size)[:, :n_lags]
    lags = torch.arange(n_lags, device=env.device)
    ac = ac / (n - lags).clamp_min(1).to(ac.dtype)  # unbiased: long lags sum fewer products
    ac = torch.where(lags < n, ac, torch.zeros_like(ac))
    ac0 = ac[:, :1]
    tiny = 1e-12
    return torch.where(ac0 > tiny, ac / ac0.clamp_min(tiny), torch.zeros_like(ac))


class Tempogram(Representation):
    """Onset-strength autocorrelation over tempo lags, one frame per window (see module docstring)."""

    name = "tempogram"
    sample_rate = 16_000
    window_seconds = 8.0

    def __init__(self, size: str | None = None, seed: int | None = None, weights: str | None = None,
                 **settings: Any) -> None:
        # size/seed are accepted so callers can build every representation alike; a parameter-free
        # feature has one size and is its own "random twin", so both are ignored (and not in the id)
        if weights is not None:
            raise ValueError(f"tempogram: a handcrafted feature has no weights; drop weights={weights!r}")
        if settings:
            raise ValueError(f"tempogram: unknown setting(s) {sorted(settings)}; allowed: none")
        self.logmel = LogMel(sample_rate=self.sample_rate)
        if abs(self.logmel.frame_rate - ENVELOPE_RATE) > 1e-9:  # the lag axis is defined at this rate
            raise AssertionError(f"log-mel frame rate {self.logmel.frame_rate} != {ENVELOPE_RATE}")
        self.frame_rate = 1.0 / self.window_seconds
        self.layer_names, self.layer_dims = ["autocorrelation"], [N_LAGS]

    def n_frames(self, n_samples: int) -> int:
        """One frame per window, whatever its length."""
        return 1

    def config(self) -> dict[str, Any]:
        return {"envelope_rate": ENVELOPE_RATE, "n_lags": N_LAGS}

    def embed(self, audio: Tensor) -> Tensor:
        """``[B, samples]`` → ``[B, 1, 1, N_LAGS]``; a clip of a few frames gives zeros beyond its length."""
        env = onset_envelope(self.logmel(audio))
        return lag_autocorrelation(env)[:, None, None, :]


register("tempogram", family="handcrafted",
         description="onset-strength autocorrelation over tempo lags (30-300 BPM) per 8 s window; for tempo")(
    Tempogram)
