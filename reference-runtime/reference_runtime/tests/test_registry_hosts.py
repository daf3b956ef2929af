"""hosts.toml directories: which registry hosts a pull tries, in which order, with which settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_runtime import errors
from reference_runtime.image.registry.hosts import CAPABILITIES, RegistryHost, load_hosts

ALL = CAPABILITIES


def write_hosts(config_dir: Path, directory: str, text: str) -> Path:
    hosts_dir = config_dir / directory
    hosts_dir.mkdir(parents=True, exist_ok=True)
    (hosts_dir / "hosts.toml").write_text(text)
    return hosts_dir


def urls(hosts: list[RegistryHost]) -> list[str]:
    return [host.url for host in hosts]


def test_no_config_dir_means_the_upstream_alone() -> None:
    assert load_hosts("registry.k8s.io", None) == [RegistryHost("https://registry.k8s.io/v2", ALL)]


def test_docker_hub_upstream_is_registry_1(tmp_path: Path) -> None:
    assert urls(load_hosts("docker.io", tmp_path)) == ["https://registry-1.docker.io/v2"]


def test_missing_directory_or_file_means_the_upstream_alone(tmp_path: Path) -> None:
    (tmp_path / "quay.io").mkdir()
    assert urls(load_hosts("quay.io", tmp_path)) == ["https://quay.io/v2"]
    assert urls(load_hosts("gcr.io", tmp_path / "nowhere")) == ["https://gcr.io/v2"]


def test_mirrors_in_file_order_then_the_server(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", """
server = "https://registry.k8s.io"

[host."http://127.0.0.1:5001"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.example.com"]
  capabilities = ["pull"]

[host."http://127.0.0.1:5000"]
""")
    hosts = load_hosts("registry.k8s.io", tmp_path)
    assert urls(hosts) == [
        "http://127.0.0.1:5001/v2",
        "https://mirror.example.com/v2",
        "http://127.0.0.1:5000/v2",
        "https://registry.k8s.io/v2",
    ]
    assert [host.capabilities for host in hosts] == [
        frozenset({"pull", "resolve"}), frozenset({"pull"}), ALL, ALL]
    assert not hosts[1].can("resolve")


def test_server_defaults_to_the_upstream_when_left_out(tmp_path: Path) -> None:
    write_hosts(tmp_path, "docker.io", '[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n')
    assert urls(load_hosts("docker.io", tmp_path)) == ["http://127.0.0.1:5000/v2", "https://registry-1.docker.io/v2"]


def test_top_level_settings_apply_to_the_server(tmp_path: Path) -> None:
    hosts_dir = write_hosts(tmp_path, "example.com", """
server = "https://registry.example.com:8443"
capabilities = ["pull", "resolve"]
ca = "ca.pem"
skip_verify = false
[header]
  X-Custom = "yes"
""")
    [server] = load_hosts("example.com", tmp_path)
    assert server == RegistryHost(
        "https://registry.example.com:8443/v2", frozenset({"pull", "resolve"}),
        ca_files=(str(hosts_dir / "ca.pem"),), headers={"X-Custom": "yes"})


def test_override_path_keeps_the_given_path(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", """
[host."https://proxy.example.com/registry-k8s-io"]
  override_path = true
[host."https://proxy.example.com/prefix/"]
[host."https://proxy.example.com/already/v2"]
[host."https://proxy.example.com"]
  override_path = true
""")
    assert urls(load_hosts("registry.k8s.io", tmp_path))[:4] == [
        "https://proxy.example.com/registry-k8s-io",
        "https://proxy.example.com/prefix/v2",
        "https://proxy.example.com/already/v2",
        "https://proxy.example.com",
    ]


def test_hosts_without_scheme_are_https_even_on_loopback(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", '[host."127.0.0.1:5000"]\n[host."mirror.example.com:5000"]\n')
    hosts = load_hosts("registry.k8s.io", tmp_path)
    assert urls(hosts)[:2] == ["https://127.0.0.1:5000/v2", "https://mirror.example.com:5000/v2"]
    assert not any(host.http_fallback or host.skip_verify for host in hosts)


def test_tls_files_resolve_against_the_hosts_directory(tmp_path: Path) -> None:
    hosts_dir = write_hosts(tmp_path, "registry.k8s.io", """
[host."https://a.example.com"]
  ca = ["ca1.pem", "/etc/ssl/ca2.pem"]
  client = [["client.pem", "client.key"]]
  skip_verify = true
[host."https://b.example.com"]
  client = "both.pem"
""")
    a, b, _ = load_hosts("registry.k8s.io", tmp_path)
    assert a.ca_files == (str(hosts_dir / "ca1.pem"), "/etc/ssl/ca2.pem")
    assert a.client_cert == (str(hosts_dir / "client.pem"), str(hosts_dir / "client.key"))
    assert a.skip_verify
    assert b.client_cert == (str(hosts_dir / "both.pem"),)
    assert not b.skip_verify


def test_headers_and_dial_timeout(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", """
[host."https://a.example.com"]
  dial_timeout = "1m1.5s"
  [host."https://a.example.com".header]
    X-One = "1"
    X-Many = ["a", "b"]
""")
    mirror = load_hosts("registry.k8s.io", tmp_path)[0]
    assert mirror.headers == {"X-One": "1", "X-Many": "a, b"}
    assert mirror.dial_timeout == pytest.approx(61.5)


def test_plain_http_with_tls_settings_tries_https_first(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", """
[host."http://127.0.0.1:5000"]
  skip_verify = true
[host."http://127.0.0.1:80"]
  skip_verify = true
""")
    https_first, plain = load_hosts("registry.k8s.io", tmp_path)[:2]
    assert (https_first.url, https_first.http_fallback) == ("https://127.0.0.1:5000/v2", True)
    assert (plain.url, plain.http_fallback) == ("http://127.0.0.1:80/v2", False)


def test_default_directory_is_used_for_any_registry(tmp_path: Path) -> None:
    write_hosts(tmp_path, "_default", '[host."http://127.0.0.1:5000"]\n')
    assert urls(load_hosts("quay.io", tmp_path)) == ["http://127.0.0.1:5000/v2", "https://quay.io/v2"]
    write_hosts(tmp_path, "quay.io", '[host."http://127.0.0.1:6000"]\n')
    assert urls(load_hosts("quay.io", tmp_path)) == ["http://127.0.0.1:6000/v2", "https://quay.io/v2"]


def test_host_port_directory_comes_before_host_colon_port(tmp_path: Path) -> None:
    write_hosts(tmp_path, "127.0.0.1:5000", 'server = "http://127.0.0.1:5000"\n')
    assert urls(load_hosts("127.0.0.1:5000", tmp_path)) == ["http://127.0.0.1:5000/v2"]
    write_hosts(tmp_path, "127.0.0.1_5000_", 'server = "https://127.0.0.1:5000"\n')
    assert urls(load_hosts("127.0.0.1:5000", tmp_path)) == ["https://127.0.0.1:5000/v2"]


@pytest.mark.parametrize(("domain", "url", "skip_verify", "http_fallback"), [
    ("127.0.0.1:5000", "https://127.0.0.1:5000/v2", True, True),
    ("localhost:5000", "https://localhost:5000/v2", True, True),
    ("[::1]:5000", "https://[::1]:5000/v2", True, True),
    ("127.0.0.2:5000", "https://127.0.0.2:5000/v2", True, True),
    ("localhost", "https://localhost/v2", True, False),
    ("127.0.0.1:443", "https://127.0.0.1:443/v2", True, False),
    ("127.0.0.1:80", "http://127.0.0.1:80/v2", False, False),
    ("10.0.0.1:5000", "https://10.0.0.1:5000/v2", False, False),
    ("localhost.example.com:5000", "https://localhost.example.com:5000/v2", False, False),
])
def test_loopback_upstream_follows_containerd(domain: str, url: str, skip_verify: bool, http_fallback: bool) -> None:
    [host] = load_hosts(domain, None)
    assert (host.url, host.skip_verify, host.http_fallback) == (url, skip_verify, http_fallback)


def test_certs_d_layout_without_hosts_toml(tmp_path: Path) -> None:
    certs = tmp_path / "registry.example.com:5000"
    certs.mkdir()
    for name in ("ca.crt", "client.cert", "client.key", "notes.txt"):
        (certs / name).write_text("")
    [host] = load_hosts("registry.example.com:5000", tmp_path)
    assert host.url == "https://registry.example.com:5000/v2"
    assert host.ca_files == (str(certs / "ca.crt"),)
    assert host.client_cert == (str(certs / "client.cert"), str(certs / "client.key"))


@pytest.mark.parametrize(("text", "complaint"), [
    ('[host."http://127.0.0.1:5000"\n', "invalid TOML"),
    ('server = "https://a.example.com"\nserver = "https://b.example.com"\n', "invalid TOML"),
    ('[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "fetch"]\n', "unknown capability 'fetch'"),
    ('[host."http://127.0.0.1:5000"]\n  skip_verify = "yes"\n', "'skip_verify' must be true or false"),
    ('[host."http://127.0.0.1:5000"]\n  ca = 5\n', "'ca' must be a string or a list of strings"),
    ('[host."ftp://127.0.0.1:5000"]\n', "invalid host URL"),
    ('server = ""\n', "'server' must be a non-empty string"),
    ('host = "http://127.0.0.1:5000"\n', "'host' must be a table"),
    ('[host."http://127.0.0.1:5000"]\n  dial_timeout = "soon"\n', "invalid dial_timeout"),
    ('[host."http://127.0.0.1:5000"]\n  client = [["only-one.pem"]]\n', "'client' must be"),
])
def test_bad_hosts_file_is_an_invalid_argument_naming_it(tmp_path: Path, text: str, complaint: str) -> None:
    hosts_dir = write_hosts(tmp_path, "registry.k8s.io", text)
    with pytest.raises(errors.InvalidArgument) as raised:
        load_hosts("registry.k8s.io", tmp_path)
    assert str(hosts_dir / "hosts.toml") in str(raised.value)
    assert complaint in str(raised.value)


def test_capabilities_are_case_insensitive_and_empty_means_all(tmp_path: Path) -> None:
    write_hosts(tmp_path, "registry.k8s.io", """
[host."http://a.example.com"]
  capabilities = ["PULL"]
[host."http://b.example.com"]
  capabilities = []
""")
    a, b, _ = load_hosts("registry.k8s.io", tmp_path)
    assert (a.capabilities, b.capabilities) == (frozenset({"pull"}), ALL)


def test_host_properties() -> None:
    host = RegistryHost("https://127.0.0.1:5000/prefix/v2", ALL)
    assert (host.scheme, host.authority, host.origin, host.api_root) == (
        "https", "127.0.0.1:5000", "https://127.0.0.1:5000", "/prefix/v2")
