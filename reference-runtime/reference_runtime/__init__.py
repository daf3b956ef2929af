"""The bundled reference CRI runtime: serves runtime.v1 on a unix socket."""

__version__ = "0.1.0"
