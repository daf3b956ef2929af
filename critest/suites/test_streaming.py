"""Streaming: exec, attach and port-forward over SPDY or WebSocket."""

from __future__ import annotations

from critest import constants as c
from critest.framework import Describe

STREAMING = Describe("Streaming").context("runtime should support streaming interfaces")

test_exec = STREAMING.pending("runtime should support exec with tty=false and stdin=false [Conformance]",
                              c.STREAMING_NOT_IMPLEMENTED)
test_exec_tty_stdin = STREAMING.pending("runtime should support exec with tty=true and stdin=true [Conformance]",
                                        c.STREAMING_NOT_IMPLEMENTED)
test_attach = STREAMING.pending("runtime should support attach [Conformance]", c.STREAMING_NOT_IMPLEMENTED)
test_port_forward = STREAMING.pending("runtime should support portforward [Conformance]",
                                      c.STREAMING_NOT_IMPLEMENTED)
test_port_forward_host_network = STREAMING.pending("runtime should support portforward in host network",
                                                   c.STREAMING_NOT_IMPLEMENTED)
