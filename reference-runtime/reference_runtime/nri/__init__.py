"""NRI in the reference runtime: plugins connect to a unix socket and are called at the pod and container lifecycle
points, in the order of their index. Disabled unless ``nri_socket`` is configured.

``adaptation`` accepts, registers, configures and synchronizes plugins and calls them; ``hooks`` is
what the RPC modules call (``svc.nri``), turning records into NRI messages; ``connection`` is one
plugin's connection as the runtime sees it.
"""
