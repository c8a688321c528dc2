#!/usr/bin/env bash
# Train the default weights on the GPU machine: one prepared call (see docs/TRAINING.md).
#
# The training data travels in two packs because one call carries at most 64 MiB with the repo:
#   here:    bash tools/train_on_device.sh check     (sizes of both calls against the 64 MiB limit)
#   call 1:  carry [".traindata/pack_a"]                               bash tools/train_on_device.sh stage
#   call 2:  carry [".traindata/pack_b", ".traindata/val", ".whl"]    bash tools/train_on_device.sh train 7
# Call 2 must follow within the machine's idle window (30 s): a warm machine keeps pack_a (in the
# checkout, and a copy under /tmp). If pack_a is gone, call 2 trains on pack_b alone and says so.
# Results land in $OUT (or runs/device off the GPU machine): best.pt, final.pt, resume.pt.part*,
# history.json, log.json, train.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-train}
minutes=${2:-7}
stage=/tmp/transpose_live_stage
out=${OUT:-runs/device}
py=${PYTHON:-python3}

mib() { awk '{s += $1} END {printf "%.1f", s / 1048576}'; }
tree_bytes() {   # what every call sends: tracked files and untracked files git does not ignore
    { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null
}
carried() { find "$@" -type f -exec stat -c %s {} + 2>/dev/null; }

case "$mode" in
check)   # run HERE before the calls: each call must stay under 64 MiB
    tree=$(tree_bytes | mib)
    c1=$( { tree_bytes; carried .traindata/pack_a; } | mib)
    c2=$( { tree_bytes; carried .traindata/pack_b .traindata/val .whl; } | mib)
    echo "repo tree ${tree} MiB; call 1 (stage, pack_a) ${c1} MiB; call 2 (train, pack_b + val + .whl) ${c2} MiB; limit 64"
    for f in .traindata/pack_a/manifest.json .traindata/pack_b/manifest.json \
             .traindata/val/coco_mini/person_keypoints.json checkpoints/tp_m_a4_192x144.resume.pt; do
        [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }
    done
    ls .whl/pycocotools-*.whl >/dev/null 2>&1 || { echo "missing .whl/pycocotools-*.whl" >&2; exit 2; }
    awk -v a="$c1" -v b="$c2" 'BEGIN {exit !(a < 63.5 && b < 63.5)}' || { echo "too big: lower SPLIT or quality" >&2; exit 2; }
    exit 0 ;;
stage)
    [ -f .traindata/pack_a/manifest.json ] || { echo "no .traindata/pack_a here: carry it" >&2; exit 2; }
    mkdir -p "$stage" && rm -rf "$stage/pack_a" && cp -r .traindata/pack_a "$stage/pack_a"
    du -sh "$stage/pack_a"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
    exit 0 ;;
train) ;;
*) echo "usage: $0 check | stage | train [MINUTES]" >&2; exit 2 ;;
esac

# pycocotools (the eval) is not on the GPU machine: install the carried wheel
if ! "$py" -c "import pycocotools" 2>/dev/null; then
    ls .whl/pycocotools-*.whl >/dev/null 2>&1 || { echo "pycocotools missing and no .whl/ carried" >&2; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 2
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

packs=()
[ -f .traindata/pack_b/manifest.json ] && packs+=(--pack .traindata/pack_b)
if [ -f .traindata/pack_a/manifest.json ]; then packs+=(--pack .traindata/pack_a)
elif [ -f "$stage/pack_a/manifest.json" ]; then packs+=(--pack "$stage/pack_a")
else echo "WARNING: pack_a is missing (was call 1 more than 30 s earlier?): training without it" >&2; fi
[ ${#packs[@]} -gt 0 ] || { echo "no training pack found (.traindata/pack_b, pack_a)" >&2; exit 2; }
val=.traindata/val/coco_mini/person_keypoints.json:.traindata/val/coco_mini/images

mkdir -p "$out"
workers=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
PYTHONUNBUFFERED=1 "$py" tools/train_on_device.py "${packs[@]}" --val "$val" --out "$out" \
    --minutes "$minutes" --workers "$workers" ${TRAIN_ARGS:-} 2>&1 | tee "$out/train.log"
rc=${PIPESTATUS[0]}
ls -la "$out"
exit "$rc"
