"""Stub of the few TensorFlow 1.x graph calls musicnn_worker.py makes (see ../README.md)."""

import contextlib
import types

import numpy as np

float32, bool = "float32", "bool"  # noqa: A001 - the names tf exposes


class Tensor:
    """A graph node: ``fn`` maps the fed batch to its value."""

    def __init__(self, fn):
        self.fn = fn


class Graph:
    def as_default(self):
        return contextlib.nullcontext()


def name_scope(name):
    return contextlib.nullcontext()


class _Session:
    def __init__(self, graph=None, config=None):
        pass

    def run(self, fetch, feed_dict=None):
        if not isinstance(fetch, list):
            return None  # the variable initialiser
        batch = next(v for v in feed_dict.values() if isinstance(v, np.ndarray))
        return [t.fn(batch) for t in fetch]


class _Saver:
    def restore(self, sess, path):
        pass


def _sigmoid(t):
    return Tensor(lambda b: 1.0 / (1.0 + np.exp(-t.fn(b))))


nn = types.SimpleNamespace(sigmoid=_sigmoid)
compat = types.SimpleNamespace(v1=types.SimpleNamespace(
    disable_eager_execution=lambda: None,
    placeholder=lambda dtype, shape=None: Tensor(lambda b: b),
    Session=_Session,
    ConfigProto=lambda **kw: kw,
    global_variables_initializer=lambda: None,
    train=types.SimpleNamespace(Saver=_Saver),
))
