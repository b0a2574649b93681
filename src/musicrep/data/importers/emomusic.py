"""EmoMusic (1000 songs): arousal and valence regression on the MediaEval 2013 sets."""

from __future__ import annotations

from pathlib import Path

from musicrep.data.importers.base import (
    ImportedItem,
    ImportedTask,
    ImportOptions,
    drop_leaky_groups,
    need,
    read_csv,
    register,
    tertiles,
)
from musicrep.data.splits import grouped_split


@register("emomusic", "EmoMusic (1000 songs): arousal and valence regression tasks, MediaEval 2013 sets")
def _emomusic(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """EmoMusic / "1000 songs for emotional analysis of music" (tasks ``arousal`` and ``valence``,
    regression on the static per-song means; r²).

    Expected layout::

        ROOT/clips_45seconds/<song_id>.mp3
        ROOT/annotations/static_annotations.csv   song_id, mean_arousal, std_arousal, mean_valence, std_valence
        ROOT/annotations/songs_info.csv           song_id, file_name, Artist, …, Mediaeval 2013 set

    Split: the MediaEval 2013 ``evaluation`` set is test; the ``development`` set is train with 1/6
    held out as valid (grouped by artist, deterministic) — the usual 619/124/187 protocol size. Without
    songs_info.csv, a stratified 80/10/10 split on arousal tertiles is made. Targets are on the 1–9 scale.
    """
    ann_dir = root / "annotations" if (root / "annotations").exists() else root
    static = need(ann_dir / "static_annotations.csv", "static_annotations.csv",
                   "give the EmoMusic root holding annotations/ and clips_45seconds/")
    info_rows = {r["song_id"]: r for r in read_csv(ann_dir / "songs_info.csv")} if (ann_dir / "songs_info.csv").exists() else {}
    clips = root / "clips_45seconds" if (root / "clips_45seconds").exists() else root
    items: list[ImportedItem] = []
    for r in read_csv(static):
        sid = r["song_id"]
        info = info_rows.get(sid, {})
        fname = info.get("file_name") or f"{sid}.mp3"
        artist = info.get("Artist", "").strip().lower()
        set_name = next((v for k, v in info.items() if k.lower().startswith("mediaeval")), "").lower()
        split = "test" if set_name.startswith("eval") else "train" if set_name.startswith("dev") else ""
        items.append(ImportedItem(sid, clips / fname, split,
                                  [float(r["mean_arousal"]), float(r["mean_valence"])], artist))
    if items and all(it.split for it in items):
        dev = [it for it in items if it.split == "train"]
        tert = tertiles([it.labels[0] for it in dev])
        split = grouped_split([it.id for it in dev], tert, [it.group or it.id for it in dev],
                              fractions=(5, 1, 0), seed=opts.seed)
        for it in dev:
            it.split = split[it.id]
        prov = {"split": "MediaEval 2013: evaluation = test; development = train + 1/6 valid (by artist)"}
    else:
        tert = tertiles([it.labels[0] for it in items])
        split = grouped_split([it.id for it in items], tert, [it.group or it.id for it in items],
                              fractions=opts.fractions, seed=opts.seed)
        for it in items:
            it.split = split[it.id]
        prov = {"split": f"stratified 80/10/10 on arousal tertiles, seed {opts.seed} (no songs_info.csv)"}
    tasks: dict[str, ImportedTask] = {}
    for col, target in enumerate(("arousal", "valence")):
        its = [ImportedItem(it.id, it.path, it.split, [it.labels[col]], it.group) for it in items]
        task = ImportedTask(f"emomusic_{target}", "regression", [], its, ["r2"],
                            {"dataset": "EmoMusic (MediaEval 2013)", "target": f"mean {target}",
                             "scale": "1-9", **prov})
        drop_leaky_groups(task)
        tasks[target] = task
    return tasks
