"""paper-digest: a scheduled digest of new research papers."""

__version__ = "0.1.0"
