"""Bundle stores (the `finance.services.bundle_store.BundleStore` port): a local directory, S3 with
Object Lock, and an in-memory store for tests; `select.open_bundle_store` picks one."""
