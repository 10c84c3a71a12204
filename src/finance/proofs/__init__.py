"""Pure proof code: canonical bytes and the hash chain. No I/O."""
