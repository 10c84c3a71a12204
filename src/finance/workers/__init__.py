"""Background workers: bounded batches of work on a schedule, in threads of the service."""
