"""tests/helpers.clear_all_kauto_caches: clears module-level cached factories, leaves classes alone."""

from __future__ import annotations

import functools
import sys
import types

import pytest
from helpers import clear_all_kauto_caches


class ClientCache:
    """A class whose instances can be cleared: ``ClientCache.cache_clear`` is an unbound method."""

    def __init__(self) -> None:
        self.cleared = False

    def cache_clear(self) -> None:
        self.cleared = True


def probe_module() -> types.ModuleType:
    module = types.ModuleType("kauto.cache_probe")
    calls: list[int] = []

    @functools.cache
    def factory() -> int:
        calls.append(1)
        return len(calls)

    module.factory = factory  # type: ignore[attr-defined]
    module.ClientCache = ClientCache  # type: ignore[attr-defined]
    return module


def test_module_level_caches_are_cleared_and_classes_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    module = probe_module()
    monkeypatch.setitem(sys.modules, "kauto.cache_probe", module)
    assert module.factory() == module.factory() == 1

    clear_all_kauto_caches()  # raised TypeError on ClientCache.cache_clear() before classes were skipped

    assert module.factory() == 2


def test_modules_outside_kauto_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    module = probe_module()
    monkeypatch.setitem(sys.modules, "not_kauto_probe", module)
    module.factory()

    clear_all_kauto_caches()

    assert module.factory() == 1
