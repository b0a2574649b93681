"""Studies: typed configs → loops over :func:`musicrep.evaluate.run_unit` → rows in the one results table.

``robustness`` (noise, codecs, effects on the test audio), ``augmentation`` (labelled budgets × natural
augmentation × sample weighting), ``layerwise`` (every layer, the learned layer mix, layer CKA),
``limited-data`` (learning curves over pretraining minutes, random twins, handcrafted baselines),
``finetune`` (labelled budgets: fine-tuning vs frozen embeddings + probe vs kNN). Each is
one file registering itself in :data:`STUDIES`; :func:`load_study` reads a config or a preset.
"""

from musicrep.studies.base import PRESETS, STUDIES, RenderedTask, StudyConfig, load_study

# the study modules register themselves on import
from musicrep.studies import augmentation, layerwise, limited_data, robustness  # noqa: E402,F401
from musicrep.studies import finetune  # noqa: E402,F401

__all__ = ["PRESETS", "STUDIES", "RenderedTask", "StudyConfig", "load_study"]
