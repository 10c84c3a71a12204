"""A signer whose private key lives in a PKCS#11 token (an HSM; SoftHSM2 in tests), through
`python-pkcs11` (docs/proofs.md, section 3.7).

* Ed25519 signs with CKM_EDDSA (PKCS#11 3.0): pure Ed25519, 64 bytes.
* ECDSA P-256 signs with plain CKM_ECDSA over a SHA-256 digest computed here: SoftHSM2 answers
  MechanismInvalid for CKM_ECDSA_SHA256, and pre-hashing works on every token. The token returns
  raw r||s, which is converted to DER so every backend yields the same encoding.

PKCS#11 login state belongs to the whole process per token, and python-pkcs11 logs out when a
logged-in session closes, so two long-lived sessions on one token would log each other out. Each
operation therefore opens, logs in, works and closes under one process-wide lock. That costs a login
per signature, which is fine at one signature per checkpoint (every few seconds).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import MultipleObjectsReturned, NoSuchKey, PKCS11Error
from pkcs11.types import Object, SignMixin

from finance.proofs.signing import Algorithm, SignerError, key_id, verify_signature

# CKA_EC_PARAMS as DER curve OIDs: prime256v1 (1.2.840.10045.3.1.7), id-Ed25519 (1.3.101.112).
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
ED25519_OID_PARAMS = bytes.fromhex("06032b6570")
# PKCS#11 3.0 also allows the curve name as a PrintableString for Edwards curves.
ED25519_NAME_PARAMS = b"\x13\x0cedwards25519"
P256_SCALAR_BYTES = 32

# One lock for every token in the process: see the module docstring.
_TOKEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Spec:
    key_type: KeyType
    ec_params: tuple[bytes, ...]  # accepted encodings; the first is the one used to generate
    generate_mechanism: Mechanism
    sign_mechanism: Mechanism
    public_point_bytes: int  # the raw CKA_EC_POINT length


_SPECS = {
    Algorithm.ED25519: _Spec(
        KeyType.EC_EDWARDS,
        (ED25519_OID_PARAMS, ED25519_NAME_PARAMS),
        Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
        Mechanism.EDDSA,
        32,
    ),
    Algorithm.ECDSA_P256_SHA256: _Spec(
        KeyType.EC, (P256_PARAMS,), Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA, 65
    ),
}


class Pkcs11Signer:
    """Signs with the key pair labelled `key_label` on the token `token_label`.

    The constructor logs in once and exports the public key, so a wrong PIN, a missing token or
    a missing or mistyped key is a SignerError at start-up rather than at the first checkpoint."""

    def __init__(
        self, module_path: str, token_label: str, pin: str, key_label: str, alg: Algorithm
    ) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._alg = Algorithm(alg)
        self._spec = _SPECS[self._alg]
        with _session(module_path, token_label, pin) as session:
            self._spki = _export_public_key(session, key_label, self._alg)
            _private_key(session, key_label, self._spec)
        self._key_id = key_id(self._spki)

    def __repr__(self) -> str:  # never show the PIN
        return f"Pkcs11Signer({self._token_label!r}, key={self._key_label!r}, alg={self._alg})"

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key_spki(self) -> bytes:
        return self._spki

    def sign(self, message: bytes) -> bytes:
        ecdsa = self._alg is Algorithm.ECDSA_P256_SHA256
        data = hashlib.sha256(message).digest() if ecdsa else message
        with _session(self._module_path, self._token_label, self._pin) as session:
            key = _private_key(session, self._key_label, self._spec)
            raw = key.sign(data, mechanism=self._spec.sign_mechanism)
        signature = _raw_ecdsa_to_der(raw) if ecdsa else raw
        # Paired check: a token that signed with another key or mechanism is caught here, before
        # a checkpoint goes out with a signature no auditor can verify.
        if not verify_signature(self._alg, self._spki, message, signature):
            raise SignerError(f"{self!r} returned a signature that does not verify")
        return signature


def generate_key(
    module_path: str, token_label: str, pin: str, key_label: str, alg: Algorithm
) -> bytes:
    """Create a key pair inside the token (never extractable, never readable) and return its
    public key as SPKI DER. Refuses a label that is already taken, since lookups by label must
    find exactly one key."""
    spec = _SPECS[Algorithm(alg)]
    with _session(module_path, token_label, pin, rw=True) as session:
        if next(iter(session.get_objects({Attribute.LABEL: key_label})), None) is not None:
            raise SignerError(
                f"token {token_label!r} already holds an object labelled {key_label!r}"
            )
        session.generate_keypair(
            spec.key_type,
            mechanism=spec.generate_mechanism,
            label=key_label,
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template={Attribute.EC_PARAMS: spec.ec_params[0], Attribute.TOKEN: True},
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
            },
        )
        return _export_public_key(session, key_label, Algorithm(alg))


@contextmanager
def _session(
    module_path: str, token_label: str, pin: str, *, rw: bool = False
) -> Iterator[pkcs11.Session]:
    """A logged-in session, held under the process-wide lock; PKCS#11 errors raised inside the
    block become SignerError."""
    with _TOKEN_LOCK:
        try:
            token = pkcs11.lib(module_path).get_token(token_label=token_label)
            with token.open(rw=rw, user_pin=pin) as session:
                yield session
        except PKCS11Error as exc:
            raise SignerError(f"PKCS#11 token {token_label!r}: {type(exc).__name__} {exc}") from exc


def _find_key(
    session: pkcs11.Session, object_class: ObjectClass, key_type: KeyType, label: str
) -> Object:
    """`session.get_key`, except that the search always ends inside the session. python-pkcs11's
    get_key leaves its search open when a label matches two keys; the search is then finished by a
    finalizer after the session closed, which prints a SessionHandleInvalid traceback."""
    found = list(
        session.get_objects(
            {Attribute.CLASS: object_class, Attribute.KEY_TYPE: key_type, Attribute.LABEL: label}
        )
    )
    if not found:
        raise NoSuchKey(f"no {object_class.name} {key_type.name} key labelled {label!r}")
    if len(found) > 1:
        raise MultipleObjectsReturned(f"{len(found)} {object_class.name} keys labelled {label!r}")
    return found[0]


def _private_key(session: pkcs11.Session, label: str, spec: _Spec) -> SignMixin:
    key = _find_key(session, ObjectClass.PRIVATE_KEY, spec.key_type, label)
    if not isinstance(key, SignMixin):
        raise SignerError(f"private key {label!r} cannot sign")
    return key


def _export_public_key(session: pkcs11.Session, label: str, alg: Algorithm) -> bytes:
    """The public key object's curve point, checked against `alg`, as SPKI DER."""
    spec = _SPECS[alg]
    public = _find_key(session, ObjectClass.PUBLIC_KEY, spec.key_type, label)
    if public[Attribute.EC_PARAMS] not in spec.ec_params:
        raise SignerError(f"key {label!r} is not on the curve {alg} needs")
    point = _unwrap_ec_point(bytes(public[Attribute.EC_POINT]), spec.public_point_bytes)
    key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    try:
        if alg is Algorithm.ED25519:
            key = ed25519.Ed25519PublicKey.from_public_bytes(point)
        else:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise SignerError(f"key {label!r} has an invalid public point") from exc
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _unwrap_ec_point(value: bytes, point_bytes: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING by the standard, but some tokens return the raw point.
    Tell them apart by length: a raw P-256 point also starts with 0x04."""
    if len(value) == point_bytes:
        return value
    if len(value) == point_bytes + 2 and value[0] == 0x04 and value[1] == point_bytes:
        return value[2:]
    raise SignerError(f"unexpected CKA_EC_POINT of {len(value)} bytes")


def _raw_ecdsa_to_der(raw: bytes) -> bytes:
    if len(raw) != 2 * P256_SCALAR_BYTES:
        raise SignerError(f"token returned a {len(raw)}-byte ECDSA signature, expected r||s")
    r = int.from_bytes(raw[:P256_SCALAR_BYTES], "big")
    s = int.from_bytes(raw[P256_SCALAR_BYTES:], "big")
    return encode_dss_signature(r, s)
