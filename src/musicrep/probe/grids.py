"""Hyper-parameter grids for probes, named ``faster | fast | default``.

Takes a grid name (or a :class:`ProbeGrid`) and a probe name; gives the list of :class:`ProbeConfig`
the search will try. Why named, fixed grids (the HEAR eval-kit habit): every study and CI run searches
the same space, so results are comparable across representations, and CI can run the real pipeline on
tiny data with ``faster``. ``default`` follows McCallum et al. 2022: Adam, warm-up then cosine decay to
zero, tuning learning rate, number of steps and l2 over MLPs of the Table 2 shapes (linear, 1×512,
1×1024, dropout 0–0.8).
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProbeConfig", "ProbeGrid", "GRIDS", "get_grid", "expand"]


class ProbeConfig(BaseModel):
    """One probe setting; a searched grid point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = Field(1e-3, description="Peak Adam learning rate, reached after warm-up.")
    steps: int = Field(500, description="Optimiser steps; the cosine schedule reaches zero here.")
    weight_decay: float = Field(0.0, description="L2 coefficient on weights (grad += wd * w), not biases.")
    dropout: float = Field(0.0, description="Dropout on hidden activations (MLP only).")
    hidden: tuple[int, ...] = Field((), description="Hidden layer widths; () is a linear probe.")
    k: int = Field(5, description="Neighbours for the kNN probe.")

    def short(self) -> dict:
        """The settings as a plain dict (for results tables)."""
        return self.model_dump()


class ProbeGrid(BaseModel):
    """A named search space. Every list is crossed with every other (only the fields a probe uses)."""

    model_config = ConfigDict(extra="forbid")

    lr: list[float] = Field(description="Peak learning rates.")
    steps: list[int] = Field(description="Total optimiser steps.")
    weight_decay: list[float] = Field(description="L2 coefficients.")
    dropout: list[float] = Field(description="Dropout on MLP hidden activations.")
    hidden: list[tuple[int, ...]] = Field(description="MLP hidden shapes (the linear probe ignores them).")
    k: list[int] = Field(description="kNN neighbour counts.")
    batch_size: int = Field(256, description="Minibatch size (full batch when the train set is smaller).")
    warmup: float = Field(0.1, description="Fraction of each config's steps spent in linear warm-up.")
    eval_every: int = Field(0, description="Validate every this many steps (0: about 25 times per run).")
    patience: int = Field(8, description="Retire a config after this many validations without improvement.")
    halving: int = Field(0, description="Successive-halving factor η (0: exhaustive grid). At each rung only "
                                        "the best 1/η of the still-training configs continue.")
    rungs: int = Field(3, description="Number of successive-halving rungs (at max_steps/η^r, r = rungs…1).")


GRIDS: dict[str, ProbeGrid] = {
    # CI: a handful of small configs, a few hundred steps, exhaustive.
    "faster": ProbeGrid(lr=[1e-3, 1e-2], steps=[200], weight_decay=[0.0, 1e-3], dropout=[0.0],
                        hidden=[(64,)], k=[5], batch_size=128, patience=6),
    # laptop: the settings that matter most in small-data studies; successive halving keeps it cheap.
    "fast": ProbeGrid(lr=[3e-4, 1e-3, 3e-3], steps=[600], weight_decay=[0.0, 1e-3],
                      dropout=[0.0, 0.5], hidden=[(256,)], k=[1, 5, 10, 20], batch_size=256, halving=3),
    # paper-like (McCallum et al. 2022): Table 2 shapes, tune lr, steps and l2; exhaustive.
    "default": ProbeGrid(lr=[1e-4, 3e-4, 1e-3, 3e-3], steps=[2000, 5000],
                         weight_decay=[0.0, 1e-5, 1e-4, 1e-3, 1e-2], dropout=[0.0, 0.5, 0.8],
                         hidden=[(512,), (1024,)], k=[1, 3, 5, 10, 20, 50], batch_size=256,
                         eval_every=100, patience=10),
}


def get_grid(grid: str | ProbeGrid | dict) -> ProbeGrid:
    """A grid by name, or validate a dict/ProbeGrid (unknown keys are errors that name the key)."""
    if isinstance(grid, ProbeGrid):
        return grid
    if isinstance(grid, dict):
        return ProbeGrid(**grid)
    try:
        return GRIDS[grid]
    except KeyError:
        raise KeyError(f"unknown probe grid {grid!r}; known: {sorted(GRIDS)}") from None


def expand(grid: ProbeGrid, uses: tuple[str, ...]) -> list[ProbeConfig]:
    """Cross the grid's lists for the fields a probe ``uses``; other fields keep their defaults.

    Why per probe: a linear probe has no hidden layer or dropout, so crossing those would train
    identical configs several times.
    """
    fields = [f for f in ("lr", "steps", "weight_decay", "dropout", "hidden", "k") if f in uses]
    values = [getattr(grid, f) for f in fields]
    out = [ProbeConfig(**dict(zip(fields, combo, strict=True))) for combo in itertools.product(*values)]
    return out or [ProbeConfig()]
