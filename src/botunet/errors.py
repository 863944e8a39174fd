"""Exceptions raised by botunet; the CLI turns each into one error line and exit code 1."""


class BotunetError(Exception):
    """Base class of every error botunet reports to its user."""


class PcapFormatError(BotunetError):
    """A capture file cannot be read: not a capture, empty, or a corrupt record."""


class ConfigError(BotunetError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DatasetError(BotunetError):
    """A dataset folder is missing, incomplete or built with other settings."""


class CheckpointError(BotunetError):
    """A model folder cannot be loaded: missing, corrupt, or built for other inputs."""


class UnknownModelError(BotunetError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExportError(BotunetError):
    """An exported model cannot be written or does not agree with the original."""
