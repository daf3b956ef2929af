"""The offline test-image kit: builds the images critest and the benchmark pull, and mirrors them.

``catalog`` declares the images, ``build`` turns them into a reproducible OCI image layout,
``push`` copies that layout into a plain-HTTP registry, and ``cli`` is the ``critest-images`` command.
"""


class ImagesError(Exception):
    """A failure the user can act on; the CLI prints its message on one line."""


class BuildError(ImagesError):
    """The images could not be built."""


class PushError(ImagesError):
    """The images could not be pushed to the registry."""
