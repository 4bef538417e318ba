"""Clearline: the operations system for creator programs that pay only for sales."""

__version__ = "0.1.0"
