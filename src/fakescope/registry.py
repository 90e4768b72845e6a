"""A name -> class registry whose classes are imported only when used.

Detectors and localizers each keep one: built-in names map to ``"package.module:ClassName"``
strings, third-party packages add theirs through an entry-point group, and nothing imports a
method's module (torch, OpenCV) until that method is asked for.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyRegistry(Generic[T]):
    """Registered names of subclasses of ``base``, from built-ins and an entry-point group."""

    def __init__(self, kind: str, base: type[T], group: str, builtin: dict[str, str]) -> None:
        self.kind = kind  # "detector", "localizer": used in messages
        self.base = base
        self.group = group
        self._targets = dict(builtin)
        self._entry_points_loaded = False

    def copy(self) -> LazyRegistry[T]:
        """An independent registry with the same entries (tests register into a copy)."""
        clone = LazyRegistry(self.kind, self.base, self.group, self._targets)
        clone._entry_points_loaded = self._entry_points_loaded
        return clone

    def register(self, name: str, target: str) -> None:
        """Register ``target`` (``"package.module:ClassName"``) under ``name``."""
        if ":" not in target:
            raise ValueError(f"target must look like 'package.module:ClassName', got {target!r}")
        self._targets[name] = target

    def _load_entry_points(self) -> None:
        if not self._entry_points_loaded:
            for point in entry_points(group=self.group):
                self._targets.setdefault(point.name, point.value)
            self._entry_points_loaded = True

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_entry_points()
        return sorted(self._targets)

    def get(self, name: str) -> type[T]:
        """Import and return the class registered as ``name``."""
        self._load_entry_points()
        try:
            target = self._targets[name]
        except KeyError:
            known = ", ".join(sorted(self._targets))
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known}") from None
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{target} is not a fakescope {self.base.__name__}")
        return cls
