"""botunet: find botnet sessions in packet captures from their first bytes."""

__version__ = "0.1.0"

__all__ = ["__version__"]
