"""Pinning the framework internals the site relies on (tests/test_upstream_shapes_*.py).

The site reaches below the public API of Channels, channels-redis, daphne, autobahn,
Twisted and Django where measurements said it pays (docs/architecture.md). Versions
are pinned in requirements.txt (Twisted and autobahn come with daphne, and are named
here as checked); an upgrade that changes one of these shapes fails there first,
instead of turning a fast path off, or worse, with every other test green.

Where the site keeps its own copy or rewrite of an upstream function or script, the
upstream text is fingerprinted (SHA-256 of its source): a change there means the
copy must be read again against it, and the fingerprint renewed.
"""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# Libraries that come with daphne rather than from requirements.txt: the versions checked.
CHECKED = {"twisted": "26.10.0", "autobahn": "26.11.1", "asgiref": "3.13.0"}


def pinned(dist: str) -> str:
    """`dist==version` as requirements.txt pins it (or as checked, for what daphne brings)."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, rest = line.partition("==")
        if name.split("[")[0].strip().lower() == dist.lower() and rest:
            return f"{dist}=={rest.split()[0]} (requirements.txt)"
    return f"{dist}=={CHECKED[dist.lower()]} (checked, via daphne)"


def shape(dist: str, what: str, used_in: str) -> str:
    """The failure message: what changed, where the site uses it, which version it fits."""
    return (
        f"{what}: {used_in} relies on it as in {pinned(dist)}, but {dist} "
        f"{version(dist)} is installed. Read the use again against this version."
    )


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def check_fingerprint(dist: str, obj: Any, expected: str, used_in: str) -> None:
    name = f"{obj.__module__}.{obj.__qualname__}"
    assert fingerprint(obj) == expected, shape(
        dist, f"the source of {name} changed (sha256 {fingerprint(obj)}, was {expected})", used_in
    )


def bare_signature(obj: Any) -> str:
    """`obj`'s signature without annotations: the names, kinds and defaults called with."""
    signature = inspect.signature(obj)
    parameters = [
        p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def check_signature(dist: str, obj: Any, expected: str, used_in: str) -> None:
    name = f"{obj.__module__}.{obj.__qualname__}"
    found = bare_signature(obj)
    assert found == expected, shape(dist, f"{name} takes {found}, not {expected}", used_in)


def check_attribute(dist: str, owner: Any, name: str, used_in: str) -> None:
    label = getattr(owner, "__qualname__", type(owner).__qualname__)
    assert hasattr(owner, name), shape(dist, f"{label} has no {name}", used_in)
