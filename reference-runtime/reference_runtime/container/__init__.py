"""Containers: the OCI runtime spec of pod sandboxes and containers, image users, seccomp profiles."""
