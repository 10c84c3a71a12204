"""Schema checks shared by the parsers of signed JSON objects (checkpoints, signatures, range
packages, receipts, manifests). Each one raises InvalidProof naming the field; a parser that
owns a more specific error class re-raises with `reraise_as`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from finance.proofs.chain import rfc3339_utc
from finance.proofs.errors import InvalidProof
from finance.proofs.strict_json import JSON_INT_MAX, StrictJsonError, b64decode_hash

_RFC3339_MICROS: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def exact_object(obj: object, keys: frozenset[str], what: str) -> dict[str, Any]:
    """`obj` must be a JSON object with exactly `keys`: a missing field is malformed, and an
    unknown one could smuggle data past a verifier that ignores it."""
    if not isinstance(obj, dict):
        raise InvalidProof(f"{what} must be a JSON object")
    if set(obj) != keys:
        missing = sorted(keys - set(obj))
        unknown = sorted(set(obj) - keys)
        raise InvalidProof(f"{what}: missing fields {missing}, unknown fields {unknown}")
    return obj


def string(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidProof(f"{name} must be a non-empty string")
    return value


def integer(value: object, name: str) -> int:
    # bool is a subclass of int, and `true` must not pass for 1.
    if type(value) is not int or not 0 <= value <= JSON_INT_MAX:
        raise InvalidProof(f"{name} must be a JSON integer in [0, 2^53 - 1]")
    return value


def hash32(value: object, name: str) -> bytes:
    try:
        return b64decode_hash(value)
    except StrictJsonError as exc:
        raise InvalidProof(f"{name}: {exc.reason}") from exc


def hash_list(value: object, name: str, limit: int) -> list[bytes]:
    if not isinstance(value, list):
        raise InvalidProof(f"{name} must be a list")
    if len(value) > limit:
        raise InvalidProof(f"{name} has {len(value)} hashes, more than {limit}")
    return [hash32(item, f"{name}[{i}]") for i, item in enumerate(value)]


def timestamp(value: object, name: str) -> datetime:
    """Only the exact form `rfc3339_utc` writes: microseconds and Z."""
    if not isinstance(value, str):
        raise InvalidProof(f"{name} must be a string")
    try:
        moment = datetime.strptime(value, _RFC3339_MICROS).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidProof(f"{name} is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from exc
    if rfc3339_utc(moment) != value:
        raise InvalidProof(f"{name} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return moment


@contextmanager
def reraise_as(error: type[InvalidProof]) -> Iterator[None]:
    """Turn any other InvalidProof raised inside into `error`, keeping the reason."""
    try:
        yield
    except InvalidProof as exc:
        if isinstance(exc, error):
            raise
        raise error(exc.reason) from exc
