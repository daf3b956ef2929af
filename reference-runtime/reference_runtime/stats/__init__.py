"""Container and pod statistics and metrics, read from cgroups and /proc, for the CRI stats RPCs."""
