"""define_model stub: logits, then the eight feature taps in musicnn's order (see ../README.md)."""

from tensorflow import Tensor

FRAME_LEVEL = {"timbral": 408, "temporal": 153, "cnn1": 64, "cnn2": 64, "cnn3": 64}
POOLED = {"mean_pool": 753, "max_pool": 753, "penultimate": 200}


def define_model(x, is_training, model, n_labels):
    def value(b):  # each patch is constant: its value
        return x.fn(b)[:, 0, 0]

    def frame_tap(scale, width):  # [N, T, C, 1], as musicnn's frame-level features
        return Tensor(lambda b: (scale * value(b))[:, None, None, None] + 0 * b[:, :, :1, None].repeat(width, 2))

    def pooled_tap(scale, width):  # [N, C]
        return Tensor(lambda b: (scale * value(b))[:, None].repeat(width, 1))

    taps = [frame_tap(i + 1, w) for i, w in enumerate(FRAME_LEVEL.values())]
    taps += [pooled_tap(len(taps) + i + 1, w) for i, w in enumerate(POOLED.values())]
    logits = Tensor(lambda b: value(b)[:, None].repeat(n_labels, 1))
    return (logits, *taps)
