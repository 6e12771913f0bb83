"""Every exception class in proximity survives pickling with its fields (process pools, Dask).

The classes are found by walking the package, not listed by hand, so a new one is covered (and fails
here until it pickles); each is built from its own signature with one value per annotated type."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import proximity

# Modules that need an optional extra (PyJWT, an ASGI stack) are imported only when it is installed.
_OPTIONAL = ("proximity.server",)


def _classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(proximity.__path__, "proximity."):
        if info.name.endswith("__main__"):  # runs the command line
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            if info.name.startswith(_OPTIONAL):
                continue
            raise
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("proximity."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


_VALUES = [("bool", False), ("int", 3), ("float", 2.5), ("bytes", b"\x01"), ("tuple", ("a",))]


def _argument(annotation: object) -> object:
    text = str(annotation)
    for name, value in _VALUES:
        if text.startswith(name):
            return value
    for name, value in _VALUES:
        if f"[{name}" in text or f"| {name}" in text:
            return value
    return "some text"


def sample(cls: type[BaseException]) -> BaseException:
    """An instance built from ``cls``'s signature (every parameter given, so every field is set)."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            if not args and parameter.kind is parameter.VAR_POSITIONAL:
                args.append("some text")
            continue
        value = _argument(parameter.annotation)
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


CLASSES = _classes()


def test_the_walk_finds_the_known_classes() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"ProximityError", "KeyFileError", "InvalidLengthError", "InvalidSightingError"} <= names
    assert {"CommandError", "ScenarioError", "UnknownSchemeError"} <= names
    assert len(CLASSES) > 40


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_round_trips_through_pickle(cls: type[BaseException]) -> None:
    error = sample(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error) and copy.args == error.args
    assert getattr(copy, "__dict__", {}) == getattr(error, "__dict__", {})
