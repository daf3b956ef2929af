"""PullImage of the busybox test image, our runtime against containerd, in one run from one local registry.

Each round starts cold: the image is removed (not timed) and pulled again (timed), so every round
downloads, verifies and unpacks the layer. Run with:

    pytest benchmark/suites/test_pull_compare.py --benchmark-only --benchmark-group-by=func
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from cri_api import pb
from cri_api.client import ImageClient
from critest.images.catalog import BUSYBOX

pytestmark = pytest.mark.root

ROUNDS = 20
RUNTIMES = ("reference-runtime", "containerd")


@pytest.fixture(params=RUNTIMES)
def images(request: pytest.FixtureRequest) -> Iterator[ImageClient]:
    testbed_fixture = {"reference-runtime": "reference_runtime_testbed", "containerd": "containerd_testbed"}
    testbed = request.getfixturevalue(testbed_fixture[request.param])
    with ImageClient.connect(testbed.endpoint, timeout=120) as client:
        yield client


def remove_busybox(client: ImageClient) -> None:
    client.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    assert not client.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX))).HasField("image")


def test_pull_busybox_cold(benchmark: BenchmarkFixture, images: ImageClient) -> None:
    def pull() -> str:
        return images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX))).image_ref

    image_ref = benchmark.pedantic(pull, setup=lambda: remove_busybox(images), rounds=ROUNDS, warmup_rounds=1)
    assert image_ref.startswith("sha256:")
