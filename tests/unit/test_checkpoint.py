"""Signed checkpoints: canonical bytes, signatures, trust, chaining and equivocation
(docs/proofs.md 3.2, 3.3 step 2, 3.5 and 5)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import rfc8785

from finance.adapters.signers.local import LocalSigner
from finance.proofs.checkpoint import (
    CHECKPOINT_TYPE,
    CheckpointBody,
    CheckpointError,
    SignedCheckpoint,
    body_hash,
    equivocation,
    sign_checkpoint,
    signing_bytes,
    verify_checkpoint,
    verify_checkpoint_chain,
)
from finance.proofs.signatures import Signature, TrustedKey, TrustStore
from finance.proofs.signing import Algorithm, Signer, SignerError, public_key_pem
from tests.signers import EcdsaSigner

ORIGIN = "ledger.example.com/acme-prod/gl"
ISSUED = datetime(2025, 1, 1, 0, 0, 10, 123456, tzinfo=UTC)
ROOT = hashlib.sha256(b"root").digest()
HEAD = hashlib.sha256(b"head").digest()
PREV = hashlib.sha256(b"prev").digest()


def make_body(**changes: Any) -> CheckpointBody:
    fields: dict[str, Any] = {
        "origin": ORIGIN,
        "tree_size": 1000,
        "root_hash": ROOT,
        "chain_head": HEAD,
        "seq": 42,
        "prev_checkpoint": PREV,
        "issued_at": ISSUED,
    }
    fields.update(changes)
    return CheckpointBody(**fields)


def pem_of(signer: Signer) -> bytes:
    return public_key_pem(signer.public_key_spki()).encode("ascii")


@pytest.fixture
def ed_signer(tmp_path: Path) -> LocalSigner:
    return LocalSigner(tmp_path / "keys" / "checkpoint.pem")


@pytest.fixture
def ec_signer() -> EcdsaSigner:
    return EcdsaSigner()


@pytest.fixture
def trust(ed_signer: LocalSigner) -> TrustStore:
    return TrustStore.from_pems([(pem_of(ed_signer), Algorithm.ED25519)])


def signed_json(signed: SignedCheckpoint) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(signed.to_bytes())
    return result


# --- body: JSON form and canonical bytes -------------------------------------------------------


def test_body_json_is_the_documented_shape() -> None:
    body = make_body()
    assert body.to_json() == {
        "type": CHECKPOINT_TYPE,
        "origin": ORIGIN,
        "tree_size": 1000,
        "root_hash": "SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=",
        "chain_head": "ny5tM6NxfugmNTpAS6RhjRrutoea15Nrzo7V9GgUkk0=",
        "seq": 42,
        "prev_checkpoint": "hP2brDM615FUNIKWIE+n+MU3qW4ImD5fc7P1rKjo7fc=",
        "issued_at": "2025-01-01T00:00:10.123456Z",
    }
    assert base64.b64decode(body.to_json()["root_hash"]) == ROOT


def test_signing_bytes_and_body_hash() -> None:
    body = make_body()
    expected = b"finance/checkpoint/v1\n" + rfc8785.dumps(body.to_json())
    assert signing_bytes(body) == expected
    assert expected.startswith(b'finance/checkpoint/v1\n{"chain_head":')
    assert body_hash(body) == hashlib.sha256(expected).digest()
    assert body_hash(body) != body_hash(make_body(tree_size=1001))


def test_seq_zero_has_null_prev_checkpoint() -> None:
    genesis = make_body(seq=0, prev_checkpoint=None)
    assert genesis.to_json()["prev_checkpoint"] is None
    assert CheckpointBody.from_json(genesis.to_json()) == genesis
    with pytest.raises(ValueError, match="prev_checkpoint"):
        make_body(seq=0)
    with pytest.raises(ValueError, match="prev_checkpoint"):
        make_body(prev_checkpoint=None)


def test_issued_at_is_normalised_to_utc() -> None:
    paris = ISSUED.astimezone(ZoneInfo("Europe/Paris"))
    assert make_body(issued_at=paris).to_json()["issued_at"] == "2025-01-01T00:00:10.123456Z"
    with pytest.raises(ValueError, match="timezone"):
        make_body(issued_at=ISSUED.replace(tzinfo=None))


def test_body_round_trips_through_json() -> None:
    body = make_body()
    again = CheckpointBody.from_json(body.to_json())
    assert again == body
    assert rfc8785.dumps(again.to_json()) == rfc8785.dumps(body.to_json())


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("type", "finance/checkpoint/v2", "type"),
        ("tree_size", True, "tree_size"),
        ("tree_size", "1000", "tree_size"),
        ("tree_size", 1000.0, "tree_size"),
        ("tree_size", -1, "tree_size"),
        ("seq", False, "seq"),
        ("seq", None, "seq"),
        ("root_hash", "AAAA", "root_hash"),
        ("chain_head", 5, "chain_head"),
        ("prev_checkpoint", None, "prev_checkpoint"),
        ("origin", "", "origin"),
        ("issued_at", "2025-01-01T00:00:10Z", "issued_at"),
        ("issued_at", "2025-01-01T00:00:10.123456+00:00", "issued_at"),
        ("issued_at", 1735689610, "issued_at"),
    ],
)
def test_body_from_json_refuses_bad_types(field: str, value: object, reason: str) -> None:
    obj = make_body().to_json()
    obj[field] = value
    with pytest.raises(CheckpointError) as info:
        CheckpointBody.from_json(obj)
    assert reason in info.value.reason


def test_body_from_json_refuses_missing_and_extra_fields() -> None:
    obj = make_body().to_json()
    with pytest.raises(CheckpointError, match="unknown fields \\['extra'\\]"):
        CheckpointBody.from_json({**obj, "extra": 1})
    del obj["chain_head"]
    with pytest.raises(CheckpointError, match="missing fields \\['chain_head'\\]"):
        CheckpointBody.from_json(obj)
    with pytest.raises(CheckpointError, match="object"):
        CheckpointBody.from_json([])


# --- signing and envelope -----------------------------------------------------------------------


def test_signed_checkpoint_round_trips(ed_signer: LocalSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    data = signed.to_bytes()
    assert data == rfc8785.dumps(signed.to_json())
    parsed = SignedCheckpoint.from_bytes(data)
    assert parsed == signed
    assert parsed.to_bytes() == data
    (signature,) = parsed.signatures
    assert signature.signer_id == ORIGIN
    assert signature.key_id == ed_signer.key_id
    assert signature.alg == "ed25519"
    assert len(signature.sig) == 64


def test_signature_verifies(ed_signer: LocalSigner, trust: TrustStore) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    verify_checkpoint(SignedCheckpoint.from_bytes(signed.to_bytes()), trust)


def test_ecdsa_signature_verifies(ec_signer: EcdsaSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ec_signer)])
    assert signed.signatures[0].alg == "ecdsa-p256-sha256"
    verify_checkpoint(
        signed, TrustStore.from_pems([(pem_of(ec_signer), Algorithm.ECDSA_P256_SHA256)])
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 999),
        ("root_hash", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("seq", 43),
        ("issued_at", "2025-01-01T00:00:11.123456Z"),
        ("origin", "ledger.example.com/other/gl"),
    ],
)
def test_tampered_body_fails(
    ed_signer: LocalSigner, trust: TrustStore, field: str, value: object
) -> None:
    obj = signed_json(sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]))
    obj["body"][field] = value
    tampered = SignedCheckpoint.from_bytes(rfc8785.dumps(obj))
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(tampered, trust)


def test_tree_size_written_as_float_is_refused(ed_signer: LocalSigner) -> None:
    data = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]).to_bytes()
    assert b'"tree_size":1000,' in data
    with pytest.raises(CheckpointError, match="non-integer"):
        SignedCheckpoint.from_bytes(data.replace(b'"tree_size":1000,', b'"tree_size":1000.0,'))


def test_duplicate_key_is_refused(ed_signer: LocalSigner) -> None:
    data = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]).to_bytes()
    # A second "seq" a lenient parser would read instead of the signed one.
    doubled = data.replace(b'"seq":42,', b'"seq":42,"seq":7,')
    with pytest.raises(CheckpointError, match="duplicate object key 'seq'"):
        SignedCheckpoint.from_bytes(doubled)


def test_non_canonical_whitespace_is_refused(ed_signer: LocalSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    pretty = json.dumps(signed.to_json(), indent=2, sort_keys=True).encode()
    assert json.loads(pretty) == signed.to_json()
    with pytest.raises(CheckpointError, match="canonical"):
        SignedCheckpoint.from_bytes(pretty)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sig": "not base64!"}, "sig"),
        ({"sig": ""}, "length"),
        ({"alg": 1}, "alg"),
        ({"key_id": None}, "key_id"),
        ({"extra": "x"}, "unknown fields"),
    ],
)
def test_signature_entry_schema(
    ed_signer: LocalSigner, change: dict[str, Any], reason: str
) -> None:
    obj = signed_json(sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]))
    obj["signatures"][0].update(change)
    with pytest.raises(CheckpointError) as info:
        SignedCheckpoint.from_json(obj)
    assert reason in info.value.reason


def test_too_many_signatures_are_refused(ed_signer: LocalSigner) -> None:
    obj = signed_json(sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]))
    obj["signatures"] = obj["signatures"] * 65
    with pytest.raises(CheckpointError, match="more than 64"):
        SignedCheckpoint.from_json(obj)


# --- trust ----------------------------------------------------------------------------------------


def test_unknown_key_only_is_rejected(ed_signer: LocalSigner, ec_signer: EcdsaSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ec_signer)])
    with pytest.raises(CheckpointError, match="no checkpoint signature by a trusted key"):
        verify_checkpoint(signed, TrustStore.from_pems([(pem_of(ed_signer), Algorithm.ED25519)]))


def test_no_signatures_is_rejected(trust: TrustStore) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint signature by a trusted key"):
        verify_checkpoint(SignedCheckpoint(make_body(), ()), trust)


def test_unknown_extra_signature_is_ignored(
    ed_signer: LocalSigner, ec_signer: EcdsaSigner, trust: TrustStore
) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer), ("witness", ec_signer)])
    # Even garbage from an untrusted key (a witness we do not pin) does not matter.
    junk = dataclasses.replace(signed.signatures[1], sig=b"\x00" * 70, alg="ml-dsa-65")
    verify_checkpoint(SignedCheckpoint(signed.body, (signed.signatures[0], junk)), trust)


def test_valid_plus_bad_trusted_signature_is_rejected(tmp_path: Path) -> None:
    old = LocalSigner(tmp_path / "old.pem")
    new = LocalSigner(tmp_path / "new.pem")
    trust = TrustStore.from_pems(
        [(pem_of(old), Algorithm.ED25519), (pem_of(new), Algorithm.ED25519)]
    )
    signed = sign_checkpoint(make_body(), [(ORIGIN, old), (ORIGIN, new)])
    verify_checkpoint(signed, trust)
    bad = dataclasses.replace(signed.signatures[1], sig=old.sign(b"something else"))
    with pytest.raises(CheckpointError, match=f"trusted key {new.key_id} does not verify"):
        verify_checkpoint(SignedCheckpoint(signed.body, (signed.signatures[0], bad)), trust)


def test_lying_alg_field_is_rejected(ed_signer: LocalSigner, trust: TrustStore) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    lying = dataclasses.replace(signed.signatures[0], alg="ecdsa-p256-sha256")
    with pytest.raises(CheckpointError, match="pinned to ed25519"):
        verify_checkpoint(SignedCheckpoint(signed.body, (lying,)), trust)


def test_key_pinned_to_other_alg_is_refused_by_the_trust_store(ed_signer: LocalSigner) -> None:
    with pytest.raises(ValueError, match="does not match"):
        TrustStore.from_pems([(pem_of(ed_signer), Algorithm.ECDSA_P256_SHA256)])


def test_rotation_two_signers_both_verify(ed_signer: LocalSigner, ec_signer: EcdsaSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer), (ORIGIN, ec_signer)])
    assert [s.key_id for s in signed.signatures] == [ed_signer.key_id, ec_signer.key_id]
    old_only = TrustStore.from_pems([(pem_of(ed_signer), Algorithm.ED25519)])
    new_only = TrustStore.from_pems([(pem_of(ec_signer), Algorithm.ECDSA_P256_SHA256)])
    both = TrustStore.from_pems(
        [(pem_of(ed_signer), Algorithm.ED25519), (pem_of(ec_signer), Algorithm.ECDSA_P256_SHA256)]
    )
    for store in (old_only, new_only, both):
        verify_checkpoint(SignedCheckpoint.from_bytes(signed.to_bytes()), store)


def test_validity_window(ed_signer: LocalSigner) -> None:
    signed = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    spki = ed_signer.public_key_spki()

    def store(start: datetime | None, end: datetime | None) -> TrustStore:
        return TrustStore([TrustedKey(ed_signer.key_id, Algorithm.ED25519, spki, start, end)])

    second = timedelta(seconds=1)
    verify_checkpoint(signed, store(ISSUED - second, ISSUED + second))
    verify_checkpoint(signed, store(ISSUED, ISSUED))  # both bounds inclusive
    verify_checkpoint(signed, store(None, ISSUED))
    with pytest.raises(CheckpointError, match="validity window"):
        verify_checkpoint(signed, store(ISSUED + second, None))
    with pytest.raises(CheckpointError, match="validity window"):
        verify_checkpoint(signed, store(None, ISSUED - second))


def test_trust_store_from_json(ed_signer: LocalSigner, ec_signer: EcdsaSigner) -> None:
    trust_file = {
        "keys": [
            {
                "key_id": ed_signer.key_id,
                "alg": "ed25519",
                "public_key": pem_of(ed_signer).decode(),
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": "2025-01-01T00:00:00Z",
            },
            {
                "key_id": ec_signer.key_id,
                "alg": "ecdsa-p256-sha256",
                "public_key": pem_of(ec_signer).decode(),
                "valid_from": "2025-01-01T00:00:00Z",
                "valid_to": None,
            },
        ]
    }
    store = TrustStore.from_json(trust_file)
    assert len(store) == 2
    ed_key = store.get(ed_signer.key_id)
    assert ed_key is not None
    assert ed_key.valid_to == datetime(2025, 1, 1, tzinfo=UTC)
    # Rotation: ISSUED is after the old key retired, so only the new key's signature may count,
    # and the old key's presence is a rejection.
    verify_checkpoint(sign_checkpoint(make_body(), [(ORIGIN, ec_signer)]), store)
    with pytest.raises(CheckpointError, match="validity window"):
        verify_checkpoint(sign_checkpoint(make_body(), [(ORIGIN, ed_signer)]), store)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda entry: entry.update(key_id="00" * 32), "key_id"),
        (lambda entry: entry.update(alg="rsa"), "rsa"),
        (lambda entry: entry.update(valid_from="2025-01-01T00:00:00"), "timezone"),
        (lambda entry: entry.update(colour="red"), "unknown"),
        (lambda entry: entry.update(valid_from="2026-01-01T00:00:00Z"), "after"),
    ],
)
def test_trust_store_from_json_refuses_bad_entries(
    ed_signer: LocalSigner, mutate: Any, message: str
) -> None:
    entry: dict[str, Any] = {
        "key_id": ed_signer.key_id,
        "alg": "ed25519",
        "public_key": pem_of(ed_signer).decode(),
        "valid_to": "2025-06-01T00:00:00Z",
    }
    mutate(entry)
    with pytest.raises(ValueError, match=message):
        TrustStore.from_json({"keys": [entry]})


def test_trust_store_refuses_duplicates_and_emptiness(ed_signer: LocalSigner) -> None:
    pem = pem_of(ed_signer)
    with pytest.raises(ValueError, match="twice"):
        TrustStore.from_pems([(pem, Algorithm.ED25519), (pem, Algorithm.ED25519)])
    with pytest.raises(ValueError, match="at least one"):
        TrustStore.from_pems([])
    with pytest.raises(ValueError, match="PEM"):
        TrustStore.from_pems([(b"not a key", Algorithm.ED25519)])


def test_sign_checkpoint_refuses_a_signer_whose_signatures_do_not_verify(
    ed_signer: LocalSigner,
) -> None:
    class Broken(EcdsaSigner):
        def sign(self, message: bytes) -> bytes:
            return super().sign(message + b"!")

    with pytest.raises(SignerError, match="does not verify"):
        sign_checkpoint(make_body(), [(ORIGIN, Broken())])
    with pytest.raises(ValueError, match="at least one"):
        sign_checkpoint(make_body(), [])


# --- chain rules and equivocation ---------------------------------------------------------------


def successor(previous: CheckpointBody, **changes: Any) -> CheckpointBody:
    fields: dict[str, Any] = {
        "seq": previous.seq + 1,
        "prev_checkpoint": body_hash(previous),
        "tree_size": previous.tree_size + 10,
        "root_hash": hashlib.sha256(b"root2").digest(),
        "chain_head": hashlib.sha256(b"head2").digest(),
        "issued_at": previous.issued_at + timedelta(seconds=10),
    }
    fields.update(changes)
    return dataclasses.replace(previous, **fields)


def test_chain_accepts_a_proper_successor() -> None:
    first = make_body()
    verify_checkpoint_chain(first, successor(first))
    # No new entries (a period-close checkpoint): same size, same root and head is allowed.
    verify_checkpoint_chain(
        first, successor(first, tree_size=1000, root_hash=ROOT, chain_head=HEAD)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seq": 44}, "seq 44 does not follow 42"),
        ({"seq": 42}, "seq 42 does not follow 42"),
        ({"prev_checkpoint": PREV}, "prev_checkpoint"),
        ({"tree_size": 999}, "shrank"),
        ({"tree_size": 1000}, "same tree_size"),
        ({"issued_at": ISSUED - timedelta(microseconds=1)}, "did not increase"),
        ({"issued_at": ISSUED}, "did not increase"),
        ({"origin": "ledger.example.com/other/gl"}, "origins"),
    ],
)
def test_chain_refuses_broken_links(changes: dict[str, Any], message: str) -> None:
    first = make_body()
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint_chain(first, successor(first, **changes))


def test_chain_detects_rewritten_previous_body() -> None:
    first = make_body()
    second = successor(first)
    rewritten = dataclasses.replace(first, root_hash=hashlib.sha256(b"forged").digest())
    with pytest.raises(CheckpointError, match="prev_checkpoint"):
        verify_checkpoint_chain(rewritten, second)


def test_equivocation() -> None:
    body = make_body()
    other_root = hashlib.sha256(b"other").digest()
    same_size = make_body(seq=50, root_hash=other_root)
    same_seq = make_body(tree_size=2000, root_hash=other_root)
    assert equivocation(body, same_size)
    assert equivocation(same_seq, body)
    assert equivocation(body, make_body(chain_head=other_root))
    # Identical bodies, honest successors, and other logs are not evidence.
    assert not equivocation(body, make_body())
    assert not equivocation(body, successor(body))
    assert not equivocation(body, make_body(origin="ledger.example.com/other/gl", root_hash=PREV))


def test_equivocation_evidence_is_two_validly_signed_checkpoints(
    ed_signer: LocalSigner, trust: TrustStore
) -> None:
    honest = sign_checkpoint(make_body(), [(ORIGIN, ed_signer)])
    forked = sign_checkpoint(make_body(root_hash=PREV), [(ORIGIN, ed_signer)])
    verify_checkpoint(honest, trust)
    verify_checkpoint(forked, trust)
    assert equivocation(honest.body, forked.body)


def test_signature_dataclass_json() -> None:
    signature = Signature("s", "k", "ed25519", b"\x01\x02")
    assert signature.to_json() == {"signer_id": "s", "key_id": "k", "alg": "ed25519", "sig": "AQI="}
    assert Signature.from_json(signature.to_json()) == signature
