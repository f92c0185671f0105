"""The public surface: everything exported is documented and nothing private leaks."""

from __future__ import annotations

import ccmessaging_async


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names exactly the public attributes of the package."""
    exported = ccmessaging_async.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(ccmessaging_async).items()
        if not name.startswith("_") and not isinstance(value, type(ccmessaging_async))
    }
    assert public | {"__version__"} == set(exported)


def test_public_names_have_docstrings() -> None:
    """Every exported class and function says what it is for."""
    for name in ccmessaging_async.__all__:
        value = getattr(ccmessaging_async, name)
        if callable(value):
            assert value.__doc__, name


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert ccmessaging_async.__version__.count(".") >= 2
