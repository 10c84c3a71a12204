"""Audit bundles (docs/proofs.md, "Audit bundles"; design 3.6): one deterministic tar holding an
export's files and a signed manifest of their SHA-256 hashes and sizes. Pure: bytes in, bytes
out, no file system.

    bundle-<ledger>-<start:011d>-<end:011d>-<seq:06d>/
      manifest.json        JCS {type, ledger_id, range, checkpoint, files, tool_version}
      manifest.sig.json    JCS {"signatures": [...]} over "finance/bundle/v1\\n" || manifest.json
      <the listed files>   entries/, proofs/, checkpoints/, consistency/, trust/, anchors/ ...

The manifest holds no wall-clock time, and the tar's metadata is fixed (sorted members, mtime 0,
uid/gid 0, no owner names, mode 0444, USTAR), so exporting the same range against the same
checkpoint twice gives the same bytes whenever the signatures are deterministic (Ed25519).

`read_bundle` checks the container only: the tar is plain, holds nothing but regular files under
the one bundle directory, every file is listed with the right hash and size, nothing unlisted is
there, and the manifest is canonical, schema-valid and signed by a trusted key. What the files
prove (range package, checkpoints, consistency proofs) is the verifier's business; it gets the
checked bytes back.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from finance.proofs.chain import rfc3339_utc
from finance.proofs.checkpoint import CheckpointBody
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, hash32, integer, reraise_as, string, timestamp
from finance.proofs.signatures import (
    Signature,
    TrustStore,
    sign_message,
    signatures_from_json,
    verify_message,
)
from finance.proofs.signing import Signer
from finance.proofs.strict_json import (
    HASH_BYTES,
    JSON_INT_MAX,
    b64encode,
    canonical_dumps,
    loads_strict,
)

BUNDLE_TYPE: Final = "finance/bundle/v1"
BUNDLE_PREFIX: Final = b"finance/bundle/v1\n"
MANIFEST_PATH: Final = "manifest.json"
MANIFEST_SIG_PATH: Final = "manifest.sig.json"

# Limits on what a reader accepts (and a builder produces). A 100,000-entry export is a few
# hundred MB (the entries appear twice: as JSON lines and inside the range package), so 1 GiB
# leaves room; every tar member costs at least 1 KiB, so the member cap is reached only by a
# bundle made of tiny files, which no export writes.
BUNDLE_BYTES_MAX: Final = 1024 * 1024 * 1024
BUNDLE_MEMBERS_MAX: Final = 100_000
# A USTAR header holds a name of 100 bytes plus a 155-byte prefix split at a '/': the bundle
# directory (at most 121 characters) goes in the prefix, the path inside it in the name.
PATH_CHARS_MAX: Final = 100
PATH_DEPTH_MAX: Final = 8

FILE_MODE: Final = 0o444
TAR_FORMAT: Final = tarfile.USTAR_FORMAT

# A ledger id is a tenant id (auth.tokens.TENANT_ID_PATTERN); it becomes part of a file name.
_LEDGER_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ROOT_RE: Final = re.compile(
    r"bundle-[a-z0-9][a-z0-9_-]{0,62}-[0-9]{11,16}-[0-9]{11,16}-[0-9]{6,16}"
)
# One path segment: lower-case ASCII only, so no two names collide on a case-insensitive or
# normalising file system, and a leading letter or digit rules out ".", ".." and hidden files.
_SEGMENT_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SHA256_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")
_RESERVED: Final = frozenset({MANIFEST_PATH, MANIFEST_SIG_PATH})

_MANIFEST_KEYS: Final = frozenset(
    {"type", "ledger_id", "range", "checkpoint", "files", "tool_version"}
)
_RANGE_KEYS: Final = frozenset({"start_id", "end_id"})
_CHECKPOINT_KEYS: Final = frozenset({"seq", "tree_size", "root_hash", "issued_at"})
_FILE_KEYS: Final = frozenset({"path", "sha256", "size"})


class BundleError(InvalidProof):
    """A bundle is not a well-formed, complete, trusted-signed archive; `reason` names the check."""


@dataclass(frozen=True)
class CheckpointRef:
    """The checkpoint the bundle's range is proven against. `issued_at` is the time a manifest
    signature's key window is checked at (see `read_bundle`)."""

    seq: int
    tree_size: int
    root_hash: bytes
    issued_at: datetime

    def __post_init__(self) -> None:
        for name, number in (("seq", self.seq), ("tree_size", self.tree_size)):
            if not 0 <= number <= JSON_INT_MAX:
                raise ValueError(f"{name} must be in [0, 2^53 - 1], got {number}")
        if len(self.root_hash) != HASH_BYTES:
            raise ValueError(f"root_hash must be {HASH_BYTES} bytes")
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")

    @classmethod
    def of(cls, body: CheckpointBody) -> CheckpointRef:
        return cls(body.seq, body.tree_size, body.root_hash, body.issued_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "root_hash": b64encode(self.root_hash),
            "issued_at": rfc3339_utc(self.issued_at),
        }

    @classmethod
    def from_json(cls, obj: object) -> CheckpointRef:
        fields = exact_object(obj, _CHECKPOINT_KEYS, "manifest checkpoint")
        return cls(
            seq=integer(fields["seq"], "checkpoint.seq"),
            tree_size=integer(fields["tree_size"], "checkpoint.tree_size"),
            root_hash=hash32(fields["root_hash"], "checkpoint.root_hash"),
            issued_at=timestamp(fields["issued_at"], "checkpoint.issued_at"),
        )


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str  # lower-case hex
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, obj: object, index: int) -> FileEntry:
        fields = exact_object(obj, _FILE_KEYS, f"manifest files[{index}]")
        path = string(fields["path"], f"files[{index}].path")
        problem = path_problem(path)
        if problem is not None:
            raise BundleError(f"manifest files[{index}].path {path!r}: {problem}")
        digest = fields["sha256"]
        if not isinstance(digest, str) or not _SHA256_HEX_RE.fullmatch(digest):
            raise BundleError(f"manifest files[{index}].sha256 must be 64 lower-case hex digits")
        return cls(path, digest, integer(fields["size"], f"files[{index}].size"))


@dataclass(frozen=True)
class Manifest:
    ledger_id: str
    start_id: int
    end_id: int
    checkpoint: CheckpointRef
    files: tuple[FileEntry, ...]  # sorted by path, no duplicates
    tool_version: str

    @property
    def bundle_name(self) -> str:
        return bundle_name(self.ledger_id, self.start_id, self.end_id, self.checkpoint.seq)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": BUNDLE_TYPE,
            "ledger_id": self.ledger_id,
            "range": {"start_id": self.start_id, "end_id": self.end_id},
            "checkpoint": self.checkpoint.to_json(),
            "files": [entry.to_json() for entry in self.files],
            "tool_version": self.tool_version,
        }

    def to_bytes(self) -> bytes:
        return canonical_dumps(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Strict parse (canonical JSON, no floats, no duplicate keys), then the schema."""
        with _named(MANIFEST_PATH):
            fields = exact_object(loads_strict(data), _MANIFEST_KEYS, "manifest")
            if fields["type"] != BUNDLE_TYPE:
                raise BundleError(f"manifest type must be {BUNDLE_TYPE!r}")
            ledger_id = string(fields["ledger_id"], "ledger_id")
            span = exact_object(fields["range"], _RANGE_KEYS, "manifest range")
            start_id = integer(span["start_id"], "range.start_id")
            end_id = integer(span["end_id"], "range.end_id")
            checkpoint = CheckpointRef.from_json(fields["checkpoint"])
            files = _files_from_json(fields["files"])
            tool_version = string(fields["tool_version"], "tool_version")
        problem = _range_problem(ledger_id, start_id, end_id, checkpoint.tree_size)
        if problem is not None:
            raise BundleError(f"manifest: {problem}")
        return cls(ledger_id, start_id, end_id, checkpoint, files, tool_version)


@dataclass(frozen=True)
class Bundle:
    """A bundle whose container checks all passed: `files` maps each listed path (relative to the
    bundle directory) to its bytes, whose hash and size match the signed manifest."""

    name: str
    manifest: Manifest
    signatures: tuple[Signature, ...]
    files: Mapping[str, bytes]
    sha256: str  # of the whole tar, hex


def bundle_name(ledger_id: str, start_id: int, end_id: int, seq: int) -> str:
    return f"bundle-{ledger_id}-{start_id:011d}-{end_id:011d}-{seq:06d}"


def bundle_sha256(data: bytes) -> str:
    """The bundle's identity, in hex: what `ledger_proofs` records and auditors compare."""
    return hashlib.sha256(data).hexdigest()


def manifest_signing_bytes(manifest_bytes: bytes) -> bytes:
    return BUNDLE_PREFIX + manifest_bytes


def path_problem(path: str) -> str | None:
    """Why `path` cannot name a file inside a bundle, or None. Paths are relative, '/'-separated,
    lower-case ASCII segments; the reader holds tar member names to the same rule."""
    if not path:
        return "is empty"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    segments = path.split("/")
    if ".." in segments:
        return "contains '..'"
    if len(path) > PATH_CHARS_MAX:
        return f"is longer than {PATH_CHARS_MAX} characters"
    if len(segments) > PATH_DEPTH_MAX:
        return f"is more than {PATH_DEPTH_MAX} levels deep"
    if not all(_SEGMENT_RE.fullmatch(segment) for segment in segments):
        return "has an empty or '.' segment, or characters other than [a-z0-9._-]"
    return None


def build_bundle(
    ledger_id: str,
    start_id: int,
    end_id: int,
    checkpoint_ref: CheckpointRef,
    files: Mapping[str, bytes],
    signers: Sequence[tuple[str, Signer]],
    tool_version: str,
) -> tuple[str, bytes]:
    """Return `(name, tar bytes)` of the bundle holding `files` (bundle-relative path -> bytes),
    its manifest and the manifest's signatures. ValueError for input no reader would accept."""
    problem = _range_problem(ledger_id, start_id, end_id, checkpoint_ref.tree_size)
    if problem is not None:
        raise ValueError(problem)
    if not tool_version:
        raise ValueError("tool_version must be a non-empty string")
    if len(files) + len(_RESERVED) > BUNDLE_MEMBERS_MAX:
        raise ValueError(f"a bundle holds at most {BUNDLE_MEMBERS_MAX} members")
    for path in files:
        if path in _RESERVED:
            raise ValueError(f"{path} is written by build_bundle itself")
        problem = path_problem(path)
        if problem is not None:
            raise ValueError(f"file path {path!r} {problem}")
    _refuse_file_directory_clash(files)
    manifest = Manifest(
        ledger_id=ledger_id,
        start_id=start_id,
        end_id=end_id,
        checkpoint=checkpoint_ref,
        files=tuple(
            FileEntry(path, hashlib.sha256(data).hexdigest(), len(data))
            for path, data in sorted(files.items())
        ),
        tool_version=tool_version,
    )
    manifest_bytes = manifest.to_bytes()
    signatures = sign_message(manifest_signing_bytes(manifest_bytes), signers)
    members = dict(files)
    members[MANIFEST_PATH] = manifest_bytes
    members[MANIFEST_SIG_PATH] = canonical_dumps(
        {"signatures": [signature.to_json() for signature in signatures]}
    )
    name = manifest.bundle_name
    data = _deterministic_tar(name, members)
    if len(data) > BUNDLE_BYTES_MAX:
        raise ValueError(f"the bundle would be {len(data)} bytes, over {BUNDLE_BYTES_MAX}")
    return name, data


def _deterministic_tar(root: str, members: Mapping[str, bytes]) -> bytes:
    """USTAR, sorted, with every metadata field fixed: the bytes depend on names and contents
    only. No directory entries: extracting creates the directories, and a reader has fewer member
    kinds to police."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=TAR_FORMAT) as tar:
        for path in sorted(members):
            data = members[path]
            info = tarfile.TarInfo(f"{root}/{path}")
            info.size = len(data)
            info.mtime = 0
            info.mode = FILE_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def read_bundle(data: bytes, trust: TrustStore, *, at: datetime | None = None) -> Bundle:
    """Check a bundle's container and return its files; BundleError names the first failed check.

    The manifest signature's key windows are checked at `at`, by default the referenced
    checkpoint's `issued_at`: the manifest carries no time of its own (that would make exports
    irreproducible), and it cannot have been signed before the checkpoint it cites existed.

    Nothing is written to disk: members are read from `data` in memory."""
    if len(data) > BUNDLE_BYTES_MAX:
        raise BundleError(f"bundle is {len(data)} bytes, over the limit of {BUNDLE_BYTES_MAX}")
    root, contents = _read_members(bytes(data))
    for reserved in (MANIFEST_PATH, MANIFEST_SIG_PATH):
        if reserved not in contents:
            raise BundleError(f"bundle has no {reserved}")
    manifest_bytes = contents.pop(MANIFEST_PATH)
    manifest = Manifest.from_bytes(manifest_bytes)
    if root != manifest.bundle_name:
        raise BundleError(
            f"bundle directory {root!r} is not {manifest.bundle_name!r}, the manifest's name"
        )
    signatures = _signatures_from_bytes(contents.pop(MANIFEST_SIG_PATH))
    with reraise_as(BundleError):
        verify_message(
            manifest_signing_bytes(manifest_bytes),
            signatures,
            trust,
            manifest.checkpoint.issued_at if at is None else at,
            "bundle manifest",
        )
    _check_files_against_manifest(manifest, contents)
    return Bundle(
        name=root,
        manifest=manifest,
        signatures=signatures,
        files=MappingProxyType(contents),
        sha256=bundle_sha256(data),
    )


def unverified_files(data: bytes) -> dict[str, bytes]:
    """The listed files of a bundle after the container checks only, with no manifest or
    signature check: for an exporter comparing a stored bundle with a new one, never for an
    auditor (who uses `read_bundle`)."""
    _, contents = _read_members(bytes(data))
    for reserved in _RESERVED:
        contents.pop(reserved, None)
    return contents


def _read_members(data: bytes) -> tuple[str, dict[str, bytes]]:
    """The bundle directory's name and its files (path relative to it -> bytes)."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise BundleError(f"not a plain tar archive: {exc}") from exc
    with tar:
        roots: set[str] = set()
        regular: list[tuple[str, tarfile.TarInfo]] = []
        for count, member in enumerate(_members(tar), start=1):
            if count > BUNDLE_MEMBERS_MAX:
                raise BundleError(f"bundle has more than {BUNDLE_MEMBERS_MAX} members")
            root, path = _split_member_name(member.name)
            roots.add(root)
            if len(roots) > 1:
                raise BundleError(f"member {member.name!r} is outside the one bundle directory")
            if member.isdir() and path is None:
                continue  # the bundle directory itself
            if not member.isreg() or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise BundleError(f"member {member.name!r} is {_kind(member)}, not a regular file")
            if path is None:
                raise BundleError(f"member {member.name!r} is outside the bundle directory")
            regular.append((path, member))
        _refuse_trailing_data(data, tar.offset)
        if not roots:
            raise BundleError("bundle is an empty archive")
        contents: dict[str, bytes] = {}
        for path, member in regular:
            if path in contents:
                raise BundleError(f"member {member.name!r} appears twice")
            contents[path] = _member_bytes(tar, member)
    _refuse_file_directory_clash(contents, error=BundleError)
    return roots.pop(), contents


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """tar.next() one at a time (never tar.getmembers(), which would read every header of a
    hostile archive before the member cap could stop it)."""
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise BundleError(f"corrupt tar archive: {exc}") from exc
        if member is None:
            return
        yield member


def _split_member_name(name: str) -> tuple[str, str | None]:
    """(bundle directory, path inside it or None for the directory itself)."""
    if "\\" in name:
        raise BundleError(f"member {name!r} contains a backslash")
    if name.startswith("/"):
        raise BundleError(f"member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise BundleError(f"member {name!r} contains '..'")
    root, sep, path = name.partition("/")
    if not _ROOT_RE.fullmatch(root):
        raise BundleError(
            f"member {name!r} is outside a bundle-<ledger>-<start>-<end>-<seq> directory"
        )
    if not sep or not path:
        return root, None
    problem = path_problem(path)
    if problem is not None:
        raise BundleError(f"member {name!r}: path {problem}")
    return root, path


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    if member.isdir():
        return "a directory"
    return f"of tar type {member.type!r}"


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    try:
        handle = tar.extractfile(member)
        if handle is None:  # pragma: no cover - regular files always have a handle
            raise BundleError(f"member {member.name!r} has no data")
        with handle:
            content = handle.read()
    except tarfile.TarError as exc:
        raise BundleError(f"member {member.name!r} is truncated: {exc}") from exc
    if len(content) != member.size:
        raise BundleError(f"member {member.name!r} is truncated")
    return content


def _refuse_trailing_data(data: bytes, end_offset: int) -> None:
    """tarfile stops quietly at the first zero block or at a damaged header after the first one;
    anything but zero padding after that point is data the manifest does not cover."""
    if end_offset > len(data):
        raise BundleError("tar archive is truncated")
    if data[end_offset:].strip(b"\0"):
        raise BundleError("data after the end of the tar archive (or a damaged member header)")


def _refuse_file_directory_clash(
    paths: Mapping[str, bytes], error: type[Exception] = ValueError
) -> None:
    """`a` and `a/b` cannot both be files: extracting one would fail or replace the other."""
    for path in paths:
        segments = path.split("/")
        for depth in range(1, len(segments)):
            parent = "/".join(segments[:depth])
            if parent in paths:
                raise error(f"{parent!r} is both a file and a directory")


def _files_from_json(obj: object) -> tuple[FileEntry, ...]:
    if not isinstance(obj, list):
        raise BundleError("manifest files must be a list")
    if len(obj) > BUNDLE_MEMBERS_MAX:
        raise BundleError(f"manifest lists more than {BUNDLE_MEMBERS_MAX} files")
    entries = tuple(FileEntry.from_json(item, index) for index, item in enumerate(obj))
    paths = [entry.path for entry in entries]
    for path in paths:
        if path in _RESERVED:
            raise BundleError(f"manifest lists {path}, which cannot list itself")
    # Sorted and strictly increasing: one spelling per file set, and no path twice.
    if any(a >= b for a, b in itertools.pairwise(paths)):
        raise BundleError("manifest files are not sorted by path without duplicates")
    return entries


def _range_problem(ledger_id: str, start_id: int, end_id: int, tree_size: int) -> str | None:
    if not _LEDGER_ID_RE.fullmatch(ledger_id):
        return f"ledger_id {ledger_id!r} is not a tenant id ([a-z0-9][a-z0-9_-]{{0,62}})"
    if not 0 <= start_id <= end_id < tree_size:
        return (
            f"range [{start_id}, {end_id}] is not within the checkpoint's tree of size {tree_size}"
        )
    return None


def _signatures_from_bytes(data: bytes) -> tuple[Signature, ...]:
    with _named(MANIFEST_SIG_PATH):
        fields = exact_object(loads_strict(data), frozenset({"signatures"}), MANIFEST_SIG_PATH)
        return signatures_from_json(fields["signatures"])


@contextmanager
def _named(file_name: str) -> Iterator[None]:
    """Turn an InvalidProof from parsing `file_name` into a BundleError that names the file."""
    try:
        yield
    except InvalidProof as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{file_name}: {exc.reason}") from exc


def _check_files_against_manifest(manifest: Manifest, contents: Mapping[str, bytes]) -> None:
    listed = {entry.path: entry for entry in manifest.files}
    for path in sorted(contents):
        if path not in listed:
            raise BundleError(f"{path} is in the bundle but not in the manifest")
    for entry in manifest.files:
        content = contents.get(entry.path)
        if content is None:
            raise BundleError(f"{entry.path} is in the manifest but not in the bundle")
        if len(content) != entry.size:
            raise BundleError(
                f"{entry.path} is {len(content)} bytes, the manifest says {entry.size}"
            )
        if hashlib.sha256(content).hexdigest() != entry.sha256:
            raise BundleError(f"{entry.path} does not match its SHA-256 in the manifest")
