"""OCI containers: the runtime CLI (runc and kin), the per-container conmon monitor, and reaping their exits."""
