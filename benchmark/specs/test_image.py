"""Image benchmarks: pull, status and removal of the benchmark image; listing images."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from benchmark.specs.timing import OperationTimes
from cri_api import pb
from critest import framework as fw
from critest.framework import Cri, Describe

IMAGE = Describe("Image benchmark about operations on Image")
PULL_IMAGE = "public.ecr.aws/docker/library/busybox:1.35.0-glibc"  # upstream's default benchmark image
ROUNDS = 10


@IMAGE.it("benchmark about basic operations on Image")
def test_image_lifecycle(cri: Cri, benchmark: BenchmarkFixture) -> None:
    times = OperationTimes()
    spec = pb.ImageSpec(image=PULL_IMAGE)

    def cycle() -> None:
        times.timed("PullImage", lambda: cri.images.pull_image(pb.PullImageRequest(image=spec)))
        times.timed("ImageStatus", lambda: cri.images.image_status(pb.ImageStatusRequest(image=spec)))
        times.timed("RemoveImage", lambda: cri.images.remove_image(pb.RemoveImageRequest(image=spec)))

    fw.remove_image_quietly(cri, PULL_IMAGE)
    benchmark.pedantic(cycle, rounds=ROUNDS, warmup_rounds=1)
    times.report(benchmark)


@IMAGE.it("benchmark about listing Image")
def test_image_listing(cri: Cri, benchmark: BenchmarkFixture) -> None:
    fw.pull_public_image(cri, cri.context.images.default_container)
    benchmark.pedantic(lambda: cri.images.list_images(pb.ListImagesRequest()), rounds=ROUNDS * 10, warmup_rounds=1)
