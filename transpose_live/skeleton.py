"""COCO-17 keypoints: names, limbs, flip pairs, drawing colours and OKS sigmas."""

import numpy as np

KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_JOINTS = 17

# (left, right) index pairs swapped by a horizontal flip
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


def _flip_index() -> tuple[int, ...]:
    idx = list(range(NUM_JOINTS))
    for a, b in FLIP_PAIRS:
        idx[a], idx[b] = b, a
    return tuple(idx)


FLIP_INDEX = _flip_index()  # joint i of a flipped image is joint FLIP_INDEX[i] of the original

LIMBS = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

LEFT_JOINTS = frozenset((1, 3, 5, 7, 9, 11, 13, 15))
RIGHT_JOINTS = frozenset((2, 4, 6, 8, 10, 12, 14, 16))

# BGR drawing colours by body side
COLOR_LEFT = (255, 128, 0)     # blue-ish
COLOR_RIGHT = (0, 128, 255)    # orange
COLOR_CENTER = (0, 220, 0)     # green


def side_color(joint: int) -> tuple[int, int, int]:
    if joint in LEFT_JOINTS:
        return COLOR_LEFT
    if joint in RIGHT_JOINTS:
        return COLOR_RIGHT
    return COLOR_CENTER


def limb_color(a: int, b: int) -> tuple[int, int, int]:
    if a in LEFT_JOINTS and b in LEFT_JOINTS:
        return COLOR_LEFT
    if a in RIGHT_JOINTS and b in RIGHT_JOINTS:
        return COLOR_RIGHT
    return COLOR_CENTER


# COCO keypoint OKS sigmas (pycocotools' COCOeval defaults)
OKS_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89],
    dtype=np.float64,
) / 10.0
