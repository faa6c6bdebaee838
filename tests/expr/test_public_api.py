"""`runtime.expr.__all__` is the whole public surface, and it is complete."""

from __future__ import annotations

import types

import runtime.expr as expr


def test_all_lists_every_public_name_and_only_existing_ones() -> None:
    public = {
        name
        for name, value in vars(expr).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(expr.__all__) == public
    for name in expr.__all__:
        assert getattr(expr, name) is not None


def test_every_module_says_what_it_holds() -> None:
    import pkgutil

    for info in pkgutil.iter_modules(expr.__path__):
        module = __import__(f"runtime.expr.{info.name}", fromlist=["_"])
        assert module.__doc__ and len(module.__doc__.strip()) > 20, info.name
