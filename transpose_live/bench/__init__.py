"""What `transpose-live bench` measures: the model's crops/s per backend and precision (models) and the whole
pipeline stage by stage and end to end on a video (pipeline).

May use: live and everything below it. Never: monitor, train, cli, ui.
"""
