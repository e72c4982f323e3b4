"""The package version, in a module of its own (run files record it; nothing here imports anything)."""

__version__ = "0.1.0"
