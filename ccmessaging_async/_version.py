"""The package's version: the one place it is written (pyproject reads it from here).

Kept out of ``importlib.metadata``, which costs tens of milliseconds at import.
"""

__version__ = "0.1.0"
