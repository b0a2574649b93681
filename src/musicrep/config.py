"""Typed experiment configs (pydantic), loaded from YAML. Unknown keys are errors that name the key.

Takes a YAML file (or dict) and gives a validated model: :class:`EvaluateConfig` for
``musicrep evaluate``. Every field has a description, so ``musicrep evaluate --help-config`` and the
docs can list them; the resolved config (defaults filled in) is saved beside every result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from musicrep.embed import WindowConfig
from musicrep.util import read_yaml_mapping, validation_problems

__all__ = ["ConfigError", "PRETRAINED_SETTINGS", "RepresentationConfig", "EvaluateConfig", "available_pretrained",
           "load_config"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is invalid; the message names the file and each offending key."""


class RepresentationConfig(BaseModel):
    """One representation to evaluate: a registry name plus constructor settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Registry name (see `musicrep reps list`), e.g. mfcc, vgg, crepe.")
    config: dict[str, Any] = Field(default_factory=dict, description="Constructor settings, e.g. {size: small, "
                                   "seed: 0} for a random twin or {weights: ckpt.safetensors} for a checkpoint.")
    label: str | None = Field(None, description="Name in results and leaderboards (default: name + settings).")
    budget_minutes: float | None = Field(None, description="Pretraining budget behind these weights, if any.")
    tasks: list[str] | None = Field(None, description="Task names to evaluate this representation on (default: "
                                    "all), e.g. [pitch] for a pitch tracker's embeddings.")
    probes: list[str] | None = Field(None, description="Probes for this representation only (default: the "
                                     "config's probes), e.g. [keyprofile] for a zero-shot key baseline.")

    @field_validator("probes")
    @classmethod
    def _known_probes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else EvaluateConfig._known_probes(v)

    @field_validator("name")
    @classmethod
    def _known_name(cls, v: str) -> str:
        from musicrep import models

        if not v.startswith("hear:") and v not in models.names():
            raise ValueError(f"unknown representation {v!r}; `musicrep reps list` shows them all")
        return v

    def build(self) -> Any:
        """The representation, or :class:`ConfigError` naming it when its ``config`` is wrong or it is not
        available here (a missing weights file stays a ``WeightsError`` naming the file)."""
        from musicrep import models

        try:
            return models.get(self.name, **self.config)
        except models.WeightsError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            msg = exc.args[0] if exc.args else exc
            raise ConfigError(f"representation {self.display}: {msg}") from None

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        extras = "-".join(f"{v}" if k in ("size",) else f"{k}{v}" for k, v in sorted(self.config.items())
                          if k not in ("weights",))
        if "weights" in self.config:
            extras = (extras + "-" if extras else "") + Path(str(self.config["weights"])).stem
        return f"{self.name}-{extras}" if extras else self.name


class EvaluateConfig(BaseModel):
    """``musicrep evaluate``: representations × tasks × probes → one tidy ``results.csv``."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(Path("runs/evaluate"), description="Folder for results.csv, the leaderboard and logs.")
    store: Path | None = Field(None, description="Embedding store folder (default: OUT/store). Share it between "
                               "runs to reuse embeddings.")
    tasks: list[Path] = Field(description="Task folders (task.yaml + items.csv), e.g. data/demo/key.")
    representations: list[RepresentationConfig] = Field(description="What to evaluate.")
    probes: list[str] = Field(default_factory=lambda: ["linear", "mlp"], description="Probe names (linear, mlp, "
                              "knn, knn-index, centroid, keyprofile).")
    grid: str = Field("fast", description="Probe hyper-parameter grid: faster | fast | default.")
    layers: Literal["all", "last", "weighted"] = Field("all", description="all: one result per layer (layer scan); "
                                                       "last: the last layer only; weighted: a learned softmax-"
                                                       "weighted sum of layers.")
    seeds: list[int] = Field(default_factory=lambda: [0], description="Probe seeds (each a row).")
    window: WindowConfig = Field(default_factory=WindowConfig, description="Default windowing; a task's "
                                 "window_seconds/hop_seconds override it.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for the 95 % CI (0: no CI).")
    executor: str = Field("local", description="Extraction executor: local | ray | ray:ADDRESS.")
    batch_size: int = Field(16, gt=0, description="Windows per forward pass during extraction.")
    folds: int = Field(0, ge=0, description="0: fit on each task's train (+ valid) split, score its test split. "
                       "k >= 3: k-fold cross-validation over all of a task's items instead (its splits pooled; "
                       "fold f tests, fold f+1 validates, the rest trains), so every item is scored once by a "
                       "probe that never saw it — for small sets, whose test split is too small for a useful CI.")

    @field_validator("probes")
    @classmethod
    def _known_probes(cls, v: list[str]) -> list[str]:
        from musicrep.probe import PROBES

        bad = [p for p in v if p not in PROBES]
        if bad:
            raise ValueError(f"unknown probe(s) {bad}; choose from {sorted(PROBES)}")
        return v

    @field_validator("grid")
    @classmethod
    def _known_grid(cls, v: str) -> str:
        from musicrep.probe.grids import GRIDS

        if v not in GRIDS:
            raise ValueError(f"unknown grid {v!r}; choose one of {sorted(GRIDS)}")
        return v

    @field_validator("folds")
    @classmethod
    def _enough_folds(cls, v: int) -> int:
        if v in (1, 2):
            raise ValueError("give 0 (use the task's splits) or at least 3 folds (a test, a validation and a "
                             "training fold)")
        return v

    @model_validator(mode="after")
    def _unique_labels(self) -> EvaluateConfig:
        labels = [r.display for r in self.representations]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"representations share the label(s) {dup}; give each a distinct `label:` so their "
                             "results do not merge")
        return self

    def resolve_paths(self, base: Path) -> EvaluateConfig:
        """Make relative paths relative to ``base`` (the config file's folder or the working directory)."""
        upd: dict[str, Any] = {
            "out": self.out if self.out.is_absolute() else base / self.out,
            "tasks": [t if t.is_absolute() else base / t for t in self.tasks],
        }
        if self.store is not None and not self.store.is_absolute():
            upd["store"] = base / self.store
        return self.model_copy(update=upd)

    @property
    def layer_choice(self) -> int | str:
        """``layers`` as a probe's layer choice: ``"all"`` (scan), ``"weighted"`` (mix) or ``-1`` (last)."""
        return {"all": "all", "weighted": "weighted", "last": -1}[self.layers]

    @property
    def store_dir(self) -> Path:
        return self.store if self.store is not None else self.out / "store"


#: How an offline pretrained model is evaluated when it is added by default (``make demo``, ``musicrep
#: compare``): its constructor settings and label, by registry name (``{}`` for the rest). Why crepe at its tiny
#: capacity and a 50 ms hop: the full model at 10 ms is far slower, and a probe reads a timeline mean anyway.
PRETRAINED_SETTINGS: dict[str, dict[str, Any]] = {
    "crepe": {"config": {"capacity": "tiny", "hop": 800}, "label": "crepe-tiny"},
}


def available_pretrained(also: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Offline pretrained representations that can run here, as ``representations:`` entries of a config.

    Every registry entry of family ``pretrained`` (weights inside installed wheels) plus the names in
    ``also``, minus those in ``skip``, whose ``available()`` check passes, each with its
    :data:`PRETRAINED_SETTINGS` (e.g. ``{"name": "crepe", "config": {...}, "label": "crepe-tiny"}``).
    """
    from musicrep import models

    return [{"name": e.name, **PRETRAINED_SETTINGS.get(e.name, {})} for e in models.entries()
            if (e.family == "pretrained" or e.name in also) and e.name not in skip and e.available()[0]]


def _format_errors(source: str, exc: ValidationError) -> str:
    return "\n".join([f"{source}: invalid config"] + [f"  {k}: {m}" for k, m in validation_problems(exc)])


def load_config(source: str | os.PathLike[str] | dict[str, Any], model: type[M] = EvaluateConfig) -> M:  # type: ignore[assignment]
    """Read YAML (a path) or a dict into ``model``; raise :class:`ConfigError` naming each bad key."""
    if isinstance(source, dict):
        data, name = source, "config"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        data = read_yaml_mapping(path, ConfigError, "settings")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(name, exc)) from None
