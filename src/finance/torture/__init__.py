"""`finance torture`: the fault-injection bank test (docs/reliability.md).

Pure parts: `history` (what each client sent and was told), `snapshot` (the database as read
at the end) and `checker` (history + snapshot -> figures and violations). I/O parts:
`postgres` (a PostgreSQL of the run's own, stopped in immediate mode as a fault), `service`
(`finance serve`, killed with SIGKILL as a fault), `clients` (HTTP clients that retry with
the same key), `faults` (the schedule), `reader` (the final read) and `run` (orchestration).
"""
