"""Interned tag sets.

Every distinct set of tags exists once per process, so a tag set can key a dict by
identity-speed hashing and the hot path never rebuilds or re-sorts tag mappings:
a VU holds its base TagSet, and per-request tags are derived through a small
child cache (`with_pairs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Pair = tuple[str, str]

_interned: dict[tuple[Pair, ...], TagSet] = {}


class TagSet:
    """An immutable, interned, sorted set of (key, value) string pairs."""

    __slots__ = ("_children", "_dict", "_hash", "items")

    items: tuple[Pair, ...]

    def __new__(cls, items: tuple[Pair, ...]) -> TagSet:  # use tagset() / with_pairs()
        self = object.__new__(cls)
        self.items = items
        self._dict = dict(items)
        self._children: dict[Any, TagSet] = {}
        self._hash = hash(items)
        return self

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k}:{v}" for k, v in self.items) + "}"

    def as_dict(self) -> dict[str, str]:
        """A fresh dict copy of the tags."""
        return dict(self._dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._dict.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._dict

    def __len__(self) -> int:
        return len(self.items)

    def with_pairs(self, *pairs: Pair) -> TagSet:
        """This set plus (overriding) the given pairs; cached per call shape."""
        child = self._children.get(pairs)
        if child is None:
            merged = dict(self._dict)
            for k, v in pairs:
                merged[k] = v
            child = _intern(merged.items())
            self._children[pairs] = child
        return child

    def with_tags(self, tags: Mapping[str, Any] | None) -> TagSet:
        """This set plus a mapping of extra tags (values are converted to str)."""
        if not tags:
            return self
        return self.with_pairs(*((str(k), _tag_value(v)) for k, v in tags.items()))

    def without(self, *keys: str) -> TagSet:
        return _intern((k, v) for k, v in self.items if k not in keys)

    def matches(self, flt: Mapping[str, str]) -> bool:
        """True if every (key, value) of `flt` is in this set (sub-metric selection)."""
        d = self._dict
        return all(d.get(k) == v for k, v in flt.items())


def _tag_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _intern(pairs: Iterable[Pair]) -> TagSet:
    key = tuple(sorted(pairs))
    ts = _interned.get(key)
    if ts is None:
        ts = TagSet(key)
        _interned[key] = ts
    return ts


def tagset(tags: Mapping[str, Any] | Iterable[Pair] | None = None) -> TagSet:
    """The interned TagSet for a mapping or iterable of pairs."""
    if tags is None:
        return EMPTY
    if isinstance(tags, Mapping):
        return _intern((str(k), _tag_value(v)) for k, v in tags.items())
    return _intern((str(k), _tag_value(v)) for k, v in tags)


EMPTY: TagSet = _intern(())
