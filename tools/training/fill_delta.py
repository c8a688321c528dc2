#!/usr/bin/env python3
"""The teacher's part of a filled label set, apart from the human labels, so it can live in the repository.

    python tools/training/fill_delta.py export MERGED.json DELTA.json.gz     # what --merge-fill wrote -> the delta
    python tools/training/fill_delta.py apply ORIGINAL.json DELTA.json.gz OUT.json   # the delta back -> MERGED.json

`tools/training/pseudo_label.py --fill-missing` (the teacher filling LSPET's face joints; ~20-45 min of CPU) and
`--merge-fill` write one json of every labelled person: the human labels, plus, for persons the teacher
filled, the filled joints, their weights, the grown box and the agreement. The human labels belong to
the dataset (under ../shared, not copied into the repository); the rest is our teacher's output. The delta
holds only that rest, per filled person (by the original annotation id), and the fill's settings and
counts; `apply` rebuilds, from the original json and the delta, the json `--merge-fill` wrote (equal as
JSON: tests/test_fill_delta.py), so a session with the GPU machine packs LSPET without running the
teacher again (tools/training/build_training_pack.sh applies data/pseudo/lspet_face.json.gz when it finds no
filled json).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

try:
    import transpose_live  # noqa: F401
except ImportError:  # run from a checkout without installing: the repo root holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import KEYPOINT_NAMES

FORMAT = "transpose-live fill delta 1"
HUMAN_WEIGHT = 1.0          # --fill-missing's weight of a human label (a filled joint: the teacher's score)


def read_json(path: Path) -> dict:
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            return json.load(f)
    except FileNotFoundError:
        raise TransposeLiveError(f"file not found: {path}") from None


def write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":")) + "\n"
    if str(path).endswith(".gz"):
        # no time and no file name in the header: the same labels give the same bytes
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(text.encode())
    else:
        path.write_text(text)


def human_scores(keypoints: list) -> list[float]:
    return [HUMAN_WEIGHT if v > 0 else 0.0 for v in keypoints[2::3]]


def export(merged: dict) -> dict:
    """The delta of a --merge-fill json: per filled person its filled joints (x, y, weight), box, area and
    agreement; nothing of the human labels."""
    persons = {}
    for a in merged["annotations"]:
        if not a.get("filled"):
            continue
        joints = {}
        for name in a["filled"]:
            j = KEYPOINT_NAMES.index(name)
            joints[name] = [a["keypoints"][3 * j], a["keypoints"][3 * j + 1], a["keypoint_scores"][j]]
        persons[str(a["source_ann_id"])] = {"joints": joints, "bbox": a["bbox"], "area": a["area"],
                                            "teacher_agreement": a.get("teacher_agreement")}
    return {"format": FORMAT, "info": merged.get("info", {}), "persons": persons}


def apply(original: dict, delta: dict) -> dict:
    """The --merge-fill json from the original labels and a delta: every labelled, non-crowd person, filled
    where the delta has it, else its human labels at weight 1 (the face left unlabelled)."""
    if delta.get("format") != FORMAT:
        raise TransposeLiveError(f"not a fill delta (format {delta.get('format')!r}, expected {FORMAT!r})")
    persons = delta["persons"]
    anns = []
    used = 0
    for a in original["annotations"]:
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) == 0:
            continue
        out = dict(a, keypoint_scores=human_scores(a["keypoints"]), source_ann_id=a["id"])
        fill = persons.get(str(a["id"]))
        if fill is not None:
            used += 1
            keypoints, scores = list(a["keypoints"]), list(out["keypoint_scores"])
            for name, (x, y, weight) in fill["joints"].items():
                j = KEYPOINT_NAMES.index(name)
                if keypoints[3 * j + 2] > 0:
                    raise TransposeLiveError(f"annotation {a['id']}: the delta fills {name}, which the original "
                                             "labels already (a delta of another label set?)")
                keypoints[3 * j:3 * j + 3] = [x, y, 2]
                scores[j] = weight
            out.update(keypoints=keypoints, num_keypoints=sum(v > 0 for v in keypoints[2::3]),
                       keypoint_scores=scores,
                       filled=sorted(fill["joints"], key=KEYPOINT_NAMES.index),
                       teacher_agreement=fill["teacher_agreement"], bbox=fill["bbox"], area=fill["area"])
        anns.append(dict(out, id=len(anns) + 1))
    if used != len(persons):
        raise TransposeLiveError(f"{len(persons) - used} persons of the delta are not in the original json "
                                 "(a delta of another label set?)")
    return dict(original, info=delta.get("info", {}), annotations=anns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="MERGED.json -> DELTA (the teacher's part only)")
    ex.add_argument("merged", type=Path)
    ex.add_argument("delta", type=Path)
    apl = sub.add_parser("apply", help="ORIGINAL.json + DELTA -> the merged json")
    apl.add_argument("original", type=Path)
    apl.add_argument("delta", type=Path)
    apl.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.command == "export":
            delta = export(read_json(args.merged))
            write_json(delta, args.delta)
            print(f"{args.delta}: {len(delta['persons'])} filled persons")
        else:
            merged = apply(read_json(args.original), read_json(args.delta))
            write_json(merged, args.out)
            filled = sum(bool(a.get("filled")) for a in merged["annotations"])
            print(f"{args.out}: {len(merged['annotations'])} persons, {filled} with filled joints")
    except TransposeLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
