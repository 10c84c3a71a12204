"""Audit bundles (docs/proofs.md, "Audit bundles"): deterministic bytes, and a reader that refuses
every hostile or damaged archive with a BundleError naming the check. Hostile archives are built
by hand with tarfile from the parts of a real, correctly signed bundle, so that each test breaks
exactly one rule."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from finance.adapters.signers.local import LocalSigner
from finance.proofs import bundle as bundle_module
from finance.proofs.bundle import (
    BUNDLE_PREFIX,
    Bundle,
    BundleError,
    CheckpointRef,
    Manifest,
    build_bundle,
    bundle_name,
    bundle_sha256,
    read_bundle,
)
from finance.proofs.checkpoint import CheckpointBody
from finance.proofs.errors import InvalidProof
from finance.proofs.signatures import (
    SignatureError,
    TrustedKey,
    TrustStore,
    sign_message,
    signatures_from_json,
)
from finance.proofs.signatures import verify_message as verify_signed
from finance.proofs.signing import Algorithm, public_key_pem
from tests.signers import EcdsaSigner

ISSUED = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
REF = CheckpointRef(seq=42, tree_size=1000, root_hash=bytes(range(32)), issued_at=ISSUED)
NAME = "bundle-acme-00000000100-00000000499-000042"
FILES = {
    "entries/00000000100-00000000499.jsonl": b'{"entry_id":100}\n{"entry_id":101}\n',
    "proofs/range-100-499.json": b'{"type":"finance/range-proof/v1"}',
    "checkpoints/000042.json": b'{"body":{}}',
    "trust/keys.json": b'{"keys":[]}',
}
TOOL = "finance 0.1.0"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> LocalSigner:
    return LocalSigner(tmp_path_factory.mktemp("keys") / "ledger.pem")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> LocalSigner:
    return LocalSigner(tmp_path_factory.mktemp("keys") / "stranger.pem")


def trust_of(signer: LocalSigner) -> TrustStore:
    pem = public_key_pem(signer.public_key_spki()).encode()
    return TrustStore.from_pems([(pem, Algorithm.ED25519)])


@pytest.fixture(scope="module")
def trust(signer: LocalSigner) -> TrustStore:
    return trust_of(signer)


@pytest.fixture(scope="module")
def good(signer: LocalSigner) -> bytes:
    name, data = build_bundle("acme", 100, 499, REF, FILES, [("finance.local", signer)], TOOL)
    assert name == NAME
    return data


def members_of(data: bytes) -> dict[str, bytes]:
    """Paths inside the bundle directory -> bytes, in archive order."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name.removeprefix(NAME + "/")] = handle.read()
    return out


Member = tuple[str, bytes] | tarfile.TarInfo


def pack(*members: Member, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar of (full name, bytes) regular files and ready-made TarInfo entries, in this order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def repack(parts: dict[str, bytes], *extra: Member, root: str = NAME) -> bytes:
    return pack(*((f"{root}/{path}", data) for path, data in parts.items()), *extra)


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def signed(manifest_bytes: bytes, signer: LocalSigner) -> bytes:
    signatures = sign_message(BUNDLE_PREFIX + manifest_bytes, [("finance.local", signer)])
    return rfc8785.dumps({"signatures": [s.to_json() for s in signatures]})


def with_manifest(good: bytes, signer: LocalSigner, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """The good bundle with its manifest edited as JSON, re-encoded as JCS and validly re-signed:
    only the schema (or whatever `edit` breaks) is wrong."""
    parts = members_of(good)
    manifest = json.loads(parts["manifest.json"])
    edit(manifest)
    parts["manifest.json"] = rfc8785.dumps(manifest)
    parts["manifest.sig.json"] = signed(parts["manifest.json"], signer)
    return repack(parts)


def refused(data: bytes, trust: TrustStore, match: str) -> BundleError:
    with pytest.raises(BundleError, match=match) as caught:
        read_bundle(data, trust)
    assert isinstance(caught.value, InvalidProof)
    return caught.value


# -- building ------------------------------------------------------------------------------------


def test_the_same_export_twice_gives_the_same_bytes(signer: LocalSigner, good: bytes) -> None:
    reordered = dict(reversed(list(FILES.items())))
    name, again = build_bundle("acme", 100, 499, REF, reordered, [("finance.local", signer)], TOOL)
    assert name == NAME
    assert again == good
    assert bundle_sha256(again) == bundle_sha256(good) == hashlib.sha256(good).hexdigest()
    # ...and any change of content, range or checkpoint is a different bundle.
    changed = dict(FILES, **{"trust/keys.json": b'{"keys":[1]}'})
    _, other = build_bundle("acme", 100, 499, REF, changed, [("finance.local", signer)], TOOL)
    assert bundle_sha256(other) != bundle_sha256(good)


def test_with_ecdsa_only_the_signature_file_differs(signer: LocalSigner) -> None:
    """ECDSA signatures are randomised: two exports then differ in manifest.sig.json alone (the
    documented limit of reproducibility), and both verify."""
    ecdsa = EcdsaSigner()
    pem = public_key_pem(ecdsa.public_key_spki()).encode()
    trust = TrustStore.from_pems([(pem, Algorithm.ECDSA_P256_SHA256)])
    builds = [build_bundle("acme", 100, 499, REF, FILES, [("s", ecdsa)], TOOL)[1] for _ in "ab"]
    first, second = (members_of(data) for data in builds)
    assert first["manifest.sig.json"] != second["manifest.sig.json"]
    del first["manifest.sig.json"], second["manifest.sig.json"]
    assert first == second
    for data in builds:
        assert dict(read_bundle(data, trust).files) == FILES


def test_tar_metadata_is_fixed_and_members_sorted(good: bytes) -> None:
    assert len(good) % tarfile.RECORDSIZE == 0
    assert good[257:265] == b"ustar\x0000"  # USTAR magic and version in the first header
    with tarfile.open(fileobj=io.BytesIO(good), mode="r:") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names == [
        f"{NAME}/checkpoints/000042.json",
        f"{NAME}/entries/00000000100-00000000499.jsonl",
        f"{NAME}/manifest.json",
        f"{NAME}/manifest.sig.json",
        f"{NAME}/proofs/range-100-499.json",
        f"{NAME}/trust/keys.json",
    ]
    for member in members:
        assert member.type == tarfile.REGTYPE
        assert (member.mtime, member.uid, member.gid) == (0, 0, 0)
        assert (member.uname, member.gname, member.mode) == ("", "", 0o444)
        assert not member.pax_headers


def test_manifest_is_jcs_with_every_file_and_no_clock(good: bytes, trust: TrustStore) -> None:
    parts = members_of(good)
    manifest = parts["manifest.json"]
    assert manifest == rfc8785.dumps(json.loads(manifest))
    assert json.loads(manifest) == {
        "type": "finance/bundle/v1",
        "ledger_id": "acme",
        "range": {"start_id": 100, "end_id": 499},
        "checkpoint": {
            "seq": 42,
            "tree_size": 1000,
            "root_hash": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "issued_at": "2026-03-01T12:00:00.250000Z",
        },
        "files": [
            {"path": path, "sha256": hashlib.sha256(FILES[path]).hexdigest(),
             "size": len(FILES[path])}
            for path in sorted(FILES)
        ],
        "tool_version": TOOL,
    }  # fmt: skip
    # The signature file is JCS {"signatures": [...]} over the documented message.
    signatures = json.loads(parts["manifest.sig.json"])
    assert parts["manifest.sig.json"] == rfc8785.dumps(signatures)
    verify_signed(
        b"finance/bundle/v1\n" + manifest,
        signatures_from_json(signatures["signatures"]),
        trust,
        ISSUED,
        "manifest",
    )


def test_read_bundle_hands_back_the_verified_files(good: bytes, trust: TrustStore) -> None:
    bundle = read_bundle(good, trust)
    assert isinstance(bundle, Bundle)
    assert bundle.name == NAME
    assert dict(bundle.files) == FILES
    assert bundle.sha256 == bundle_sha256(good)
    assert bundle.manifest.checkpoint == REF
    assert (bundle.manifest.start_id, bundle.manifest.end_id) == (100, 499)
    assert bundle.manifest.bundle_name == NAME
    with pytest.raises(TypeError):
        bundle.files["extra"] = b"x"  # type: ignore[index]


def test_checkpoint_ref_of_a_checkpoint_body() -> None:
    body = CheckpointBody("finance.local/acme", 1000, bytes(range(32)), b"\x07" * 32, 42,
                          b"\x01" * 32, ISSUED)  # fmt: skip
    assert CheckpointRef.of(body) == REF


def test_bundle_names_are_zero_padded() -> None:
    assert bundle_name("acme", 0, 9, 1) == "bundle-acme-00000000000-00000000009-000001"
    assert bundle_name("t-1", 2**53 - 2, 2**53 - 1, 10**7) == (
        "bundle-t-1-9007199254740990-9007199254740991-10000000"
    )


def test_the_longest_names_fit_in_ustar(signer: LocalSigner, trust: TrustStore) -> None:
    ledger = "l" * 63
    ref = CheckpointRef(2**53 - 1, 2**53 - 1, bytes(32), ISSUED)
    path = "a/" + "b" * 98
    name, data = build_bundle(ledger, 2**53 - 3, 2**53 - 2, ref, {path: b"x"},
                              [("s", signer)], TOOL)  # fmt: skip
    assert len(name) > 100
    assert read_bundle(data, trust).files == {path: b"x"}


@pytest.mark.parametrize(
    ("files", "ledger", "start", "end", "message"),
    [
        ({"manifest.json": b""}, "acme", 1, 2, "written by build_bundle"),
        ({"a/../b": b""}, "acme", 1, 2, r"contains '\.\.'"),
        ({"/abs": b""}, "acme", 1, 2, "is absolute"),
        ({"a\\b": b""}, "acme", 1, 2, "backslash"),
        ({"Upper.json": b""}, "acme", 1, 2, "characters other than"),
        ({"a//b": b""}, "acme", 1, 2, "empty or '.' segment"),
        ({"x" * 101: b""}, "acme", 1, 2, "longer than 100"),
        ({"a": b"", "a/b": b""}, "acme", 1, 2, "both a file and a directory"),
        ({}, "Acme", 1, 2, "not a tenant id"),
        ({}, "../x", 1, 2, "not a tenant id"),
        ({}, "acme", 3, 2, "not within"),
        ({}, "acme", 1, 1000, "not within"),
    ],
)
def test_build_refuses_what_no_reader_would_accept(
    signer: LocalSigner, files: dict[str, bytes], ledger: str, start: int, end: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_bundle(ledger, start, end, REF, files, [("s", signer)], TOOL)


def test_build_needs_a_signer_and_a_tool_version(signer: LocalSigner) -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        build_bundle("acme", 1, 2, REF, FILES, [], TOOL)
    with pytest.raises(ValueError, match="tool_version"):
        build_bundle("acme", 1, 2, REF, FILES, [("s", signer)], "")


# -- the tar container ---------------------------------------------------------------------------


def test_a_root_directory_entry_is_accepted(good: bytes, trust: TrustStore) -> None:
    root = special(NAME, tarfile.DIRTYPE)
    data = pack(root, *((f"{NAME}/{p}", d) for p, d in members_of(good).items()))
    assert dict(read_bundle(data, trust).files) == FILES


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        (special(f"{NAME}/evil", tarfile.SYMTYPE, "/etc/passwd"), "a symbolic link"),
        (special(f"{NAME}/evil", tarfile.LNKTYPE, f"{NAME}/trust/keys.json"), "a hard link"),
        (special(f"{NAME}/evil", tarfile.CHRTYPE), "a device"),
        (special(f"{NAME}/evil", tarfile.BLKTYPE), "a device"),
        (special(f"{NAME}/evil", tarfile.FIFOTYPE), "a FIFO"),
        (special(f"{NAME}/entries", tarfile.DIRTYPE), "a directory"),
        (special(f"{NAME}/evil", tarfile.CONTTYPE), "of tar type"),
    ],
)
def test_only_regular_files_are_accepted(
    good: bytes, trust: TrustStore, entry: tarfile.TarInfo, kind: str
) -> None:
    refused(repack(members_of(good), entry), trust, f"is {kind}.*, not a regular file")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"/{NAME}/extra", "absolute path"),
        (f"{NAME}/../extra", r"contains '\.\.'"),
        (f"{NAME}/entries/../../x", r"contains '\.\.'"),
        (f"{NAME}\\extra", "backslash"),
        (f"{NAME}/a\\b", "backslash"),
        ("extra", "outside a bundle-"),
        ("bundle-acme-00000000100-00000000499-000043/extra", "outside the one bundle directory"),
        (NAME, "outside the bundle directory"),
        (f"{NAME}/./extra", "empty or '.' segment"),
        (f"{NAME}/a//b", "empty or '.' segment"),
        (f"{NAME}/.hidden", "empty or '.' segment"),
        (f"{NAME}/Trust/keys.json", "characters other than"),
    ],
)
def test_member_names_are_policed(good: bytes, trust: TrustStore, name: str, message: str) -> None:
    refused(repack(members_of(good), (name, b"x")), trust, message)


def test_a_duplicate_member_is_refused(good: bytes, trust: TrustStore) -> None:
    # The same name twice: an extracting tool would keep the second, a hash check might see the
    # first.
    refused(repack(members_of(good), (f"{NAME}/trust/keys.json", FILES["trust/keys.json"])),
            trust, "appears twice")  # fmt: skip


def test_a_file_that_is_also_a_directory_is_refused(good: bytes, trust: TrustStore) -> None:
    refused(repack(members_of(good), (f"{NAME}/trust", b"")), trust, "both a file and a directory")


def test_a_directory_named_otherwise_than_the_manifest_says(good: bytes, trust: TrustStore) -> None:
    other = "bundle-acme-00000000100-00000000498-000042"
    refused(repack(members_of(good), root=other), trust, "is not 'bundle-acme-")


def test_garbage_gzip_empty_and_truncated_archives(good: bytes, trust: TrustStore) -> None:
    refused(b"not a tar at all" * 64, trust, "not a plain tar archive")
    refused(gzip.compress(good, mtime=0), trust, "not a plain tar archive")
    refused(b"\0" * 10240, trust, "not a plain tar archive|empty archive")
    refused(good[: len(good) // 2], trust, "truncated|damaged|corrupt")
    first_header_and_some_data = good[:700]
    refused(first_header_and_some_data, trust, "truncated|corrupt")


def test_data_after_the_end_of_the_archive_is_refused(good: bytes, trust: TrustStore) -> None:
    refused(good + b"hidden", trust, "data after the end")
    # A damaged header in the middle makes tarfile stop quietly; the rest is not padding.
    with tarfile.open(fileobj=io.BytesIO(good), mode="r:") as tar:
        second = tar.getmembers()[1].offset
    damaged = bytearray(good)
    damaged[second + 148 : second + 156] = b"0000000\0"  # a wrong header checksum
    refused(bytes(damaged), trust, "data after the end|corrupt")


def test_size_and_member_caps(
    good: bytes, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "BUNDLE_BYTES_MAX", len(good) - 1)
    refused(good, trust, "over the limit")
    monkeypatch.setattr(bundle_module, "BUNDLE_BYTES_MAX", len(good))
    read_bundle(good, trust)
    monkeypatch.setattr(bundle_module, "BUNDLE_MEMBERS_MAX", len(FILES) + 1)
    refused(good, trust, "more than 5 members")


def test_the_default_caps_are_the_documented_ones() -> None:
    assert bundle_module.BUNDLE_BYTES_MAX == 1024**3
    assert bundle_module.BUNDLE_MEMBERS_MAX == 100_000


def test_the_builder_respects_the_member_cap(
    signer: LocalSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "BUNDLE_MEMBERS_MAX", len(FILES) + 1)
    with pytest.raises(ValueError, match="at most 5 members"):
        build_bundle("acme", 100, 499, REF, FILES, [("s", signer)], TOOL)


# -- the manifest against the files --------------------------------------------------------------


def test_an_unlisted_file_is_refused(good: bytes, trust: TrustStore) -> None:
    refused(repack(members_of(good), (f"{NAME}/anchors/x.tsr", b"x")), trust,
            "anchors/x.tsr is in the bundle but not in the manifest")  # fmt: skip


def test_a_listed_file_that_is_missing_is_refused(good: bytes, trust: TrustStore) -> None:
    parts = members_of(good)
    del parts["proofs/range-100-499.json"]
    refused(repack(parts), trust, "range-100-499.json is in the manifest but not in the bundle")


def test_a_file_altered_against_its_manifest(good: bytes, trust: TrustStore) -> None:
    parts = members_of(good)
    entries = "entries/00000000100-00000000499.jsonl"
    parts[entries] = parts[entries].replace(b"100", b"109")  # same size, other bytes
    refused(repack(parts), trust, f"{entries} does not match its SHA-256")
    parts[entries] = FILES[entries] + b"\n"
    refused(repack(parts), trust, f"{entries} is 35 bytes, the manifest says 34")


@pytest.mark.parametrize("missing", ["manifest.json", "manifest.sig.json"])
def test_the_manifest_and_its_signature_must_be_there(
    good: bytes, trust: TrustStore, missing: str
) -> None:
    parts = members_of(good)
    del parts[missing]
    refused(repack(parts), trust, f"bundle has no {missing}")


# -- the manifest itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda m: json.dumps(json.loads(m), indent=1).encode(), "not RFC 8785 canonical"),
        (lambda m: m.replace(b'"size":', b'"size":1,"size":', 1), "duplicate object key"),
        (lambda m: m.replace(b'"tree_size":1000', b'"tree_size":1000.0'), "non-integer number"),
        (lambda m: m.replace(b'"tree_size":1000', b'"tree_size":1e3'), "non-integer number"),
        (lambda m: b"\xff" + m, "not valid UTF-8"),
    ],
)
def test_a_manifest_that_is_not_strict_jcs_is_refused(
    good: bytes, trust: TrustStore, signer: LocalSigner, mangle: Callable[[bytes], bytes],
    message: str,
) -> None:  # fmt: skip
    # Re-signed, so the signature is not what stops it: the strict parse is.
    parts = members_of(good)
    parts["manifest.json"] = mangle(parts["manifest.json"])
    parts["manifest.sig.json"] = signed(parts["manifest.json"], signer)
    error = refused(repack(parts), trust, message)
    assert error.reason.startswith("manifest.json: ")


def set_path(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        target: Any = manifest
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def unsort_files(manifest: dict[str, Any]) -> None:
    manifest["files"].reverse()


def duplicate_file(manifest: dict[str, Any]) -> None:
    manifest["files"].insert(0, manifest["files"][0])


def list_the_manifest(manifest: dict[str, Any]) -> None:
    manifest["files"].insert(0, {"path": "manifest.json", "sha256": "0" * 64, "size": 1})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_path(("type",), "finance/bundle/v2"), "manifest type must be"),
        (set_path(("generated_at",), "2026-01-01T00:00:00Z"), r"unknown fields \['generated_at'\]"),
        (set_path(("range", "start_id"), "100"), "range.start_id must be a JSON integer"),
        (set_path(("range", "end_id"), True), "range.end_id must be a JSON integer"),
        (set_path(("range", "end_id"), 1000), "not within the checkpoint's tree"),
        (set_path(("range", "start_id"), 500), "not within the checkpoint's tree"),
        (set_path(("ledger_id",), "ACME"), "not a tenant id"),
        (set_path(("checkpoint", "root_hash"), "AAAA"), "decode to 32 bytes"),
        (set_path(("checkpoint", "issued_at"), "2026-03-01T12:00:00Z"), "issued_at is not"),
        (set_path(("files", 0, "sha256"), "A" * 64), "64 lower-case hex"),
        (set_path(("files", 0, "size"), -1), r"files\[0\].size must be a JSON integer"),
        (set_path(("files", 0, "path"), "../x"), r"contains '\.\.'"),
        (set_path(("files", 0, "mode"), 420), r"files\[0\]: missing fields \[\], unknown"),
        (set_path(("files",), {}), "files must be a list"),
        (set_path(("tool_version",), ""), "tool_version must be a non-empty string"),
        (unsort_files, "not sorted by path without duplicates"),
        (duplicate_file, "not sorted by path without duplicates"),
        (list_the_manifest, "cannot list itself"),
    ],
)
def test_a_schema_invalid_manifest_is_refused(
    good: bytes, trust: TrustStore, signer: LocalSigner,
    edit: Callable[[dict[str, Any]], None], message: str,
) -> None:  # fmt: skip
    refused(with_manifest(good, signer, edit), trust, message)


def test_a_tampered_manifest_fails_its_signature(good: bytes, trust: TrustStore) -> None:
    # The attacker alters a file and updates the manifest to match, but cannot re-sign.
    parts = members_of(good)
    manifest = json.loads(parts["manifest.json"])
    entries = "entries/00000000100-00000000499.jsonl"
    parts[entries] = b'{"entry_id":100}\n'
    for item in manifest["files"]:
        if item["path"] == entries:
            item["sha256"] = hashlib.sha256(parts[entries]).hexdigest()
            item["size"] = len(parts[entries])
    parts["manifest.json"] = rfc8785.dumps(manifest)
    error = refused(repack(parts), trust, "bundle manifest signature by trusted key .* not verify")
    assert isinstance(error.__cause__, SignatureError)


def test_a_manifest_signed_by_an_untrusted_key_is_refused(
    good: bytes, trust: TrustStore, stranger: LocalSigner
) -> None:
    resigned = with_manifest(good, stranger, lambda manifest: None)
    refused(resigned, trust, "no bundle manifest signature by a trusted key")
    # ...and it is a perfectly good bundle for whoever trusts that key.
    assert dict(read_bundle(resigned, trust_of(stranger)).files) == FILES


@pytest.mark.parametrize(
    ("sig_file", "message"),
    [
        (b'{"signatures":[]}', "no bundle manifest signature by a trusted key"),
        (b'{"signatures":{}}', "manifest.sig.json: signatures must be a list"),
        (b'{"sigs":[]}', "manifest.sig.json: .*unknown fields"),
        (b'{ "signatures":[]}', "manifest.sig.json: input is not RFC 8785"),
    ],
)
def test_a_broken_signature_file_is_refused(
    good: bytes, trust: TrustStore, sig_file: bytes, message: str
) -> None:
    parts = members_of(good)
    parts["manifest.sig.json"] = sig_file
    refused(repack(parts), trust, message)


def test_key_windows_are_checked_at_the_checkpoint_time(good: bytes, signer: LocalSigner) -> None:
    spki = signer.public_key_spki()

    def window(start: datetime | None, end: datetime | None) -> TrustStore:
        return TrustStore([TrustedKey(signer.key_id, Algorithm.ED25519, spki, start, end)])

    read_bundle(good, window(ISSUED, ISSUED))
    later = window(ISSUED + timedelta(seconds=1), None)
    refused(good, later, "outside the validity window")
    # A verifier that knows better (e.g. when the export was signed) can say so.
    read_bundle(good, later, at=ISSUED + timedelta(days=1))
    refused(good, window(None, ISSUED - timedelta(microseconds=1)), "outside the validity window")


def test_manifest_round_trips(good: bytes) -> None:
    manifest_bytes = members_of(good)["manifest.json"]
    assert Manifest.from_bytes(manifest_bytes).to_bytes() == manifest_bytes


def test_docs_describe_the_bundle_as_built(good: bytes) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "proofs.md").read_text(encoding="utf-8")
    heading = re.search(r"^## (?:\d+\. )?Audit bundles$", doc, re.MULTILINE)
    assert heading is not None
    section = doc[heading.end() :].split("\n## ", 1)[0]
    for fact in (
        "finance/bundle/v1\\n",
        "bundle-<ledger>-<start:011d>-<end:011d>-<seq:06d>",
        "manifest.sig.json",
        "0444",
        "USTAR",
        "1 GiB",
        "100,000",
    ):
        assert fact in section, fact
    assert bundle_module.__doc__ is not None
    assert 'docs/proofs.md, "Audit bundles"' in bundle_module.__doc__
