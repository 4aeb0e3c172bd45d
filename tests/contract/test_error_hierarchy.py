"""The store's errors form one hierarchy: defined in store/errors.py, exported by its __all__, rooted at ConcordError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import concord.store
from concord.store import errors


def store_modules() -> list[str]:
    """Every module of the concord.store package, subpackages included."""
    return [info.name for info in pkgutil.walk_packages(concord.store.__path__, "concord.store.")]


def test_errors_exports_exactly_what_it_defines_and_every_error_is_a_concord_error() -> None:
    defined = {
        name for name, value in vars(errors).items() if inspect.isclass(value) and value.__module__ == errors.__name__
    }
    assert sorted(errors.__all__) == sorted(defined)
    for name in defined - {"Problem"}:
        assert issubclass(getattr(errors, name), errors.ConcordError), name


def test_no_store_module_but_errors_defines_an_exception() -> None:
    modules = store_modules()
    assert "concord.store.backends.sqlite" in modules and "concord.store.crypto.envelope" in modules
    outside = [
        f"{name}.{cls.__name__}"
        for name in modules
        if name != errors.__name__
        for cls in vars(importlib.import_module(name)).values()
        if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == name
    ]
    assert outside == []
