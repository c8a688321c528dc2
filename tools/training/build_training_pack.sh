#!/usr/bin/env bash
# Build the training packs that tools/training/train_on_device.sh takes to the GPU machine (see docs/TRAINING.md):
#   .traindata/pack_a   LSPET images [0, SPLIT) (face joints filled by the teacher) + coco_train_256
#   .traindata/pack_b   LSPET images [SPLIT, end) + the full-resolution COCO train sets + the pseudo labels
#   .traindata/val      coco_mini (the held-out evaluation set, original JPEGs)
# each under what one device call carries beside the repo. Needs ../shared/data (or SHARED=...), the
# merged LSPET labels .traindata/pseudo/lspet_filled.json (made from data/pseudo/lspet_face.json.gz when
# absent), the teacher labels data/pseudo/tta/*.json and their video frames under .traindata/frames
# (tools/training/pseudo_label.py; commands in docs/TRAINING.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SHARED:-../shared}/data
P=.traindata/pseudo
F=.traindata/frames
SPLIT=${SPLIT:-4200}   # balances the two calls (bash tools/training/train_on_device.sh check)
py=${PYTHON:-python}
ID=$S/coco_val2017_ids.txt
# webp q65; each image scaled so its smallest person's training crop is at most 192 px tall (the model's
# input height: it cannot see more) and cut to its persons' crops grown 1.6x (room for scale/rotation)
small=(--format webp --quality "${QUALITY:-65}" --target-crop 192)
coco=(--exclude-ids "$ID")   # LSPET's image ids are its own numbers (1..10000), not COCO ids: not checked
crop=(--crop-margin 1.6)
pack() { nice -n 10 "$py" tools/training/pack_training_set.py --overwrite "$@"; }

# the LSPET labels with the teacher's face joints: rebuilt from the repository's delta (tools/training/fill_delta.py)
# unless a fill of this checkout is there
if [ ! -f "$P/lspet_filled.json" ] && [ -f data/pseudo/lspet_face.json.gz ]; then
    "$py" tools/training/fill_delta.py apply $S/lspet/person_keypoints.json data/pseudo/lspet_face.json.gz "$P/lspet_filled.json"
fi
[ -f "$P/lspet_filled.json" ] || { echo "no $P/lspet_filled.json: run the LSPET fill first" >&2; exit 2; }
# the val set is coco_mini untouched: its json whole (COCOeval ignores a pose that matches only an
# unlabelled or crowd person; without them such a pose counts as a false positive: AP 0.299 instead of
# 0.319) and the original files of the images with a labelled person (the only ones a GT-box eval reads)
rm -rf .traindata/val && mkdir -p .traindata/val/coco_mini/images
cp $S/coco_mini/person_keypoints.json .traindata/val/coco_mini/
"$py" - "$S/coco_mini" .traindata/val/coco_mini <<'PY'
import json, shutil, sys
src, dst = sys.argv[1:3]
data = json.load(open(f"{src}/person_keypoints.json"))
labelled = {a["image_id"] for a in data["annotations"] if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0}
for im in data["images"]:
    if im["id"] in labelled:
        shutil.copyfile(f"{src}/images/{im['file_name']}", f"{dst}/images/{im['file_name']}")
print(f"val: coco_mini json + {len(labelled)} images")
PY
pack --out .traindata/pack_a "${small[@]}" --slice 0:$SPLIT --source lspet_a=$P/lspet_filled.json:$S/lspet/images
pack --out .traindata/pack_a "${small[@]}" "${coco[@]}" "${crop[@]}" --weight 0.7 \
    --source coco_train_256=$S/coco_train_256/person_keypoints.json:$S/coco_train_256/images
pack --out .traindata/pack_b "${small[@]}" --slice $SPLIT: --source lspet_b=$P/lspet_filled.json:$S/lspet/images
pack --out .traindata/pack_b "${small[@]}" "${coco[@]}" "${crop[@]}" \
    --source coco128_train=$S/coco128_train/person_keypoints.json:$S/coco128_train/images \
    --source tiny_coco_train=$S/tiny_coco_train/person_keypoints.json:$S/tiny_coco_train/images \
    --source coco_train_more=$S/coco_train_more/person_keypoints.json:$S/coco_train_more/images
# teacher labels (TTA): soft joint weights come from their keypoint_scores
args=()
for name in tiny_coco_train_unlabelled:$S/tiny_coco_train/images coco128_train_detected:$S/coco128_train/images \
            vtest:$F bikes:$F images:$F; do
    json=data/pseudo/tta/${name%%:*}.json
    [ -f "$json" ] && args+=(--source "pseudo_${name%%:*}=$json:${name#*:}")
done
[ ${#args[@]} -gt 0 ] && pack --out .traindata/pack_b "${small[@]}" "${coco[@]}" "${crop[@]}" "${args[@]}"
du -sh .traindata/pack_a .traindata/pack_b .traindata/val
