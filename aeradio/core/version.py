"""The package version, in one place (the root package and every file writer use it)."""

__version__ = "0.1.0"
