"""SoftHSM2 tokens for the PKCS#11 tests (integration and e2e).

SoftHSM2 is a Debian package; scripts/test installs it. Without it these tests fail on purpose:
a skipped HSM test would let the signer rot unnoticed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism

from finance.adapters.signers.pkcs11 import ED25519_OID_PARAMS, Pkcs11Signer, generate_key
from finance.proofs.signing import Algorithm

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
INSTALL_HINT = (
    "SoftHSM2 is not installed: run scripts/test (it installs the Debian package softhsm2 when "
    "run as root), or `apt-get install -y softhsm2`"
)
TOKEN_LABEL = "finance-test"
PIN = "4321-user"
SO_PIN = "8765-officer"


@dataclass(frozen=True)
class Token:
    module_path: str
    label: str
    pin: str
    config_path: Path  # SOFTHSM2_CONF for processes started by the test

    def generate(self, key_label: str, alg: Algorithm) -> bytes:
        return generate_key(self.module_path, self.label, self.pin, key_label, alg)

    def signer(self, key_label: str, alg: Algorithm, *, pin: str | None = None) -> Pkcs11Signer:
        return Pkcs11Signer(self.module_path, self.label, pin or self.pin, key_label, alg)

    def generate_unchecked(self, key_label: str) -> None:
        """An Ed25519 key pair made with the raw API, which, unlike generate_key, lets a label
        be used twice."""
        lib = pkcs11.lib(self.module_path)
        with lib.get_token(token_label=self.label).open(rw=True, user_pin=self.pin) as session:
            session.generate_keypair(
                KeyType.EC_EDWARDS,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                label=key_label,
                store=True,
                public_template={Attribute.EC_PARAMS: ED25519_OID_PARAMS, Attribute.TOKEN: True},
                private_template={Attribute.TOKEN: True},
            )


def softhsm_module() -> str:
    """The SoftHSM2 PKCS#11 module: the Debian paths first, then wherever dpkg put it."""
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    if shutil.which("dpkg"):
        for package in ("libsofthsm2", "softhsm2"):
            listing = subprocess.run(
                ["dpkg", "-L", package], capture_output=True, text=True, check=False
            ).stdout
            for line in listing.splitlines():
                if line.endswith("/libsofthsm2.so") and Path(line).is_file():
                    return line
    pytest.fail(INSTALL_HINT)


def new_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A freshly initialised token in its own token directory under tmp_path."""
    module_path = softhsm_module()
    if shutil.which("softhsm2-util") is None:
        pytest.fail(INSTALL_HINT)
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(config))
    init = [
        "softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
        "--pin", PIN, "--so-pin", SO_PIN,
    ]  # fmt: skip
    subprocess.run(init, check=True, capture_output=True)
    # SoftHSM2 reads SOFTHSM2_CONF in C_Initialize, and python-pkcs11 keeps one loaded library
    # per process: re-initialise it so it sees this test's token directory.
    pkcs11.lib(module_path).reinitialize()
    return Token(module_path, TOKEN_LABEL, PIN, config)
