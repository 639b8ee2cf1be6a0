"""``@dataclass`` and ``field`` for the modules every command loads, without
importing :mod:`dataclasses` at start-up.

Importing :mod:`dataclasses` costs ~8 ms (it loads :mod:`inspect`, and with it
``ast``, ``dis`` and ``tokenize``), and decorating each class costs more: a
hook or a one-file decrypt paid for both before reading its input. The
modules on those paths write::

    if TYPE_CHECKING:
        from dataclasses import dataclass, field
    else:
        from .records import dataclass, field

so that type checkers see real dataclasses, and the run gets classes with
the same constructor (positional or keyword, defaults, default factories),
``repr`` (without ``repr=False`` fields) and ``==`` (same class, equal fields;
instances are unhashable, as with ``eq=True``), and ``frozen=True`` (no
assignment after construction, hashable by value). Only these options are
supported; anything else is refused at import rather than ignored.

``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work too:
the first look-up of ``__dataclass_fields__`` imports :mod:`dataclasses` and
builds the real field table (commands that need it pay for it then).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_MISSING = object()


class _Field:
    __slots__ = ("default", "default_factory", "repr")

    def __init__(self, default: object, default_factory: object, repr: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr


def field(*, default: object = _MISSING, default_factory: object = _MISSING, repr: bool = True) -> object:
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr)


class _DataclassFields:
    """``__dataclass_fields__``, built by :mod:`dataclasses` on first look-up."""

    def __get__(self, obj: object, cls: type) -> object:
        import dataclasses

        spec: list[tuple[str, _Field | None]] = cls.__dict__["__record_spec__"]
        namespace: dict[str, object] = {"__annotations__": {name: "object" for name, _ in spec}}
        for name, f in spec:
            if f is not None:
                kwargs: dict[str, object] = {"repr": f.repr}
                if f.default is not _MISSING:
                    kwargs["default"] = f.default
                if f.default_factory is not _MISSING:
                    kwargs["default_factory"] = f.default_factory
                namespace[name] = dataclasses.field(**kwargs)  # type: ignore[call-overload]
        real: type = dataclasses.dataclass(type(cls.__name__, (), namespace))
        table = real.__dict__["__dataclass_fields__"]
        type.__setattr__(cls, "__dataclass_fields__", table)
        return table


def _own_annotations(cls: type) -> list[str]:
    names = list(cls.__dict__.get("__annotations__", {}))
    annotations = cls.__dict__.get("__annotations__", {})
    return [n for n in names if not str(annotations[n]).startswith(("ClassVar", "typing.ClassVar"))]


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a ``frozen=True`` record."""


def dataclass(cls: type | None = None, *, frozen: bool = False, **options: object) -> object:
    if options:
        raise TypeError(f"sopsflow.records.dataclass: unsupported options {sorted(options)}")
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def _make(cls: type, frozen: bool = False) -> type:
    spec: list[tuple[str, _Field | None]] = []
    for base in reversed(cls.__mro__[1:]):
        spec.extend(base.__dict__.get("__record_spec__", []))
    inherited = {name for name, _ in spec}
    for name in _own_annotations(cls):
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            f: _Field | None = value
        elif value is _MISSING:
            f = None
        else:
            if isinstance(value, (list, dict, set)):
                raise ValueError(f"mutable default {type(value)} for field {name} is not allowed: use default_factory")
            f = _Field(value, _MISSING, True)
        if isinstance(value, _Field):
            # like dataclasses: the class attribute is the default (or absent)
            if f is not None and f.default is not _MISSING:
                setattr(cls, name, f.default)
            else:
                delattr(cls, name)
        if name in inherited:
            spec = [(n, f if n == name else g) for n, g in spec]
        else:
            spec.append((name, f))
    seen_default = False
    for name, f in spec:
        if f is None and seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        seen_default = seen_default or f is not None
    names = tuple(name for name, _ in spec)
    count = len(names)
    required = tuple(name for name, f in spec if f is None)
    defaults = [(name, f.default, f.default_factory) for name, f in spec if f is not None]
    shown = tuple(name for name, f in spec if f is None or f.repr)

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > count:
            raise TypeError(f"{cls.__name__}.__init__() takes {count + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for name, value in zip(names, args, strict=False):  # fewer args than fields: the rest by keyword
            if name in kwargs:
                raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument {name!r}")
            kwargs[name] = value
        for name in required:
            if name not in kwargs:
                raise TypeError(f"{cls.__name__}.__init__() missing required argument: {name!r}")
        set_attr = object.__setattr__
        for name, default, factory in defaults:
            if name not in kwargs:
                set_attr(self, name, default if factory is _MISSING else factory())  # type: ignore[operator]
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument {name!r}")
            set_attr(self, name, value)
        post_init: Callable[[], None] | None = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in names)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    __eq__.__qualname__ = f"{cls.__qualname__}.__eq__"
    cls.__record_spec__ = spec  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__  # type: ignore[assignment,method-assign]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
        cls.__hash__ = None  # type: ignore[assignment]
    if frozen:
        def __setattr__(self: object, name: str, value: object) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: object, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        def __hash__(self: object) -> int:
            return hash(tuple(getattr(self, name) for name in names))

        cls.__setattr__ = __setattr__  # type: ignore[assignment,method-assign]
        cls.__delattr__ = __delattr__  # type: ignore[assignment,method-assign]
        cls.__hash__ = __hash__  # type: ignore[assignment,method-assign]
    cls.__match_args__ = names  # type: ignore[attr-defined,misc]
    cls.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
    return cls


class _NamedTupleMeta(type):
    """``class X(NamedTuple)`` without :mod:`typing`: fields from the
    annotations, defaults from the class body, the other attributes (methods,
    docstring) copied onto a :func:`collections.namedtuple` class."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
        if not bases:
            return super().__new__(mcls, name, bases, namespace)
        import collections

        annotations = namespace.get("__annotations__", {})
        assert isinstance(annotations, dict)
        names = list(annotations)
        defaults = [namespace[n] for n in names if n in namespace]
        make = collections.namedtuple  # called with a computed name: the checker wants a literal
        built: type = make(name, names, defaults=defaults or None, module=str(namespace.get("__module__")))
        for key, value in namespace.items():
            if key not in names and key not in ("__module__", "__annotations__", "__qualname__"):
                setattr(built, key, value)
        built.__qualname__ = str(namespace.get("__qualname__", name))
        return built


class NamedTuple(metaclass=_NamedTupleMeta):
    """Base of the ``NamedTuple`` classes on the start-up path (see module doc)."""
