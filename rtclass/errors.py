"""Exceptions a user can cause. Each message says what was wrong and what to do."""


class RtclassError(Exception):
    """Base class: the CLI prints the message and exits with status 2."""


class ConfigError(RtclassError):
    """A configuration value is unknown, of the wrong type or out of range."""


class InputError(RtclassError):
    """A file, stream or message that rtclass cannot read as given."""


class StreamNotFoundError(InputError):
    """A live stream could not be found or connected to."""


class PublishError(RtclassError):
    """An output (socket, outlet, folder) could not be opened."""


class ModelError(RtclassError):
    """A classifier model is missing, corrupted or does not fit the features."""
