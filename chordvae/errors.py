"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class ChordVAEError(Exception):
    """A mistake in the user's input or environment, with a message that says what to do."""


class DataError(ChordVAEError):
    """A data file or folder is missing, unreadable or malformed."""


class TrainingDiverged(ChordVAEError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
