"""The runtime's domain errors, and the one table that maps them to gRPC status codes.

Code inside the runtime raises these; only ``server.servicer`` turns them into gRPC statuses.
"""

from __future__ import annotations

import grpc


class Error(Exception):
    """Base of every error the runtime reports to a client."""

    code = grpc.StatusCode.INTERNAL


class NotFound(Error):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(Error):
    code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgument(Error):
    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(Error):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(Error):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(Error):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(Error):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(Error):
    code = grpc.StatusCode.CANCELLED


class Unimplemented(Error):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(Error):
    code = grpc.StatusCode.INTERNAL


class Unauthenticated(Error):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(Error):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unknown(Error):
    code = grpc.StatusCode.UNKNOWN


def grpc_code(exc: Exception) -> grpc.StatusCode:
    """The status code a client sees for ``exc``; anything unexpected is INTERNAL."""
    return exc.code if isinstance(exc, Error) else grpc.StatusCode.INTERNAL
