"""Signers behind the `finance.proofs.signing.Signer` port: a key file for development and tests,
PKCS#11 HSMs and AWS KMS. The private key never leaves the HSM or KMS; each adapter turns every
failure of its backend into `SignerError`, with the cause chained."""
