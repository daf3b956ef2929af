"""The registry client against real registries: the kit's local registry, ``docker-registry`` with
token auth, htpasswd and TLS (see ``registry_servers``), and a scripted registry for broken content."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cri_api import pb
from critest.images.build import load_images
from critest.images.catalog import BUSYBOX, HOST_ARCH, TEST_IMAGE_DIGEST_REPOSITORY
from critest.testbed.process import free_tcp_port
from critest.testbed.registry import LocalRegistry
from reference_runtime import errors
from reference_runtime.image.reference import ImageReference
from reference_runtime.image.registry import (
    Credentials,
    Descriptor,
    DigestMismatch,
    RegistryClient,
    RegistryHost,
    ResolvedImage,
    load_hosts,
)
from reference_runtime.image.registry.auth import Challenge, parse_www_authenticate, pick_challenge
from reference_runtime.image.registry.client import (
    MAX_MANIFEST_SIZE,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    host_platform,
)
from reference_runtime.image.registry.hosts import CAPABILITIES
from reference_runtime.tests.registry_servers import (
    CertificateAuthority,
    KeyPair,
    RegistryServer,
    Route,
    ScriptedRegistry,
    TokenRequest,
    TokenServer,
    sha256_digest,
)

PLATFORM = ("linux", HOST_ARCH, "")
BUSYBOX_REPOSITORY, BUSYBOX_TAG = "e2e-test-images/busybox", "1.29-2"

# --------------------------------------------------------------------------- fixtures (more in conftest.py)


@pytest.fixture(scope="module")
def kit_digests(test_images_dir: Path) -> dict[str, str]:
    """{upstream reference: top-level digest} of every kit image."""
    return load_images(test_images_dir)


@pytest.fixture(scope="module")
def server_pair(ca: CertificateAuthority) -> KeyPair:
    return ca.issue("registry", ip_addresses=("127.0.0.1",), dns_names=("localhost",))


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, kit_storage: Path,
                 server_pair: KeyPair) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("tls-registry"), kit_storage, tls=server_pair) as registry:
        yield registry


@pytest.fixture(scope="module")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory, kit_storage: Path, ca: CertificateAuthority,
                  server_pair: KeyPair) -> Iterator[RegistryServer]:
    workdir = tmp_path_factory.mktemp("mtls-registry")
    with RegistryServer(workdir, kit_storage, tls=server_pair, client_ca=ca.cert_path) as registry:
        yield registry


@pytest.fixture
def scripted() -> Iterator[ScriptedRegistry]:
    with ScriptedRegistry() as registry:
        yield registry

# --------------------------------------------------------------------------- helpers


def client_for(text: str, hosts: list[RegistryHost] | None = None, config_dir: Path | None = None,
               credentials: Credentials | None = None, **kwargs: Any) -> RegistryClient:
    ref = ImageReference.parse(text)
    hosts = hosts if hosts is not None else load_hosts(ref.domain, config_dir)
    return RegistryClient(ref, hosts, credentials or Credentials(), platform=kwargs.pop("platform", PLATFORM),
                          timeout=kwargs.pop("timeout", 10.0), **kwargs)


def fetch(client: RegistryClient, descriptor: Descriptor) -> bytes:
    sink = io.BytesIO()
    client.fetch_blob(descriptor, sink)
    return sink.getvalue()


def pull(text: str, **kwargs: Any) -> tuple[ResolvedImage, dict[str, bytes]]:
    """Resolve ``text`` and fetch its config and layers, as the image service will."""
    with client_for(text, **kwargs) as client:
        resolved = client.resolve()
        blobs = {d.digest: fetch(client, d) for d in (resolved.config, *resolved.layers)}
    return resolved, blobs


def assert_consistent(resolved: ResolvedImage, blobs: dict[str, bytes]) -> None:
    assert sha256_digest(resolved.manifest_bytes) == resolved.manifest_digest
    assert json.loads(resolved.manifest_bytes) == resolved.manifest
    for digest, data in blobs.items():
        assert sha256_digest(data) == digest
    config = json.loads(blobs[resolved.config.digest])
    assert (config["os"], config["architecture"]) == ("linux", HOST_ARCH)
    assert len(config["rootfs"]["diff_ids"]) == len(resolved.layers)


def write_hosts(config_dir: Path, domain: str, text: str) -> Path:
    (config_dir / domain).mkdir(parents=True, exist_ok=True)
    (config_dir / domain / "hosts.toml").write_text(text)
    return config_dir


def busybox_at(address: str) -> str:
    return f"{address}/{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}"


def scripted_image(registry: ScriptedRegistry, repository: str, *, tag: str | None = None,
                   architecture: str = "amd64", layer: bytes = b"layer bytes") -> dict[str, Any]:
    """Serve a one-layer image; return its manifest's descriptor as JSON."""
    config = json.dumps({"architecture": architecture, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}).encode()
    registry.add_blob(repository, sha256_digest(config), config)
    registry.add_blob(repository, sha256_digest(layer), layer)
    manifest = {
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer), "size": len(layer)}],
    }
    return registry.add_json_manifest(repository, manifest, tag=tag)


def blob_descriptor(data: bytes, size: int | None = None) -> Descriptor:
    return Descriptor("application/octet-stream", sha256_digest(data), len(data) if size is None else size)

# --------------------------------------------------------------------------- anonymous pulls


def test_pull_by_tag_resolves_the_index_to_the_platform_manifest(local_registry: LocalRegistry,
                                                                   kit_digests: dict[str, str]) -> None:
    # No hosts.toml: the loopback registry is tried over HTTPS first and found to speak plain HTTP.
    resolved, blobs = pull(busybox_at(local_registry.address))
    assert resolved.repo_digest == kit_digests[BUSYBOX]
    assert resolved.target == Descriptor(MEDIA_TYPE_OCI_INDEX, resolved.repo_digest, len(resolved.index_bytes or b""))
    assert resolved.manifest_digest != resolved.repo_digest
    assert resolved.manifest_media_type == MEDIA_TYPE_OCI_MANIFEST
    index = json.loads(resolved.index_bytes or b"")
    assert [m["digest"] for m in index["manifests"]] == [resolved.manifest_digest]
    assert_consistent(resolved, blobs)


def test_pull_by_digest(local_registry: LocalRegistry, kit_digests: dict[str, str]) -> None:
    digest = kit_digests[BUSYBOX]
    resolved, blobs = pull(f"{local_registry.address}/{BUSYBOX_REPOSITORY}@{digest}")
    assert resolved.repo_digest == digest
    assert_consistent(resolved, blobs)
    [digest_only] = [d for ref, d in kit_digests.items()
                     if ref.startswith(TEST_IMAGE_DIGEST_REPOSITORY + "@")]
    path = TEST_IMAGE_DIGEST_REPOSITORY.split("/", 1)[1]
    resolved, blobs = pull(f"{local_registry.address}/{path}@{digest_only}")
    assert resolved.repo_digest == digest_only
    assert_consistent(resolved, blobs)


def test_mirror_keeps_the_repository_path(local_registry: LocalRegistry, kit_digests: dict[str, str],
                                          tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", f"""
server = "{local_registry.url}"
[host."{local_registry.url}"]
  capabilities = ["pull", "resolve"]
""")
    resolved, blobs = pull(BUSYBOX, config_dir=tmp_path)
    assert resolved.repo_digest == kit_digests[BUSYBOX]
    assert_consistent(resolved, blobs)


def test_docker_hub_mirror_keeps_library_and_plain_manifests_have_one_digest(
        local_registry: LocalRegistry, kit_digests: dict[str, str], tmp_path: Path) -> None:
    write_hosts(tmp_path, "docker.io", f'server = "{local_registry.url}"\n')
    resolved, blobs = pull("busybox:1.36", config_dir=tmp_path)
    assert resolved.repo_digest == resolved.manifest_digest == kit_digests["docker.io/library/busybox:1.36"]
    assert resolved.index_bytes is None
    assert_consistent(resolved, blobs)


def test_unreachable_mirror_falls_back_to_the_next(local_registry: LocalRegistry, kit_digests: dict[str, str],
                                                   tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", f"""
server = "{local_registry.url}"
[host."http://127.0.0.1:{free_tcp_port()}"]
  dial_timeout = "2s"
[host."{local_registry.url}"]
""")
    resolved, blobs = pull(BUSYBOX, config_dir=tmp_path)
    assert resolved.repo_digest == kit_digests[BUSYBOX]
    assert_consistent(resolved, blobs)


def test_unknown_image_is_not_found(local_registry: LocalRegistry) -> None:
    for text in (f"{local_registry.address}/no/such-image:1", f"{local_registry.address}/{BUSYBOX_REPOSITORY}:nope"):
        with client_for(text) as client, pytest.raises(errors.NotFound) as raised:
            client.resolve()
        assert str(raised.value) == f"{ImageReference.parse(text)}: not found"


def test_unknown_blob_is_not_found(local_registry: LocalRegistry) -> None:
    with client_for(busybox_at(local_registry.address)) as client, pytest.raises(errors.NotFound):
        fetch(client, blob_descriptor(b"nothing like this was pushed"))


def test_unreachable_registry_is_unavailable_naming_it() -> None:
    address = f"127.0.0.1:{free_tcp_port()}"
    with client_for(busybox_at(address)) as client, pytest.raises(errors.Unavailable) as raised:
        client.resolve()
    assert address in str(raised.value)
    assert "connection refused" in str(raised.value)


def test_registry_that_never_answers_is_unavailable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections are accepted by the kernel, and nobody ever answers them
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        hosts = [RegistryHost(f"http://{address}/v2", CAPABILITIES)]
        with client_for(busybox_at(address), hosts=hosts, timeout=0.3) as client:
            with pytest.raises(errors.Unavailable, match=f"{address}: timed out"):
                client.resolve()


def test_mirror_without_resolve_is_not_asked_for_tags(local_registry: LocalRegistry, scripted: ScriptedRegistry,
                                                      kit_digests: dict[str, str], tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", f"""
server = "{local_registry.url}"
[host."{scripted.url}"]
  capabilities = ["pull"]
""")
    resolved, _ = pull(BUSYBOX, config_dir=tmp_path)
    assert resolved.repo_digest == kit_digests[BUSYBOX]
    asked = scripted.paths()
    assert f"/v2/{BUSYBOX_REPOSITORY}/manifests/{BUSYBOX_TAG}" not in asked
    assert f"/v2/{BUSYBOX_REPOSITORY}/manifests/{resolved.manifest_digest}" in asked  # pull by digest: it may
    assert f"/v2/{BUSYBOX_REPOSITORY}/blobs/{resolved.config.digest}" in asked


def test_mirror_requests_carry_the_namespace(scripted: ScriptedRegistry, tmp_path: Path) -> None:
    scripted_image(scripted, BUSYBOX_REPOSITORY, tag=BUSYBOX_TAG)
    scripted_image(scripted, "library/busybox", tag="1.36")
    write_hosts(tmp_path, "registry.k8s.io", f'[host."{scripted.url}"]\n  header = {{ X-Mirror-Test = "yes" }}\n')
    write_hosts(tmp_path, "docker.io", f'[host."{scripted.url}"]\n')
    pull(BUSYBOX, config_dir=tmp_path)
    pull("busybox:1.36", config_dir=tmp_path)
    by_path = {request.path: request.query for request in scripted.requests}
    assert by_path[f"/v2/{BUSYBOX_REPOSITORY}/manifests/{BUSYBOX_TAG}"] == {"ns": ["registry.k8s.io"]}
    assert by_path["/v2/library/busybox/manifests/1.36"] == {"ns": ["docker.io"]}
    for request in scripted.requests:
        from_k8s = "library/" not in request.path
        assert request.query == {"ns": ["registry.k8s.io" if from_k8s else "docker.io"]}
        assert (request.headers.get("X-Mirror-Test") == "yes") == from_k8s  # hosts.toml headers, per host


def test_upstream_itself_gets_no_namespace(scripted: ScriptedRegistry) -> None:
    scripted_image(scripted, "img", tag="v1")
    pull(f"{scripted.address}/img:v1", hosts=[RegistryHost(f"{scripted.url}/v2", CAPABILITIES)])
    assert all(request.query == {} for request in scripted.requests)

# --------------------------------------------------------------------------- token authentication


def test_token_auth_with_the_right_credentials(token_registry: RegistryServer, token_server: TokenServer) -> None:
    before = len(token_server.requests)
    resolved, blobs = pull(busybox_at(token_registry.address), credentials=Credentials("alice", "wonderland"))
    assert_consistent(resolved, blobs)
    # One token for the whole pull: after the first challenge every request carries it.
    assert token_server.requests[before:] == [
        TokenRequest("GET", "alice", (f"repository:{BUSYBOX_REPOSITORY}:pull",))]


def test_token_auth_with_wrong_credentials_is_unauthenticated(token_registry: RegistryServer) -> None:
    with client_for(busybox_at(token_registry.address), credentials=Credentials("alice", "queen")) as client:
        with pytest.raises(errors.Unauthenticated) as raised:
            client.resolve()
    assert token_registry.address in str(raised.value)


def test_token_auth_without_credentials_is_unauthenticated(token_registry: RegistryServer) -> None:
    with client_for(busybox_at(token_registry.address)) as client, pytest.raises(errors.Unauthenticated) as raised:
        client.resolve()
    assert token_registry.address in str(raised.value)


def test_identity_token_uses_the_oauth_refresh_flow(token_registry: RegistryServer,
                                                    token_server: TokenServer) -> None:
    before = len(token_server.requests)
    credentials = Credentials.from_auth_config(pb.AuthConfig(identity_token="alice-refresh-token"))
    resolved, blobs = pull(busybox_at(token_registry.address), credentials=credentials)
    assert_consistent(resolved, blobs)
    [request] = token_server.requests[before:]
    assert (request.method, request.grant_type, request.account) == ("POST", "refresh_token", "alice")


def test_unknown_identity_token_is_unauthenticated(token_registry: RegistryServer) -> None:
    with client_for(busybox_at(token_registry.address), credentials=Credentials(identity_token="stolen")) as client:
        with pytest.raises(errors.Unauthenticated, match="invalid_grant"):
            client.resolve()


def test_registry_token_is_sent_as_the_bearer_token(token_registry: RegistryServer,
                                                    token_server: TokenServer) -> None:
    token = token_server.issue_token("alice", [f"repository:{BUSYBOX_REPOSITORY}:pull"])
    before = len(token_server.requests)
    resolved, blobs = pull(busybox_at(token_registry.address), credentials=Credentials(registry_token=token))
    assert_consistent(resolved, blobs)
    assert token_server.requests[before:] == []
    with client_for(busybox_at(token_registry.address), credentials=Credentials(registry_token="junk")) as client:
        with pytest.raises(errors.Unauthenticated):
            client.resolve()


def test_parallel_blob_fetches_share_one_token(token_registry: RegistryServer, token_server: TokenServer) -> None:
    credentials = Credentials("alice", "wonderland")
    with client_for(busybox_at(token_registry.address), credentials=credentials) as client:
        resolved = client.resolve()
    before = len(token_server.requests)
    descriptors = [resolved.config, *resolved.layers] * 4
    with client_for(busybox_at(token_registry.address), credentials=credentials) as client:
        with ThreadPoolExecutor(max_workers=len(descriptors)) as pool:
            results = list(pool.map(lambda d: fetch(client, d), descriptors))
    assert [sha256_digest(data) for data in results] == [d.digest for d in descriptors]
    assert len(token_server.requests[before:]) == 1

# --------------------------------------------------------------------------- basic authentication


def test_basic_auth_from_the_cri_auth_field(htpasswd_registry: RegistryServer) -> None:
    encoded = base64.b64encode(b"alice:wonderland").decode()
    credentials = Credentials.from_auth_config(pb.AuthConfig(auth=encoded, server_address=htpasswd_registry.address))
    assert (credentials.username, credentials.password) == ("alice", "wonderland")
    resolved, blobs = pull(busybox_at(htpasswd_registry.address), credentials=credentials)
    assert_consistent(resolved, blobs)


@pytest.mark.parametrize("credentials", [
    Credentials("alice", "queen"),
    Credentials(),
    Credentials("alice", "wonderland", server_address="registry.example.com"),  # meant for another registry
], ids=["wrong-password", "none", "for-another-registry"])
def test_basic_auth_refused_is_unauthenticated(htpasswd_registry: RegistryServer, credentials: Credentials) -> None:
    with client_for(busybox_at(htpasswd_registry.address), credentials=credentials) as client:
        with pytest.raises(errors.Unauthenticated) as raised:
            client.resolve()
    assert htpasswd_registry.address in str(raised.value)


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
     'scope="repository:library/busybox:pull,push",error="insufficient_scope"',
     [Challenge("bearer", {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                           "scope": "repository:library/busybox:pull,push", "error": "insufficient_scope"})]),
    ('Basic realm="a \\"quoted\\" realm"', [Challenge("basic", {"realm": 'a "quoted" realm'})]),
    ('Negotiate abc==, Basic realm="b", Bearer realm=r , scope="a b"',
     [Challenge("negotiate"), Challenge("basic", {"realm": "b"}), Challenge("bearer", {"realm": "r", "scope": "a b"})]),
    ("", []),
])
def test_www_authenticate_parsing(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_bearer_is_answered_before_basic() -> None:
    both = parse_www_authenticate('Basic realm="b", Bearer realm="r"')
    assert pick_challenge(both) == Challenge("bearer", {"realm": "r"})
    assert pick_challenge(parse_www_authenticate("Bearer service=no-realm")) is None
    assert pick_challenge(parse_www_authenticate("Negotiate abc==")) is None


def test_auth_config_reading() -> None:
    assert Credentials.from_auth_config(None) == Credentials()
    given = pb.AuthConfig(username="u", password="p", auth=base64.b64encode(b"x:y").decode(), registry_token="t")
    assert Credentials.from_auth_config(given) == Credentials("u", "p", registry_token="t")
    with pytest.raises(errors.InvalidArgument):
        Credentials.from_auth_config(pb.AuthConfig(auth="not base64!"))
    with pytest.raises(errors.InvalidArgument):
        Credentials.from_auth_config(pb.AuthConfig(auth=base64.b64encode(b"no-colon").decode()))
    assert "wonderland" not in repr(Credentials("alice", "wonderland"))

# --------------------------------------------------------------------------- TLS


def tls_hosts(config_dir: Path, registry: RegistryServer, settings: str) -> Path:
    return write_hosts(config_dir, "registry.example.test", f'server = "{registry.url}"\n{settings}\n')


def test_tls_with_the_ca_from_hosts_toml(tls_registry: RegistryServer, ca: CertificateAuthority,
                                         tmp_path: Path) -> None:
    config_dir = tls_hosts(tmp_path, tls_registry, f'ca = "{ca.cert_path}"')
    resolved, blobs = pull(f"registry.example.test/{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}", config_dir=config_dir)
    assert_consistent(resolved, blobs)


def test_tls_with_skip_verify(tls_registry: RegistryServer, tmp_path: Path) -> None:
    # pytest turns warnings into errors here, so this also shows no InsecureRequestWarning is raised.
    config_dir = tls_hosts(tmp_path, tls_registry, "skip_verify = true")
    resolved, blobs = pull(f"registry.example.test/{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}", config_dir=config_dir)
    assert_consistent(resolved, blobs)


def test_tls_without_the_ca_is_unavailable(tls_registry: RegistryServer, tmp_path: Path) -> None:
    config_dir = tls_hosts(tmp_path, tls_registry, "")
    with client_for(f"registry.example.test/{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}", config_dir=config_dir) as client:
        with pytest.raises(errors.Unavailable) as raised:
            client.resolve()
    assert tls_registry.address in str(raised.value)
    assert "certificate verif" in str(raised.value)


def test_loopback_tls_registry_is_not_verified_by_default(tls_registry: RegistryServer) -> None:
    resolved, blobs = pull(busybox_at(tls_registry.address))  # containerd's rule for localhost
    assert_consistent(resolved, blobs)


def test_client_certificate_from_hosts_toml(mtls_registry: RegistryServer, ca: CertificateAuthority,
                                            tmp_path: Path) -> None:
    client_pair = ca.issue("client")
    text = f"{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}"
    with_cert = tls_hosts(tmp_path / "with", mtls_registry,
                          f'ca = "{ca.cert_path}"\nclient = [["{client_pair.cert_path}", "{client_pair.key_path}"]]')
    resolved, blobs = pull(f"registry.example.test/{text}", config_dir=with_cert)
    assert_consistent(resolved, blobs)
    without_cert = tls_hosts(tmp_path / "without", mtls_registry, f'ca = "{ca.cert_path}"')
    with client_for(f"registry.example.test/{text}", config_dir=without_cert) as client:
        with pytest.raises(errors.Unavailable):
            client.resolve()

# --------------------------------------------------------------------------- platforms and indexes


def test_manifest_list_picks_the_platform(scripted: ScriptedRegistry) -> None:
    platforms = {("amd64", ""): b"amd64", ("arm64", "v8"): b"arm64", ("arm", "v7"): b"armv7", ("arm", "v6"): b"v6"}
    entries = []
    for (architecture, variant), layer in platforms.items():
        descriptor = scripted_image(scripted, "multi", architecture=architecture, layer=layer)
        platform = {"os": "linux", "architecture": architecture, **({"variant": variant} if variant else {})}
        entries.append({**descriptor, "mediaType": MEDIA_TYPE_OCI_MANIFEST, "platform": platform})
    entries.insert(0, {**entries[0], "platform": {"os": "unknown", "architecture": "unknown"}})  # an attestation
    index = scripted.add_json_manifest(
        "multi", {"schemaVersion": 2, "mediaType": MEDIA_TYPE_DOCKER_MANIFEST_LIST, "manifests": entries}, tag="v1")
    text = f"{scripted.address}/multi:v1"
    hosts = [RegistryHost(f"{scripted.url}/v2", CAPABILITIES)]
    for wanted, layer in [(("linux", "amd64", ""), b"amd64"), (("linux", "arm64", ""), b"arm64"),
                          (("linux", "arm", ""), b"armv7"), (("linux", "arm", "v6"), b"v6")]:
        resolved, blobs = pull(text, hosts=hosts, platform=wanted)
        assert resolved.repo_digest == index["digest"]
        assert blobs[resolved.layers[0].digest] == layer
    with client_for(text, hosts=hosts, platform=("linux", "riscv64", "")) as client:
        with pytest.raises(errors.NotFound) as raised:
            client.resolve()
    assert "linux/riscv64" in str(raised.value)
    assert "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, unknown/unknown" in str(raised.value)


def test_kit_index_for_another_platform_is_not_found(local_registry: LocalRegistry) -> None:
    other = "s390x" if HOST_ARCH != "s390x" else "amd64"
    with client_for(busybox_at(local_registry.address), platform=("linux", other, "")) as client:
        with pytest.raises(errors.NotFound, match=f"available: linux/{HOST_ARCH}"):
            client.resolve()


def test_indexes_resolve_to_this_hosts_platform_by_default(local_registry: LocalRegistry) -> None:
    assert host_platform() == PLATFORM  # linux/amd64 on x86_64, linux/arm64 on aarch64
    ref = ImageReference.parse(busybox_at(local_registry.address))
    with RegistryClient(ref, load_hosts(ref.domain, None), Credentials()) as client:
        assert client.platform == PLATFORM
        resolved = client.resolve()
    assert resolved.index_bytes is not None and resolved.manifest_digest != resolved.repo_digest


def test_an_index_may_be_nested_once(scripted: ScriptedRegistry) -> None:
    image = scripted_image(scripted, "nested")
    platform = {"os": "linux", "architecture": "amd64"}
    inner = scripted.add_json_manifest("nested", {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
                                                  "manifests": [{**image, "platform": platform}]})
    outer = scripted.add_json_manifest("nested", {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
                                                  "manifests": [{**inner, "platform": platform}]}, tag="once")
    scripted.add_json_manifest("nested", {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
                                          "manifests": [{**outer, "platform": platform}]}, tag="twice")
    hosts = [RegistryHost(f"{scripted.url}/v2", CAPABILITIES)]
    resolved, _ = pull(f"{scripted.address}/nested:once", hosts=hosts, platform=("linux", "amd64", ""))
    assert (resolved.repo_digest, resolved.manifest_digest) == (outer["digest"], image["digest"])
    with client_for(f"{scripted.address}/nested:twice", hosts=hosts) as client:
        with pytest.raises(errors.InvalidArgument, match="nested"):
            client.resolve()

# --------------------------------------------------------------------------- content that is not what it claims


def scripted_client(registry: ScriptedRegistry, repository: str = "bad", tag: str = "v1") -> RegistryClient:
    return client_for(f"{registry.address}/{repository}:{tag}",
                      hosts=[RegistryHost(f"{registry.url}/v2", CAPABILITIES)], platform=("linux", "amd64", ""))


def test_tampered_blob_is_a_digest_mismatch(scripted: ScriptedRegistry) -> None:
    promised = blob_descriptor(b"the real layer")
    scripted.add_blob("bad", promised.digest, b"the evil layer")
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch) as raised:
        fetch(client, promised)
    assert isinstance(raised.value, errors.FailedPrecondition)
    assert raised.value.expected == promised.digest
    assert raised.value.actual.startswith(sha256_digest(b"the evil layer"))


def test_blob_longer_than_announced_is_refused_before_reading(scripted: ScriptedRegistry) -> None:
    promised = blob_descriptor(b"12345678")
    scripted.add_blob("bad", promised.digest, b"12345678 and more")
    sink = io.BytesIO()
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch, match="8 bytes"):
        client.fetch_blob(promised, sink)
    assert sink.getvalue() == b""


def test_endless_blob_stops_at_the_promised_size(scripted: ScriptedRegistry) -> None:
    chunk = b"x" * (1024 * 1024)
    promised = blob_descriptor(chunk * 2)
    scripted.add_blob("bad", promised.digest, chunk, repeat=1024, content_length=False)  # 1 GiB, unannounced
    sink = io.BytesIO()
    started = time.monotonic()
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch) as raised:
        client.fetch_blob(promised, sink)
    assert time.monotonic() - started < 5
    assert sink.getvalue() == chunk * 2  # everything promised, not a byte more
    assert raised.value.expected == f"{promised.size} bytes"


def test_short_blob_is_a_digest_mismatch(scripted: ScriptedRegistry) -> None:
    promised = blob_descriptor(b"complete content")
    scripted.add_blob("bad", promised.digest, b"complete", content_length=False)
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch, match="got 8 bytes"):
        fetch(client, promised)


def test_sha512_blobs_are_verified(scripted: ScriptedRegistry) -> None:
    data = b"sha512 content"
    descriptor = Descriptor("application/octet-stream", "sha512:" + hashlib.sha512(data).hexdigest(), len(data))
    scripted.add_blob("bad", descriptor.digest, data)
    with scripted_client(scripted) as client:
        assert fetch(client, descriptor) == data
    scripted.add_blob("bad", descriptor.digest, data.upper())
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch):
        fetch(client, descriptor)


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "unannounced"])
def test_oversized_manifest_is_resource_exhausted(scripted: ScriptedRegistry, announced: bool) -> None:
    filler = b" " * (MAX_MANIFEST_SIZE // 4)
    scripted.add_manifest("bad", "v1", filler, MEDIA_TYPE_OCI_MANIFEST, repeat=5, content_length=announced)
    with scripted_client(scripted) as client, pytest.raises(errors.ResourceExhausted, match="larger than"):
        client.resolve()


def test_schema1_manifest_is_refused(scripted: ScriptedRegistry) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "bad", "tag": "v1", "fsLayers": [], "history": []}).encode()
    scripted.add_manifest("bad", "v1", body, "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with scripted_client(scripted) as client, pytest.raises(errors.InvalidArgument, match="schema 1"):
        client.resolve()


def test_manifest_not_matching_the_requested_digest(scripted: ScriptedRegistry) -> None:
    image = scripted_image(scripted, "bad")
    other = sha256_digest(b"another manifest")
    scripted.routes[f"/v2/bad/manifests/{other}"] = scripted.routes[f"/v2/bad/manifests/{image['digest']}"]
    with client_for(f"{scripted.address}/bad@{other}", hosts=[RegistryHost(f"{scripted.url}/v2", CAPABILITIES)]) \
            as client, pytest.raises(DigestMismatch) as raised:
        client.resolve()
    assert (raised.value.expected, raised.value.actual) == (other, image["digest"])


def test_manifest_not_matching_docker_content_digest(scripted: ScriptedRegistry) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST}).encode()
    scripted.add_manifest("bad", "v1", body, MEDIA_TYPE_OCI_MANIFEST, digest_header=sha256_digest(b"other"))
    with scripted_client(scripted) as client, pytest.raises(DigestMismatch):
        client.resolve()

# --------------------------------------------------------------------------- redirects and HTTP errors


def test_redirect_to_another_origin_drops_the_credentials() -> None:
    data = b"layer in object storage"
    descriptor = blob_descriptor(data)
    with ScriptedRegistry(basic_auth=("alice", "wonderland")) as registry, ScriptedRegistry() as storage:
        storage.add_blob("bad", descriptor.digest, data)
        registry.routes["/v2/bad/blobs/" + descriptor.digest] = _redirect(
            f"http://localhost:{storage.port}/v2/bad/blobs/{descriptor.digest}")
        registry.routes["/v2/bad/blobs/sha256:same-origin"] = _redirect(f"/v2/bad/blobs/{descriptor.digest}.real")
        registry.add_blob("bad", descriptor.digest + ".real", data)
        with client_for(f"{registry.address}/bad:v1", hosts=[RegistryHost(f"{registry.url}/v2", CAPABILITIES)],
                        credentials=Credentials("alice", "wonderland")) as client:
            assert fetch(client, descriptor) == data
            [stored] = storage.requests
            assert "Authorization" not in stored.headers
            assert any("Authorization" in r.headers for r in registry.requests)


def _redirect(location: str) -> Route:
    return Route(status=307, headers={"Location": location})


@pytest.mark.parametrize(("status", "kind", "words"), [
    (403, errors.PermissionDenied, "access denied"),
    (500, errors.Unknown, "HTTP 500: boom"),
    (503, errors.Unavailable, "HTTP 503"),
    (418, errors.Unknown, "HTTP 418"),
])
def test_http_errors_map_to_errors(scripted: ScriptedRegistry, status: int, kind: type[errors.Error],
                                   words: str) -> None:
    scripted.routes["/v2/bad/manifests/v1"] = Route(status=status, body=b"boom")
    with scripted_client(scripted) as client, pytest.raises(kind) as raised:
        client.resolve()
    assert words in str(raised.value)
    assert scripted.address in str(raised.value)


def test_refusals_carry_the_registry_message(scripted: ScriptedRegistry) -> None:
    denied = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
    scripted.routes["/v2/bad/manifests/v1"] = Route(status=403, body=json.dumps(denied).encode())
    with scripted_client(scripted) as client, pytest.raises(errors.PermissionDenied) as raised:
        client.resolve()
    assert "requested access to the resource is denied" in str(raised.value)
    with ScriptedRegistry(basic_auth=("alice", "wonderland")) as registry:
        with scripted_client(registry) as client, pytest.raises(errors.Unauthenticated) as raised:
            client.resolve()
    assert "authentication required" in str(raised.value)  # from the registry's 401 body


def test_an_error_beats_not_found_and_all_hosts_are_named(local_registry: LocalRegistry,
                                                          scripted: ScriptedRegistry) -> None:
    scripted.routes["/v2/no/such/manifests/v1"] = Route(status=500, body=b"mirror broken")
    hosts = [RegistryHost(f"{scripted.url}/v2", CAPABILITIES), RegistryHost(f"{local_registry.url}/v2", CAPABILITIES)]
    with client_for(f"{local_registry.address}/no/such:v1", hosts=hosts) as client:
        with pytest.raises(errors.Unknown) as raised:
            client.resolve()
    assert "mirror broken" in str(raised.value)
    assert f"not found on {local_registry.address}" in str(raised.value)
