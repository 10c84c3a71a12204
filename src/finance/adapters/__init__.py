"""Adapters to the outside world: PostgreSQL, key files, embedded servers."""
