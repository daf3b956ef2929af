"""NRI's names and numbers: service and connection IDs, events and their subscription mask, default timeouts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import Message

from cri_api.nri.proto import nri_pb2 as nri

RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"

# The multiplexed connections of one plugin socket: the plugin serves on the first, the runtime on the second.
PLUGIN_SERVICE_CONN = 1
RUNTIME_SERVICE_CONN = 2

DEFAULT_SOCKET_PATH = "/var/run/nri/nri.sock"
DEFAULT_REGISTRATION_TIMEOUT_SECONDS = 5.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 2.0

Event = int  # an nri.Event value
ALL_EVENTS: tuple[Event, ...] = tuple(range(nri.RUN_POD_SANDBOX, nri.LAST))
VALID_EVENTS_MASK = (1 << (nri.LAST - 1)) - 1



@dataclass(frozen=True)
class EventCall:
    """The Plugin-service method that delivers an event, and its messages. A pod event's request has only ``pod``."""

    method: str
    request_type: type[Message]
    response_type: type[Message]
    for_container: bool


# The events this package delivers and handles (container updates and validation are not among them).
EVENT_CALLS: dict[Event, EventCall] = {
    nri.RUN_POD_SANDBOX: EventCall("RunPodSandbox", nri.RunPodSandboxRequest, nri.RunPodSandboxResponse, False),
    nri.STOP_POD_SANDBOX: EventCall("StopPodSandbox", nri.StopPodSandboxRequest, nri.StopPodSandboxResponse, False),
    nri.REMOVE_POD_SANDBOX: EventCall("RemovePodSandbox", nri.RemovePodSandboxRequest, nri.RemovePodSandboxResponse,
                                      False),
    nri.CREATE_CONTAINER: EventCall("CreateContainer", nri.CreateContainerRequest, nri.CreateContainerResponse, True),
    nri.POST_CREATE_CONTAINER: EventCall("PostCreateContainer", nri.PostCreateContainerRequest,
                                         nri.PostCreateContainerResponse, True),
    nri.START_CONTAINER: EventCall("StartContainer", nri.StartContainerRequest, nri.StartContainerResponse, True),
    nri.POST_START_CONTAINER: EventCall("PostStartContainer", nri.PostStartContainerRequest,
                                        nri.PostStartContainerResponse, True),
    nri.STOP_CONTAINER: EventCall("StopContainer", nri.StopContainerRequest, nri.StopContainerResponse, True),
    nri.REMOVE_CONTAINER: EventCall("RemoveContainer", nri.RemoveContainerRequest, nri.RemoveContainerResponse, True),
}
# Events an older plugin takes as Plugin.StateChange instead (those that need no answer but success).
STATE_CHANGE_EVENTS = frozenset({nri.RUN_POD_SANDBOX, nri.STOP_POD_SANDBOX, nri.REMOVE_POD_SANDBOX,
                                 nri.POST_CREATE_CONTAINER, nri.START_CONTAINER, nri.POST_START_CONTAINER,
                                 nri.REMOVE_CONTAINER})

PLUGIN_INDEX = re.compile(r"[0-9]{2}")


def event_mask(events: Iterable[Event]) -> int:
    mask = 0
    for event in events:
        mask |= 1 << (event - 1)
    return mask


def subscribed(mask: int, event: Event) -> bool:
    return bool(mask & (1 << (event - 1)))


def event_name(event: Event) -> str:
    call = EVENT_CALLS.get(event)
    return call.method if call is not None else nri.Event.Name(event)


def event_request(event: Event, pod: nri.PodSandbox, container: nri.Container | None = None) -> Message:
    """The request that delivers ``event`` about ``pod`` (and ``container``, for a container event)."""
    call = EVENT_CALLS[event]
    return call.request_type(pod=pod, container=container) if call.for_container else call.request_type(pod=pod)


def check_plugin_identity(name: str, index: str) -> str | None:
    """Why a plugin may not register with this name and index, or None if it may."""
    if not PLUGIN_INDEX.fullmatch(index):
        return f"plugin index {index!r} is not two digits (00 to 99)"
    if not name or "/" in name:
        return f"plugin name {name!r} must be non-empty and contain no '/'"
    return None
