"""Fixed values of the conformance suites: suite name, images, commands and name prefixes."""

from __future__ import annotations

SUITE_NAME = "CRI validation"
SPEC_PREFIX = "[k8s.io] "
JUNIT_CASE_PREFIX = "[It] "

DEFAULT_REGISTRY_PREFIX = "registry.k8s.io"
DEFAULT_SERVICE_TIMEOUT = "300s"

DEFAULT_CONTAINER_IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
WEB_SERVER_IMAGE = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
NGINX_IMAGE = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
HTTPD_IMAGE = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
NONEWPRIVS_IMAGE = "registry.k8s.io/e2e-test-images/nonewprivs:1.3"

STAGING = "gcr.io/k8s-staging-cri-tools"
TEST_IMAGE_WITH_TAG = f"{STAGING}/test-image-tag:test"
TEST_IMAGE_WITHOUT_TAG = f"{STAGING}/test-image-latest"
TEST_IMAGE_DIGEST_REPOSITORY = f"{STAGING}/test-image-digest"
UPSTREAM_TEST_IMAGE_DIGEST = "sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf"
TEST_IMAGE_WITH_ALL_REFERENCES = f"{STAGING}/test-image-tag:all"
TEST_DIFFERENT_IMAGES = tuple(f"{STAGING}/test-image-{n}:latest" for n in (1, 2, 3))
TEST_SAME_IMAGE_TAGS = tuple(f"{STAGING}/test-image-tags:{n}" for n in (1, 2, 3))
TEST_IMAGE_USER_UID = f"{STAGING}/test-image-user-uid"
TEST_IMAGE_USER_USERNAME = f"{STAGING}/test-image-user-username"
TEST_IMAGE_USER_UID_GROUP = f"{STAGING}/test-image-user-uid-group"
TEST_IMAGE_USER_USERNAME_GROUP = f"{STAGING}/test-image-user-username-group"
TEST_IMAGE_PREDEFINED_GROUP = f"{STAGING}/test-image-predefined-group"
PAUSE_IMAGE_REGISTRY_K8S = "registry.k8s.io/pause:3.9"
PAUSE_IMAGE_K8S_GCR = "k8s.gcr.io/pause:3.9"

# Keys of the --test-images-file YAML: upstream's two, plus ours for the digest-pinned image,
# whose upstream digest cannot be rebuilt offline.
TEST_IMAGES_DEFAULT_KEY = "defaultTestContainerImage"
TEST_IMAGES_WEB_SERVER_KEY = "webServerTestImage"
TEST_IMAGES_DIGEST_KEY = "testImageWithDigest"

DEFAULT_ATTEMPT = 2
DEFAULT_UID_PREFIX = "cri-test-uid"
DEFAULT_NAMESPACE_PREFIX = "cri-test-namespace"
DEFAULT_CONTAINER_COMMAND = ("top",)
PAUSE_CONTAINER_COMMAND = ("sh", "-c", "top")
DEFAULT_STOP_TIMEOUT_SECONDS = 60
DEFAULT_CGROUP_PARENT = "/test.slice"

# Upstream benchmark specs share the ginkgo tree; a validation run lists them as filtered out.
BENCHMARK_SPEC_NAMES = (
    "[k8s.io] Container benchmark about operations on Container benchmark about basic operations on Container",
    "[k8s.io] Image benchmark about operations on Image benchmark about basic operations on Image",
    "[k8s.io] Image benchmark about operations on Image benchmark about listing Image",
    "[k8s.io] PodSandbox benchmark about operations on PodSandbox benchmark about lifecycle of PodSandbox",
    "[k8s.io] PodSandbox benchmark about start a container from scratch "
    "benchmark about start a container from scratch",
)

NOT_IMPLEMENTED = "not implemented yet"
FILTERED_OUT = "skipped"
