"""The one error type of checkpoint handling."""


class CheckpointError(RuntimeError):
    """Weights that cannot be found, read or matched to a configuration; the message says why and what to do."""
