#!/usr/bin/env bash
# The GPU path's device check in one call.
#
#   bash tools/device/device_check.sh prepare   # here, in the venv: writes .devcarry/ (~31 MB, git-ignored)
#   bash tools/device/device_check.sh run       # on the GPU machine, from the repository root, with .devcarry carried
#
# `prepare` makes the 1080p crowd clip (PyAV), writes the SSD detector's weights as a torch file (fp16; it runs
# on the GPU there), and records the SSD's boxes for the clip (the reference for the detector there, and the
# fallback where it cannot run). `run` needs only what
# the GPU machine has (torch, OpenCV, numpy, scipy); it writes device_check.json, summary.txt,
# profile.txt, log.txt, pytest.txt and nvidia-smi.txt under $OUT (or out/device_check). Extra arguments go to
# tools/device/device_check.py (e.g. --sections models,e2e).
set -uo pipefail
cd "$(dirname "$0")/../.."
what=${1:-run}
shift || true
case "$what" in
  prepare)
    mkdir -p .devcarry
    python tools/device/make_crowd_clip.py ../shared/data/videos/vtest.avi .devcarry/crowd_1080p.mp4 --seconds 10 || exit 1
    rm -f .devcarry/ssd_fp16.pb.xz           # the packed graph (OpenCV on the CPU there) no longer fits beside it
    python tools/device/export_ssd_torch.py .devcarry/ssd_torch_fp16.pt || exit 1
    python tools/device/device_check.py --record-boxes || exit 1
    du -sh .devcarry
    ;;
  run)
    out=${OUT:-out/device_check}
    mkdir -p "$out"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
    py=$(command -v python3 || command -v python)
    # the CUDA tests of the GPU path first (a minute at most), then the measurements
    timeout 120 "$py" -m pytest -q -p no:cacheprovider tests/test_gpu_path.py > "$out/pytest.txt" 2>&1
    echo "pytest tests/test_gpu_path.py: exit $? (see pytest.txt)"
    "$py" tools/device/device_check.py --out "$out" "$@" 2>&1 | tee "$out/log.txt"
    ;;
  *)
    echo "usage: bash tools/device/device_check.sh prepare|run [device_check.py options]" >&2
    exit 2
    ;;
esac
