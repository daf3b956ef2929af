"""In-memory stores of the runtime's objects, each behind a lock, persisted where they must survive a restart."""
