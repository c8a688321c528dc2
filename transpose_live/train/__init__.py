"""Training TransPose on COCO-format keypoints (loop, data) and measuring it: COCO keypoint AP with pycocotools
and the paper's protocol (evaluate), object keypoint similarity and OKS-NMS (oks).

May use: pose, detect, media, model and the root vocabulary. Never: live, monitor, bench, cli, ui.
"""
