"""Images: references, registries, the content store, layer unpacking and snapshots."""
