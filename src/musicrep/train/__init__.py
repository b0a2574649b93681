"""Training: ONE trainer for pretraining (and later fine-tuning) any musicrep encoder with any objective.

- :mod:`musicrep.train.batch` — :class:`Batch`, what a step consumes;
- :mod:`musicrep.train.data` — the pool / a task → cached log-mel (or waveform) → budgeted, seeded crops;
- :mod:`musicrep.train.objectives` — registry of ``(encoder, batch) → loss`` (supervised, SimCLR, masked,
  BEST-RQ) and mixup;
- :mod:`musicrep.train.finetune` — fine-tuning (the same trainer, objective ``finetune``) and the fine-tuned
  checkpoint as a classifier (:func:`~musicrep.train.finetune.load_predictor`);
- :mod:`musicrep.train.trainer` — the loop: AdamW, warm-up + cosine, checkpoints that resume bit for bit,
  DDP under ``torchrun``; its output folder is a representation (``weights=DIR``).
"""

from musicrep.train.batch import Batch

__all__ = ["Batch"]
