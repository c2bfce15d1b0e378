"""Strict structure hooks for the collections a message may hold.

cattrs' defaults accept any iterable (``"abc"`` as a list of three strings); JSON gives exactly
lists and objects, so these insist on them before delegating to cattrs.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, cast

from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_frozenset,
    is_mapping,
    is_sequence,
    is_set,
    list_structure_factory,
    mapping_structure_factory,
)

from actors.messages._scalars import json_kind

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["collection_structure_hook", "is_collection"]


def is_collection(tp: object) -> bool:
    """Whether ``tp`` is a list, tuple, set, frozenset or mapping type (not str or bytes)."""
    if tp in (str, bytes, bytearray):
        return False
    try:
        return bool(is_mapping(tp) or is_sequence(tp) or is_set(tp) or is_frozenset(tp))
    except TypeError:
        return False


def collection_structure_hook(converter: Any, tp: Any) -> Callable[[Any, type], Any]:
    """The structure hook of a collection type: a JSON array (an object for a mapping), then
    cattrs' own hook for the items."""
    inner: Callable[[Any, Any], Any]
    if is_mapping(tp):
        # Not converter.gen_structure_mapping: it registers its hook for ``tp`` directly, which
        # would take this strict one's place for every class structured after the first.
        inner = cast(
            "Callable[[Any, Any], Any]",
            mapping_structure_factory(
                tp, converter, dict, detailed_validation=converter.detailed_validation
            ),
        )
        wanted: type = dict
    else:
        wanted = list
        origin = typing.get_origin(tp) or tp
        args = typing.get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis) and args:
            inner = converter.gen_structure_hetero_tuple(tp)
        elif origin is tuple:
            inner = homogenous_tuple_structure_factory(tp, converter)
        elif is_set(tp) or is_frozenset(tp):
            list_type: Any = list[args[0]] if args else list  # type: ignore[valid-type]
            as_list = list_structure_factory(list_type, converter)
            make: Callable[[list[Any]], Any] = frozenset if is_frozenset(tp) else set

            def from_list(value: Any, _: type) -> Any:
                return make(as_list(value, list))

            inner = from_list
        else:
            inner = list_structure_factory(tp, converter)

    def structure_collection(value: Any, cl: type) -> Any:
        if type(value) is not wanted:
            kind = "an object" if wanted is dict else "an array"
            raise TypeError(f"expected {kind}, got {json_kind(value)}")
        return inner(value, cl)

    return structure_collection
