"""Types every function shares: the canonical reading, the ingest envelope, the flavors."""
