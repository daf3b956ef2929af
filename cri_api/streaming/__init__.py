"""Client side of the CRI streaming protocols (exec, attach, port-forward).

The CRI ``Exec``/``Attach``/``PortForward`` calls only hand back a URL; the bytes then flow over an
upgraded HTTP connection that speaks SPDY/3.1 (or WebSocket) with Kubernetes' channel protocols on
top. ``spdy`` holds the framing, ``client`` the upgrade and the exec/attach/port-forward sessions.
"""
