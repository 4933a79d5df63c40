"""Backward compatibility of a published event schema: what may change within a version.

A published type (``payment.captured.v1``) is a promise to consumers that are already running:
messages written under the new definition must still mean what they meant, and messages kept
on the topic from before must still be valid. ``incompatibilities(old, new)`` compares two JSON
Schemas of one type and returns every change that breaks that promise (a list, not the first
problem, so one run shows them all):

- ``removed``: a field is gone, or no longer required (consumers relied on it being there);
- ``retyped``: a field's JSON types changed (including becoming nullable), or its format;
- ``required``: a field is required that was not (old messages lack it);
- ``narrowed``: an enum or constant lost values, or a length, range or pattern got stricter
  (old messages may no longer be valid);
- ``default``: an optional field's default changed (old messages without it change meaning).

Compatible: a new optional field, an enum that gains values, a looser constraint, new or
changed descriptions. Consumers must therefore ignore unknown fields and tolerate unknown enum
values. Anything else needs a new version (``.v2``) — see docs/topics.md.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
"""Event schemas are shallow and not recursive; deeper means a cycle (an assertion fails)."""

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Incompatibility:
    path: str
    """Where, as a dotted path of fields: ``data.payment_method.card.last4``; ``[]`` is an
    array's items, ``*`` a map's values."""
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.rule}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Side:
    """One schema node together with the document its ``$ref``s point into."""

    node: Schema
    root: Schema


def incompatibilities(old: Schema, new: Schema) -> list[Incompatibility]:
    """Every backward-incompatible change from ``old`` to ``new`` (empty: compatible)."""
    found: list[Incompatibility] = []
    _compare(_Side(old, old), _Side(new, new), "", found, 0)
    return found


def published_problems(committed: Mapping[str, Schema], generated: Mapping[str, Schema],
                       retired: Collection[str] = ()) -> list[str]:
    """Every way ``generated`` (event type → schema) breaks what was published in
    ``committed``: an incompatible change to a type, or a type that is no longer produced and
    was not explicitly ``retired``. New types are always fine."""
    problems: list[str] = []
    for event_type, old in sorted(committed.items()):
        if event_type in retired:
            continue
        new = generated.get(event_type)
        if new is None:
            problems.append(f"{event_type}: was published and is no longer generated (retire "
                            f"it explicitly once its migration window has ended)")
            continue
        problems += [f"{event_type}: {problem}" for problem in incompatibilities(old, new)]
    return problems


def _compare(old: _Side, new: _Side, path: str, found: list[Incompatibility],
             depth: int) -> None:
    assert depth < MAX_DEPTH, f"schema nested deeper than {MAX_DEPTH} at {path}"
    old_variants, new_variants = _variants(old), _variants(new)
    if "any" in old_variants and "any" in new_variants:
        return
    if set(old_variants) != set(new_variants):
        found.append(Incompatibility(path, "retyped", f"was {_types(old_variants)}, "
                                                      f"now {_types(new_variants)}"))
        return
    for json_type, olds in old_variants.items():
        news = new_variants[json_type]
        if len(olds) != len(news):
            found.append(Incompatibility(path, "retyped", f"{len(olds)} {json_type} variants "
                                                          f"became {len(news)}"))
            continue
        for before, after in zip(olds, news, strict=True):
            _compare_typed(json_type, before, after, path, found, depth)


def _compare_typed(json_type: str, old: _Side, new: _Side, path: str,
                   found: list[Incompatibility], depth: int) -> None:
    _compare_values(old.node, new.node, path, found)
    if json_type == "object":
        _compare_objects(old, new, path, found, depth)
    elif json_type == "array":
        for key in ("items",):
            if isinstance(old.node.get(key), dict) and isinstance(new.node.get(key), dict):
                _compare(_Side(old.node[key], old.root), _Side(new.node[key], new.root),
                         f"{path}[]", found, depth + 1)
    elif json_type == "string":
        _compare_strings(old.node, new.node, path, found)
    elif json_type in ("integer", "number"):
        _compare_bounds(old.node, new.node, path, found, ("minimum", "exclusiveMinimum"),
                        ("maximum", "exclusiveMaximum"))


def _compare_objects(old: _Side, new: _Side, path: str, found: list[Incompatibility],
                     depth: int) -> None:
    old_props: Schema = old.node.get("properties", {})
    new_props: Schema = new.node.get("properties", {})
    old_required = set(old.node.get("required", ()))
    new_required = set(new.node.get("required", ()))
    for name, old_prop in old_props.items():
        where = f"{path}.{name}" if path else name
        if name not in new_props:
            found.append(Incompatibility(where, "removed", "the field is gone"))
            continue
        if name in old_required and name not in new_required:
            found.append(Incompatibility(where, "removed", "the field is no longer required"))
        _compare_default(old_prop, new_props[name], name in new_required, where, found)
        _compare(_Side(old_prop, old.root), _Side(new_props[name], new.root), where, found,
                 depth + 1)
    for name in sorted(new_required - old_required):
        where = f"{path}.{name}" if path else name
        what = "a new required field" if name not in old_props else "now required"
        found.append(Incompatibility(where, "required", what))
    old_extra, new_extra = old.node.get("additionalProperties"), new.node.get(
        "additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        _compare(_Side(old_extra, old.root), _Side(new_extra, new.root), f"{path}.*", found,
                 depth + 1)
    elif isinstance(old_extra, dict) != isinstance(new_extra, dict):
        found.append(Incompatibility(f"{path}.*", "retyped", "a map became an object with "
                                     "fixed fields, or the reverse"))


def _compare_default(old: Schema, new: Schema, required: bool, path: str,
                     found: list[Incompatibility]) -> None:
    if not required and "default" in old and old.get("default") != new.get("default"):
        found.append(Incompatibility(path, "default", f"default was {old['default']!r}, now "
                                                      f"{new.get('default', '(none)')!r}"))


def _compare_values(old: Schema, new: Schema, path: str, found: list[Incompatibility]) -> None:
    """Enums and constants may gain values, never lose them."""
    before, after = _allowed_values(old), _allowed_values(new)
    if after is None:
        return
    if before is None:
        found.append(Incompatibility(path, "narrowed", f"now restricted to {sorted(after)}"))
        return
    if lost := [value for value in before if value not in after]:
        found.append(Incompatibility(path, "narrowed", f"lost the values {lost}"))


def _compare_strings(old: Schema, new: Schema, path: str, found: list[Incompatibility]) -> None:
    if old.get("format") != new.get("format"):
        found.append(Incompatibility(path, "retyped", f"format was {old.get('format')}, now "
                                                      f"{new.get('format')}"))
    if new.get("pattern") is not None and new.get("pattern") != old.get("pattern"):
        found.append(Incompatibility(path, "narrowed", f"pattern was {old.get('pattern')}, now "
                                                       f"{new['pattern']}"))
    _compare_bounds(old, new, path, found, ("minLength",), ("maxLength",))


def _compare_bounds(old: Schema, new: Schema, path: str, found: list[Incompatibility],
                    lower_keys: tuple[str, ...], upper_keys: tuple[str, ...]) -> None:
    """A lower bound may only fall and an upper bound only rise (or go away)."""
    rules: tuple[tuple[tuple[str, ...], Callable[[Any, Any], bool]], ...] = (
        (lower_keys, operator.gt), (upper_keys, operator.lt))
    for keys, stricter in rules:
        for key in keys:
            before, after = old.get(key), new.get(key)
            if after is not None and (before is None or stricter(after, before)):
                found.append(Incompatibility(path, "narrowed", f"{key} was {before}, now "
                                                               f"{after}"))


def _allowed_values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values: list[Any] | None = node.get("enum")
    return values


def _resolve(side: _Side) -> _Side:
    """Follow local ``$ref``s (``#/$defs/X``, ``#/components/schemas/X``) to the node."""
    node = side.node
    for _ in range(MAX_DEPTH):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return _Side(node, side.root)
        assert ref.startswith("#/"), f"only local references are supported: {ref}"
        target: Any = side.root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    raise AssertionError(f"$ref chain longer than {MAX_DEPTH}")


def _variants(side: _Side) -> dict[str, list[_Side]]:
    """The node's alternatives by JSON type: ``anyOf``/``oneOf`` flattened, ``$ref`` followed,
    the type inferred from ``const``/``enum`` when not given; ``any`` when unconstrained."""
    resolved = _resolve(side)
    node = resolved.node
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives is None and len(node.get("allOf", ())) == 1:
        alternatives = node["allOf"]
    if alternatives is not None:
        merged: dict[str, list[_Side]] = {}
        for alternative in alternatives:
            for json_type, sides in _variants(_Side(alternative, resolved.root)).items():
                merged.setdefault(json_type, []).extend(sides)
        return merged
    return {json_type: [resolved] for json_type in _json_types(node)}


def _json_types(node: Schema) -> list[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(t) for t in declared]
    values = _allowed_values(node)
    if values is not None:
        return sorted({_json_type_of(value) for value in values})
    if "properties" in node or "additionalProperties" in node:
        return ["object"]
    if "items" in node:
        return ["array"]
    return ["any"]


def _json_type_of(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string",
             type(None): "null", list: "array", dict: "object"}
    return names.get(type(value), "any")


def _types(variants: dict[str, list[_Side]]) -> str:
    return " | ".join(sorted(variants))
