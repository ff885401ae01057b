"""The package version (its own module, so a module needs no import of the package root for it)."""

__version__ = "0.1.0"
