"""Pod sandboxes: the files, mounts and processes a pod is made of."""
