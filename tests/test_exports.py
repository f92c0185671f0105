"""The public surface: everything exported is documented and nothing private leaks."""

from __future__ import annotations

from types import ModuleType

import pytest

import ccmessaging_async
from ccmessaging_async import jobs

PUBLIC_MODULES = [ccmessaging_async, jobs]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_complete(module: ModuleType) -> None:
    """__all__ is sorted and names exactly the public attributes of the module."""
    exported = module.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public | {"__version__"} >= set(exported)
    assert public <= set(exported) | {"annotations"}


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_public_names_have_docstrings(module: ModuleType) -> None:
    """Every exported class and function says what it is for."""
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value):
            assert value.__doc__, name


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert ccmessaging_async.__version__.count(".") >= 2
