"""Pretrained models from *local* weight files (nothing is ever downloaded), as ordinary representations.

Each takes audio ``[B, samples]`` at the model's sample rate and a path to weights on disk, and gives
``[B, L, T, H]`` with every transformer layer (or every output the module returns) as a layer. A missing or
mismatched file raises :class:`~musicrep.models.base.WeightsError` naming the file expected.

One file per model, each registering its names when :mod:`musicrep.models` loads the families:

``mert.py``          ``mert``          MERT / HuBERT / wav2vec2-style encoder, Hugging Face key names.
``musicfm.py``       ``musicfm``       MusicFM-25Hz (dB-mel → conv subsampling → rotary conformer).
``muq.py``           ``muq``           MuQ, the same front-end and conformer blocks as MusicFM.
``torch_module.py``  ``torchscript``   a TorchScript file; ``torch-module``: any ``nn.Module`` + weights.

Shared, with public names: ``weights.py`` (reading safetensors / weights-only ``.pt``/``.bin`` and JSON
configs, finding the file in a release folder, mapping a release's key names) and ``blocks.py`` (the
dB-mel front-end, the conv subsampling and the rotary conformer MusicFM and MuQ both use, and
:class:`~musicrep.models.checkpoints.blocks.HiddenStatesEncoder`).

Why re-implementations instead of depending on ``transformers`` or the official packages: the package stays
torch-only, and each inference path is small. The tests check each against ``transformers`` on tiny random
weights when it is installed.

This ``__init__`` imports nothing: the models are loaded by the registry (``musicrep.models._FAMILIES``).
"""
