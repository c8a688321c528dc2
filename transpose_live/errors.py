"""One error type for everything a user can get wrong: the CLI prints its message on one line."""


class TransposeLiveError(Exception):
    """Bad input at a boundary (file, URL, option, checkpoint). The message is shown to the user as is."""


class CheckpointError(TransposeLiveError):
    """A checkpoint that does not load strictly into the chosen model."""


class OutputClosed(TransposeLiveError):
    """The program reading an output went away (`transpose-live video in.mp4 --json - | head -3`): the run
    stops as if asked to, the other outputs are finished, and it is not a failure."""
