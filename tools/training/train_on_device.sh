#!/usr/bin/env bash
# Train the default weights on the GPU machine: one prepared call (see docs/TRAINING.md).
#
# The training data travels in three calls because one call carries at most 64 MiB with the repo, and
# the limit counts each file's archive overhead (~0.5-1 KiB a file: pack_b's ~6,070 files add ~4 MiB):
#   here:    bash tools/training/train_on_device.sh check     (each call's size against the 64 MiB limit)
#   call 1:  carry [".traindata/pack_a"]             bash tools/training/train_on_device.sh stage
#   call 2:  carry [".traindata/val", ".whl"]        bash tools/training/train_on_device.sh stage
#   call 3:  carry [".traindata/pack_b"]             bash tools/training/train_on_device.sh train 8
# Each call must follow the last within the machine's idle window (30 s): a warm machine keeps what
# `stage` copied under /tmp. If pack_a is gone, the train call trains on pack_b alone and says so.
# Results land in $OUT (or runs/device off the GPU machine): best.pt, final.pt, resume.pt.part*,
# history.json, log.json, train.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-train}
minutes=${2:-7}
stage=/tmp/transpose_live_stage
out=${OUT:-runs/device}
py=${PYTHON:-python3}

mib() { awk '{s += $1} END {printf "%.1f", s / 1048576}'; }
# as the carry limit counts files: each plus a 512-byte header, rounded up to 512 bytes (tar)
tar_size() { awk '{print 512 + int(($1 + 511) / 512) * 512}'; }
tree_bytes() {   # what every call sends: tracked files and untracked files git does not ignore
    { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | tar_size
}
carried() { find "$@" -type f -exec stat -c %s {} + 2>/dev/null | tar_size; }

case "$mode" in
check)   # run HERE before the calls: each call must stay under 64 MiB
    tree=$(tree_bytes | mib)
    c1=$( { tree_bytes; carried .traindata/pack_a; } | mib)
    c2=$( { tree_bytes; carried .traindata/val .whl; } | mib)
    c3=$( { tree_bytes; carried .traindata/pack_b; } | mib)
    echo "repo tree ${tree} MiB; call 1 (stage pack_a) ${c1} MiB; call 2 (stage val + .whl) ${c2} MiB;" \
         "call 3 (train, pack_b) ${c3} MiB; limit 64"
    for f in .traindata/pack_a/manifest.json .traindata/pack_b/manifest.json \
             .traindata/val/coco_mini/person_keypoints.json checkpoints/tp_m_a4_192x144.resume.pt; do
        [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }
    done
    ls .whl/pycocotools-*.whl >/dev/null 2>&1 || { echo "missing .whl/pycocotools-*.whl" >&2; exit 2; }
    awk -v a="$c1" -v b="$c2" -v c="$c3" 'BEGIN {exit !(a < 63.5 && b < 63.5 && c < 63.5)}' \
        || { echo "too big: lower SPLIT or QUALITY of tools/training/build_training_pack.sh" >&2; exit 2; }
    exit 0 ;;
stage)   # copy what this call carried (pack_a, val, .whl) where the train call finds it
    mkdir -p "$stage"
    staged=0
    for item in .traindata/pack_a .traindata/val .whl; do
        [ -e "$item" ] || continue
        rm -rf "$stage/${item##*/}" && cp -r "$item" "$stage/${item##*/}" && staged=1
        du -sh "$stage/${item##*/}"
    done
    [ "$staged" = 1 ] || { echo "nothing to stage: carry .traindata/pack_a, or .traindata/val and .whl" >&2; exit 2; }
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
    exit 0 ;;
train) ;;
*) echo "usage: $0 check | stage | train [MINUTES]" >&2; exit 2 ;;
esac

# val and .whl: carried with this call, or staged by an earlier one
whl=.whl; [ -d "$whl" ] || whl=$stage/.whl
valdir=.traindata/val; [ -d "$valdir" ] || valdir=$stage/val
# pycocotools (the eval) is not on the GPU machine: install the carried wheel
if ! "$py" -c "import pycocotools" 2>/dev/null; then
    ls "$whl"/pycocotools-*.whl >/dev/null 2>&1 || { echo "pycocotools missing and no .whl/ carried or staged" >&2; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$whl"/*.whl \
        || exit 2
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

packs=()
[ -f .traindata/pack_b/manifest.json ] && packs+=(--pack .traindata/pack_b)
if [ -f .traindata/pack_a/manifest.json ]; then packs+=(--pack .traindata/pack_a)
elif [ -f "$stage/pack_a/manifest.json" ]; then packs+=(--pack "$stage/pack_a")
else echo "WARNING: pack_a is missing (was call 1 more than 30 s earlier?): training without it" >&2; fi
[ ${#packs[@]} -gt 0 ] || { echo "no training pack found (.traindata/pack_b, pack_a)" >&2; exit 2; }
[ -f "$valdir/coco_mini/person_keypoints.json" ] || { echo "no val set: carry or stage .traindata/val" >&2; exit 2; }
val=$valdir/coco_mini/person_keypoints.json:$valdir/coco_mini/images

mkdir -p "$out"
workers=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
PYTHONUNBUFFERED=1 "$py" tools/training/train_on_device.py "${packs[@]}" --val "$val" --out "$out" \
    --minutes "$minutes" --workers "$workers" ${TRAIN_ARGS:-} 2>&1 | tee "$out/train.log"
rc=${PIPESTATUS[0]}
ls -la "$out"
exit "$rc"
