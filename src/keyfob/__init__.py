"""Keyfob: two-factor authentication for a hosting portal and its SSH servers."""

__version__ = "0.1.0"
