"""A canonical serialisation of a fitted model: equal state, equal bytes, whatever process made it.

``pickle.dumps`` of two identical fits is not a fair test across processes: pickle shares an object
it meets twice (by ``id``), so a model loaded back from its skops artifact and a fresh fit of the
same model can pickle to different bytes. skops' own format carries ids and zip timestamps too.
Here the fitted object is walked instead, the way pickle would save it (``__reduce_ex__``: the
class, the constructor arguments and the state, which for scikit-learn is every parameter and
every fitted attribute), and each value is written in one fixed form: arrays as dtype, shape and
raw bytes (a record array field by field: the padding between fields is uninitialised memory,
different in every process, e.g. in a decision tree's nodes), mappings in key order, objects by their importable class name. Two models whose
fitted state is equal give the same bytes, and the SHA-256 of those bytes is the model's digest.

Only scikit-learn's version marker (``_sklearn_version``) is left out: it says which release
pickled the object, not what was learnt (the library versions are compared on their own).
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Iterator
from typing import Any

#: Attributes that describe the serialiser rather than the fitted model.
IGNORED_ATTRIBUTES = frozenset({"_sklearn_version"})
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


class NotSerialisable(TypeError):
    """The model holds a value this walk cannot put in canonical form; the message names where."""


def _name(value: Any) -> str:
    return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', getattr(value, '__name__', '?'))}"


def _array(value: Any, path: str) -> Iterator[bytes]:
    import numpy as np

    if value.dtype.hasobject:
        yield f"object-array{value.shape}[".encode()
        for index, item in enumerate(value.ravel(order="C").tolist()):
            yield from _walk(item, f"{path}[{index}]", set())
        yield b"]"
        return
    if value.dtype.names:  # a record array: field by field, never the padding between fields
        yield f"records{value.shape}{{".encode()
        for name in value.dtype.names:
            yield f"{name}=".encode()
            yield from _array(np.ascontiguousarray(value[name]), f"{path}.{name}")
        yield b"}"
        return
    yield f"array:{value.dtype.str}:{value.shape}:".encode()
    yield hashlib.sha256(np.ascontiguousarray(value).tobytes()).digest()


def _mapping(value: dict, path: str, active: set[int]) -> Iterator[bytes]:
    items = [(k, v) for k, v in value.items() if k not in IGNORED_ATTRIBUTES]
    try:
        items.sort(key=lambda kv: repr(kv[0]))
    except TypeError as exc:  # pragma: no cover - repr always sorts
        raise NotSerialisable(f"{path}: unsortable keys: {exc}") from exc
    yield f"dict{len(items)}{{".encode()
    for key, item in items:
        yield from _walk(key, f"{path}.<key>", active)
        yield b":"
        yield from _walk(item, f"{path}.{key}", active)
    yield b"}"


def _reduced(value: Any, path: str, active: set[int]) -> Iterator[bytes]:
    """Any other object as pickle would save it: class, constructor arguments, state."""
    try:
        reduced = value.__reduce_ex__(4)
    except Exception as exc:  # noqa: BLE001 - an unpicklable object cannot be compared either
        raise NotSerialisable(f"{path}: cannot serialise {type(value).__name__}: {exc}") from exc
    if isinstance(reduced, str):  # a global singleton saved by name
        yield f"global:{_name(value)}".encode()
        return
    function, args, *rest = (*reduced, None, None, None)[:5]
    state = rest[0]
    if getattr(function, "__name__", "") == "__newobj__" and args:
        function, args = args[0], args[1:]
    yield f"object:{_name(type(value))}:{_name(function)}(".encode()
    yield from _walk(tuple(args or ()), f"{path}.<args>", active)
    yield b")"
    if state is not None:
        yield from _walk(state, f"{path}.<state>", active)
    for label, extra in (("items", rest[1]), ("pairs", rest[2])):
        if extra is not None:
            yield label.encode()
            yield from _walk(list(extra), f"{path}.<{label}>", active)


def _walk(value: Any, path: str, active: set[int]) -> Iterator[bytes]:
    import numpy as np

    if isinstance(value, _SCALARS):
        yield f"{type(value).__name__}:{value!r};".encode()
    elif isinstance(value, np.generic):
        yield f"{value.dtype.str}:{value.item()!r};".encode()
    elif isinstance(value, np.ndarray):
        yield from _array(value, path)
    elif isinstance(value, np.dtype):
        yield f"dtype:{value.str};".encode()
    elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        yield f"global:{_name(value)};".encode()
    elif id(value) in active:
        raise NotSerialisable(f"{path}: refers back to itself")
    else:
        active = active | {id(value)}
        if isinstance(value, dict):
            yield from _mapping(value, path, active)
        elif isinstance(value, (list, tuple)):
            yield f"{type(value).__name__}{len(value)}[".encode()
            for index, item in enumerate(value):
                yield from _walk(item, f"{path}[{index}]", active)
            yield b"]"
        elif isinstance(value, (set, frozenset)):
            yield f"{type(value).__name__}{len(value)}".encode()
            yield from _walk(sorted(value, key=repr), path, active)
        else:
            yield from _reduced(value, path, active)


def canonical_bytes(model: Any) -> bytes:
    """The model's fitted state in canonical form (see the module docstring)."""
    return b"".join(_walk(model, type(model).__name__, set()))


def model_digest(model: Any) -> str:
    """SHA-256 of :func:`canonical_bytes`: equal for two models with equal fitted state."""
    digest = hashlib.sha256()
    for chunk in _walk(model, type(model).__name__, set()):
        digest.update(chunk)
    return digest.hexdigest()
