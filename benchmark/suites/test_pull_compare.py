"""PullImage of the busybox test image, our runtime against containerd, in one run from one local registry.

Each round starts cold: the image is removed (not timed) and pulled again (timed). No other image on
the test bed has its layer, so every round downloads, verifies and unpacks it. Run with:

    pytest benchmark/suites/test_pull_compare.py -s -p no:randomly

and read the two medians it prints; the last test fails if ours is more than 10 % slower.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from benchmark.compare import RUNTIMES, endpoint_of, median_ms
from cri_api import pb
from cri_api.client import ImageClient
from critest.images.catalog import BUSYBOX

pytestmark = pytest.mark.root

ROUNDS = 20
WARMUP_ROUNDS = 1
TOLERANCE = 1.10  # ours may be this much slower than containerd's median before it counts as slower: noise

PULL_SECONDS: dict[str, list[float]] = {}


@pytest.fixture(params=RUNTIMES)
def images(request: pytest.FixtureRequest) -> Iterator[tuple[str, ImageClient]]:
    with ImageClient.connect(endpoint_of(request, request.param), timeout=120) as client:
        yield request.param, client


def remove_busybox(client: ImageClient) -> None:
    client.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    assert not client.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX))).HasField("image")


def cold_pull_seconds(client: ImageClient) -> float:
    remove_busybox(client)
    started = time.perf_counter()
    image_ref = client.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX))).image_ref
    elapsed = time.perf_counter() - started
    assert image_ref.startswith("sha256:")
    return elapsed


def test_pull_busybox_cold(images: tuple[str, ImageClient]) -> None:
    name, client = images
    for _ in range(WARMUP_ROUNDS):
        cold_pull_seconds(client)
    PULL_SECONDS[name] = [cold_pull_seconds(client) for _ in range(ROUNDS)]


def test_ours_is_not_slower() -> None:
    if set(PULL_SECONDS) != set(RUNTIMES):
        pytest.skip("run together with test_pull_busybox_cold for both runtimes")
    ours, theirs = median_ms(PULL_SECONDS["reference-runtime"]), median_ms(PULL_SECONDS["containerd"])
    print(f"\ncold PullImage of {BUSYBOX}, median of {ROUNDS} rounds: "
          f"reference-runtime {ours:.1f} ms, containerd {theirs:.1f} ms (ratio {ours / theirs:.2f})")
    assert ours <= theirs * TOLERANCE, f"ours {ours:.1f} ms is slower than containerd's {theirs:.1f} ms"
