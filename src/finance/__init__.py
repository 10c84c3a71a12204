"""Finance: a high-assurance, multi-tenant double-entry ledger service."""

__version__ = "0.1.0"
