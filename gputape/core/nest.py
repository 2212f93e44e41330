"""Nested structures (lists, tuples, dicts) of tensors: flatten and rebuild, like ``tf.nest``.

Dicts flatten in sorted-key order, as TensorFlow does.
"""

from __future__ import annotations


def flatten(structure) -> list:
    """The leaves of ``structure`` in order; a leaf is anything not a list, tuple or dict.

    Examples
    --------
    >>> from gputape.core import nest
    >>> nest.flatten({"b": [1, 2], "a": 3})
    [3, 1, 2]
    """
    leaves: list = []
    _flatten_into(structure, leaves)
    return leaves


def _flatten_into(structure, leaves: list) -> None:
    if isinstance(structure, dict):
        for key in sorted(structure):
            _flatten_into(structure[key], leaves)
    elif isinstance(structure, (list, tuple)):
        for item in structure:
            _flatten_into(item, leaves)
    else:
        leaves.append(structure)


def pack_as(structure, leaves: list):
    """Rebuild ``structure`` with its leaves replaced, in order, by ``leaves``.

    Examples
    --------
    >>> from gputape.core import nest
    >>> nest.pack_as({"b": [0, 0], "a": 0}, [3, 1, 2])
    {'a': 3, 'b': [1, 2]}
    """
    iterator = iter(leaves)
    return _pack(structure, iterator)


def _pack(structure, iterator):
    if isinstance(structure, dict):
        return {key: _pack(structure[key], iterator) for key in sorted(structure)}
    if isinstance(structure, (list, tuple)):
        items = [_pack(item, iterator) for item in structure]
        if isinstance(structure, list):
            return items
        if hasattr(structure, "_fields"):  # namedtuple
            return type(structure)(*items)
        return type(structure)(items)
    return next(iterator)
