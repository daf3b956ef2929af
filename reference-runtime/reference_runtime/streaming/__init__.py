"""The streaming server behind Exec, Attach and PortForward: single-use URLs, then the upgraded connection."""
