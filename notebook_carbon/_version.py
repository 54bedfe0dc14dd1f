"""The package version: one place, read by the build (hatch), the package root and the statements."""

__version__ = "0.1.0"
