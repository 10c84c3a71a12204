"""PostgreSQL: connections, migrations and the ledger store."""
