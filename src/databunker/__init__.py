"""Databunker: a vault for personal data."""

__version__ = "0.1.0"
