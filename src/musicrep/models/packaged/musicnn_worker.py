"""Persistent MusiCNN worker: a script run by the TensorFlow venv's python, never imported by musicrep.

It runs in another interpreter (tensorflow-cpu, numpy<2, musicnn, librosa; see ``make musicnn-venv``), so it
imports nothing from musicrep and nothing that venv lacks. :mod:`musicrep.models.packaged.musicnn_tf`
starts it by file path as ``python musicnn_worker.py CONFIG_JSON``.

Protocol (JSON lines):

- ``argv[1]``: ``{"model": "MTT_musicnn"|"MSD_musicnn", "input_length": s, "input_overlap": s, "threads": n}``.
- The worker builds the graph and restores the checkpoint ONCE, then writes one reply line on stdout:
  ``{"ok": true}``, or ``{"ok": false, "error": TRACEBACK}`` and exits 1.
- Then, per stdin line ``{"wavs": [paths of 16 kHz wav files], "layers": [feature names], "out": "x.npz"}``,
  it writes ``out`` (key ``"{i}:{layer}"`` → ``[frames, C]`` for clip i) and replies one line
  (``{"ok": true}`` or an error as above, after which it keeps serving).
- EOF on stdin ends it. Anything TensorFlow or musicnn print goes to stderr, never into the reply channel.
"""

import json
import os
import sys
import traceback

#: musicnn's feature taps, in the order ``musicnn.models.define_model`` returns them after the logits
FEATURES = ["timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]
BATCH = 64  # patches per session.run


def main() -> None:
    # Run as a script, Python puts this file's folder first on sys.path; its sibling modules (wheel.py,
    # madmom.py, …) must not shadow the venv's packages of the same names.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != here]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever TF or musicnn print goes to stderr, never into the reply channel
    sys.stdout = sys.stderr

    def reply(**kw):
        proto.write(json.dumps(kw) + "\n")
        proto.flush()

    try:
        cfg = json.loads(sys.argv[1])
        import librosa
        import musicnn
        import numpy as np
        import tensorflow as tf
        from musicnn import configuration as config
        from musicnn import models
        from musicnn.extractor import batch_data  # musicnn's own log-mel front-end (float16 quantised)

        tf.compat.v1.disable_eager_execution()
        # the same patch framing as musicnn.extractor.extractor
        n_frames = librosa.time_to_frames(cfg["input_length"], sr=config.SR, n_fft=config.FFT_SIZE,
                                          hop_length=config.FFT_HOP) + 1
        overlap = n_frames if not cfg["input_overlap"] else librosa.time_to_frames(
            cfg["input_overlap"], sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP)
        labels = config.MTT_LABELS if "MTT" in cfg["model"] else config.MSD_LABELS
        graph = tf.Graph()
        with graph.as_default():
            with tf.name_scope("model"):  # variable names as in musicnn's checkpoints
                x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
                is_training = tf.compat.v1.placeholder(tf.bool)
                y, *feats = models.define_model(x, is_training, cfg["model"], len(labels))
                taggram = tf.nn.sigmoid(y)
            n = int(cfg.get("threads") or 0)  # 0: TensorFlow picks (all cores)
            sess = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(
                intra_op_parallelism_threads=n, inter_op_parallelism_threads=n))
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().restore(sess, os.path.dirname(musicnn.__file__) + "/" + cfg["model"] + "/")
        tensors = {**dict(zip(FEATURES, feats)), "taggram": taggram}
    except BaseException:
        reply(ok=False, error=traceback.format_exc())
        sys.exit(1)
    reply(ok=True)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            patches = [batch_data(w, n_frames, overlap)[0] for w in req["wavs"]]
            allp = np.concatenate(patches).astype(np.float32)
            fetch = [tensors[k] for k in req["layers"]]
            chunks = [sess.run(fetch, feed_dict={x: allp[i:i + BATCH], is_training: False})
                      for i in range(0, len(allp), BATCH)]
            res = [np.concatenate([c[j] for c in chunks]) for j in range(len(fetch))]
            out, start = {}, 0
            for i, p in enumerate(patches):
                for k, r in zip(req["layers"], res):
                    # each patch squeezed as musicnn's extractor does ([T, C, 1] -> [T, C]), then stacked:
                    # [patches * frames, C] for frame-level taps, [patches, C] for pooled ones
                    f = [np.squeeze(np.asarray(r[j], dtype=np.float32)) for j in range(start, start + len(p))]
                    out[f"{i}:{k}"] = np.concatenate([g.reshape(-1, g.shape[-1]) for g in f])
                start += len(p)
            np.savez(req["out"], **out)
            reply(ok=True)
        except Exception:
            reply(ok=False, error=traceback.format_exc())


if __name__ == "__main__":
    main()
