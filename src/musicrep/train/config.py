"""``musicrep pretrain`` settings: :class:`PretrainConfig` (pydantic; a typo names the key) and its presets.

Takes a YAML file, a packaged preset (``src/musicrep/presets/pretrain/{smoke,laptop,paper}.yaml``) and
command-line overrides; gives one validated :class:`PretrainConfig`. The resolved config (defaults filled
in) is saved as ``OUT/config.yaml`` beside every checkpoint, and a resumed run must match it.

Presets: ``smoke`` (CI, seconds), ``laptop`` (an encoder's small config in ≤ 30 min on 2 CPU cores),
``paper`` (the seeds' settings: lr 2e-4, 5k warm-up steps then cosine to 0 at 200k, batch 512, a
3 × 4096 projector; it builds and runs a step here, but is meant for a bigger machine).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from musicrep.util import read_yaml_mapping, validation_problems

__all__ = ["FINETUNE_PRESETS", "PRESETS", "FinetuneConfig", "PretrainConfig", "PretrainConfigError", "load_finetune",
           "load_pretrain", "preset_data"]

PRESETS = ("smoke", "laptop", "paper", "musicrep-small")


class PretrainConfigError(ValueError):
    """A pretraining config (file, preset, option or resumed run) is invalid; the message names the key/file."""


class PretrainConfig(BaseModel):
    """``musicrep pretrain``: one encoder × one objective × one budget of a pool (or a labelled task)."""

    # protected_namespaces=(): the YAML key `model_config` (the encoder's settings) is a field alias here
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="Encoder to train (registry name): vgg, musicnn, samplecnn, ast, tmae, "
                       "nfnet, conformer.")
    model_config_: dict[str, Any] = Field(default_factory=lambda: {"size": "small"}, alias="model_config",
                                          description="Encoder settings, e.g. {size: small}.")
    objective: str = Field(description="Objective (registry name): supervised, simclr, masked, bestrq.")
    objective_config: dict[str, Any] = Field(default_factory=dict, description="Objective settings (its own "
                                             "keys, e.g. temperature for simclr).")
    pool: Path | None = Field(None, description="Unlabelled pool folder (`musicrep data pool`): manifest.csv + "
                              "audio.")
    task: Path | None = Field(None, description="Or a task folder (task.yaml + items.csv): its training items; "
                              "labels for the supervised objective.")
    minutes: float | Literal["all"] = Field("all", description="Budget: minutes of audio drawn (nested) from the "
                                            "pool or task, or 'all'.")
    budget_seed: int = Field(0, description="Seed of the nested budget draw.")
    steps: int = Field(gt=0, description="Optimiser steps (independent of the budget: budgets differ only in "
                       "data).")
    batch_size: int = Field(64, gt=0, description="Global batch (split over DDP processes).")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW).")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps before the cosine decay to 0.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decoupled weight decay.")
    mixup: bool = Field(False, description="Mix each batch with itself shuffled (gains ~ Beta(5, 2)).")
    augment_fraction: float = Field(0.25, ge=0, le=1, description="Fraction of training crops given a natural "
                                    "augmentation (never validation).")
    augmentations: list[str] | None = Field(None, description="Deformation specs (musicrep.augment) to draw "
                                            "from; default: the natural ones.")
    crop_seconds: float = Field(3.0, gt=0, description="Crop length, seconds.")
    seed: int = Field(0, description="Seed of the encoder's initial weights, the crops and every random draw.")
    checkpoint_every: int = Field(1000, gt=0, description="Steps between checkpoints (and one at the end).")
    val_every: int = Field(1000, ge=0, description="Steps between validation losses (0: never).")
    val_batches: int = Field(4, ge=0, description="Fixed validation batches (held-out tracks, no augmentation).")
    log_every: int = Field(10, gt=0, description="Steps between rows of curves.csv and progress-bar updates.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")
    bf16: bool = Field(False, description="bfloat16 autocast of the forward pass.")
    compile: bool = Field(False, description="torch.compile the objective.")
    workers: int = Field(0, ge=0, description="DataLoader worker processes (0: batches built in the loop).")
    out: Path = Field(Path("runs/pretrain"), description="Checkpoint folder: a representation "
                      "({name: MODEL, config: {weights: OUT}}).")

    @field_validator("minutes")
    @classmethod
    def _positive(cls, v: float | str) -> float | str:
        if v != "all" and float(v) <= 0:
            raise ValueError("must be a positive number of minutes or 'all'")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> PretrainConfig:
        if self.pool is not None and self.task is not None:
            raise ValueError("give pool (unlabelled) or task (labelled), not both")
        return self

    @property
    def encoder_config(self) -> dict[str, Any]:
        """``model_config`` (named so in YAML; pydantic reserves the attribute)."""
        return dict(self.model_config_)

    def data_options(self) -> dict[str, Any]:
        """Extra :class:`musicrep.train.data.TrainData` settings (fine-tuning's per-class budget); none here."""
        return {}

    def objective_settings(self) -> dict[str, Any]:
        """What the objective is built with: ``objective_config`` (fine-tuning adds ``unfreeze``)."""
        return dict(self.objective_config)

    def resolved(self) -> dict[str, Any]:
        """The config as plain YAML-able data, defaults filled in (what ``OUT/config.yaml`` holds)."""
        return self.model_dump(mode="json", by_alias=True)

    def resolve_paths(self, base: Path) -> PretrainConfig:
        """Relative ``pool``, ``task`` and ``out`` become relative to ``base``."""
        upd = {k: base / v for k in ("pool", "task", "out") if (v := getattr(self, k)) is not None
               and not Path(v).is_absolute()}
        return self.model_copy(update=upd)


class FinetuneConfig(PretrainConfig):
    """``musicrep finetune``: an encoder (from a checkpoint's weights, or untrained) + a task head trained on a
    labelled task's training split (a budget of N items per class, or all), only its last N blocks unfrozen.

    The same trainer, data and checkpoint folder as pretraining (:class:`PretrainConfig`'s loop settings);
    the objective is ``finetune`` (the supervised loss with frozen blocks). Defaults differ where fine-tuning
    differs: a smaller learning rate (1e-4: the weights are already trained), no augmentation (the probes it
    is compared with see the plain items), validation on the task's own ``valid`` split.
    """

    objective: Literal["finetune"] = Field("finetune", description="Always finetune (the supervised loss with "
                                           "frozen blocks); its head settings go in objective_config.")
    task: Path = Field(description="Labelled task folder (task.yaml + items.csv): trains on its train split.")
    weights: Path | None = Field(None, description="Starting checkpoint: a `musicrep pretrain` (or finetune) "
                                 "folder, loaded as models.get(model, weights=DIR), or a shipped model's name "
                                 "(musicrep-small); none: untrained weights.")
    unfreeze: Literal["all"] | int = Field("all", description="'all', or train only the last N blocks of the "
                                           "encoder (one per layer) and the head.")
    per_class: int | None = Field(None, gt=0, description="Labelled budget: training items per class (nested, "
                                  "musicrep.data.subset); none: every training item.")
    val_split: Literal["valid", "test"] | None = Field("valid", description="Task split the validation loss is "
                                                       "measured on; none: ~2 % of the training items held out.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate (AdamW).")
    augment_fraction: float = Field(0.0, ge=0, le=1, description="Fraction of training crops given a natural "
                                    "augmentation (default none: the probes it is compared with see plain items).")
    out: Path = Field(Path("runs/finetune"), description="Checkpoint folder: a representation "
                      "({name: MODEL, config: {weights: OUT}}) and, with head.safetensors, a classifier.")

    @model_validator(mode="after")
    def _one_budget(self) -> FinetuneConfig:
        if self.pool is not None:
            raise ValueError("fine-tuning trains on a labelled task: give task, not pool")
        if self.per_class is not None and self.minutes != "all":
            raise ValueError("give one budget: per_class or minutes, not both")
        if "unfreeze" in self.objective_config:
            raise ValueError("set unfreeze at the top level, not in objective_config")
        if isinstance(self.unfreeze, int) and self.unfreeze < 0:
            raise ValueError("unfreeze: give 'all' or a number of blocks ≥ 0")
        return self

    @property
    def encoder_config(self) -> dict[str, Any]:
        cfg = dict(self.model_config_)
        return {**cfg, "weights": str(self.weights)} if self.weights is not None else cfg

    def data_options(self) -> dict[str, Any]:
        return {"per_class": self.per_class, "val_split": self.val_split}

    def objective_settings(self) -> dict[str, Any]:
        return {**self.objective_config, "unfreeze": self.unfreeze}

    def resolve_paths(self, base: Path) -> FinetuneConfig:
        from musicrep.models.shipped import SHIPPED

        cfg = super().resolve_paths(base)
        w = cfg.weights
        if w is not None and not Path(w).is_absolute() and not (str(w) in SHIPPED and not (base / w).exists()):
            cfg = cfg.model_copy(update={"weights": base / w})  # a shipped model's name stays a name
        return cfg  # type: ignore[return-value]


#: Presets of ``musicrep finetune`` (``presets/finetune/NAME.yaml``).
FINETUNE_PRESETS = ("smoke", "laptop")
#: Per command: its config model and packaged presets (``presets/<command>/NAME.yaml``).
_COMMANDS: dict[str, tuple[type[PretrainConfig], tuple[str, ...]]] = {
    "pretrain": (PretrainConfig, PRESETS), "finetune": (FinetuneConfig, FINETUNE_PRESETS)}


def _validate(data: dict[str, Any], source: str, command: str = "pretrain") -> PretrainConfig:
    try:
        return _COMMANDS[command][0].model_validate(data)
    except ValidationError as exc:
        lines = [f"  {k}: {m}" for k, m in validation_problems(exc)]
        raise PretrainConfigError("\n".join([f"{source}: invalid {command} config"] + lines)) from None


def preset_data(name: str, command: str = "pretrain") -> dict[str, Any]:
    """The packaged preset ``name`` of ``command`` (pretrain | finetune) as a dict (``presets/COMMAND/NAME.yaml``)."""
    presets = _COMMANDS[command][1]
    if name not in presets:
        raise PretrainConfigError(f"unknown preset {name!r} of musicrep {command}; choose one of {', '.join(presets)}")
    text = resources.files("musicrep.presets").joinpath(command, f"{name}.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text) or {})


def load_pretrain(source: str | os.PathLike[str] | dict[str, Any] | None = None, preset: str | None = None,
                  base: Path | None = None, **overrides: Any) -> PretrainConfig:
    """A :class:`PretrainConfig` from a YAML file (or dict), a preset, or both (the file's keys win over
    the preset's), then ``overrides`` (``None`` values ignored: options not given on the command line).

    Relative paths are taken from ``base`` (default: the working directory, as the CLI reads them).
    Raises :class:`PretrainConfigError` naming the file and every bad key.
    """
    return _load("pretrain", source, preset, base, overrides)


def load_finetune(source: str | os.PathLike[str] | dict[str, Any] | None = None, preset: str | None = None,
                  base: Path | None = None, **overrides: Any) -> FinetuneConfig:
    """A :class:`FinetuneConfig` as :func:`load_pretrain` makes a :class:`PretrainConfig` (file or dict, preset
    ``smoke | laptop``, overrides; default ``out``: ``runs/finetune-PRESET``)."""
    return _load("finetune", source, preset, base, overrides)  # type: ignore[return-value]


def _load(command: str, source: str | os.PathLike[str] | dict[str, Any] | None, preset: str | None,
          base: Path | None, overrides: dict[str, Any]) -> PretrainConfig:
    data: dict[str, Any] = preset_data(preset, command) if preset is not None else {}
    preset_objective = data.get("objective")
    name = f"preset {preset}" if preset is not None else "config"
    given: dict[str, Any] = {}
    if isinstance(source, dict):
        given = dict(source)
    elif source is not None:
        path = Path(source)
        if not path.is_file():
            raise PretrainConfigError(f"{path}: config file not found")
        given = read_yaml_mapping(path, PretrainConfigError, "settings")
        name = str(path)
    given.update({k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items() if v is not None})
    data.update(given)
    # a preset may size runs per encoder (`by_model: {musicnn: {steps: 300}}`): the small encoders differ
    # ~30x in step time on a CPU, and `laptop` promises each of them fits in ~30 minutes
    per_model = data.pop("by_model", None) or {}
    for key, value in dict(per_model.get(data.get("model"), {})).items():
        if key not in given:
            data[key] = value
    if preset is not None and data.get("objective") != preset_objective and "objective_config" not in given:
        # the preset's objective settings belong to the preset's objective (e.g. a SimCLR projector size);
        # another objective starts from its own defaults
        data["objective_config"] = {}
    if "out" not in data and preset is not None:
        data["out"] = str(Path("runs") / f"{command}-{preset}")
    return _validate(data, name, command).resolve_paths(base or Path.cwd())
