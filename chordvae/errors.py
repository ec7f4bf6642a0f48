"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class ChordVAEError(Exception):
    """A mistake in the user's input or environment, with a message that says what to do."""


class DataError(ChordVAEError):
    """A data file or folder is missing, unreadable or malformed."""


class TrainingDiverged(ChordVAEError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); ``run_dir`` holds the checkpoint of the last finished
    epoch when ``resumable``, and ``chordvae train --resume RUN_DIR`` continues from it."""

    def __init__(self, run_dir: str, resumable: bool):
        super().__init__(run_dir)
        self.run_dir, self.resumable = run_dir, resumable
