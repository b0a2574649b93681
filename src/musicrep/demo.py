"""``make demo``: the main job on the embedded default, end to end, on data generated on the spot.

Takes nothing but an output folder; gives a folder a person can open. Until the evaluation loop lands it
synthesises a short music-like clip, reports it with ``musicrep info`` and writes its log-mel, CQT,
chroma and MFCC with ``musicrep features``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf


def synth_clip(seconds: float = 6.0, sr: int = 16_000, seed: int = 0) -> np.ndarray:
    """A deterministic music-like clip: a I–IV–V–I progression of harmonic tones over soft noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    seg = len(t) // 4
    for i, root in enumerate([261.63, 349.23, 392.00, 261.63]):
        sl = slice(i * seg, (i + 1) * seg)
        for ratio in (1.0, 1.25, 1.5):  # major triad
            for h in range(1, 5):
                y[sl] += 0.08 / h * np.sin(2 * np.pi * root * ratio * h * t[sl])
        y[sl] *= np.exp(-2.0 * (t[sl] - t[sl][0]))
    y += 0.01 * rng.standard_normal(len(t))
    return (y / np.abs(y).max() * 0.8).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args(argv)
    from musicrep.cli import app

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "clip.wav"
    sf.write(clip, synth_clip(), 16_000)
    app(["info", str(clip)], standalone_mode=False)
    for name in ("logmel", "cqt", "chroma", "mfcc"):
        app(["features", str(clip), "--frontend", name, "--out", str(out / f"clip.{name}.npy")], standalone_mode=False)


if __name__ == "__main__":
    main()
