"""Errors a CRI client raises: one for an endpoint it cannot use, one for a failed call."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: crictl's help and shell completion run without loading gRPC
    import grpc


class EndpointError(Exception):
    """The endpoint is malformed, missing, not a socket, refused, forbidden or not answering."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class EndpointNotSet(EndpointError):
    """An endpoint flag was given an empty value: upstream refuses rather than auto-detecting."""

    def __init__(self, flag: str) -> None:
        Exception.__init__(self, f"{flag} is not set")
        self.endpoint = ""
        self.reason = f"{flag} is not set"


class NoEndpointAnswers(EndpointError):
    """None of several candidate endpoints (crictl's auto-detection list) could be used."""

    def __init__(self, failures: list[EndpointError]) -> None:
        endpoints = " ".join(failure.endpoint for failure in failures)
        super().__init__(f"[{endpoints}]", "no endpoint answers: " + "; ".join(map(str, failures)))
        self.failures = failures
        self.args = (self.reason,)


class CRIError(Exception):
    """A CRI call that the runtime answered with a non-OK gRPC status."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details
