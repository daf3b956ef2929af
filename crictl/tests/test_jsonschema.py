"""The ``jsonschema`` (``js``) subcommands of create, run, runp and pull, and the schemas they print.

The config files the other crictl tests feed to crictl are validated against the printed schemas: with the
``jsonschema`` package when it is installed, else with the small checker below (enough for the keywords
our schemas use).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.json_format import ParseDict

from cri_api import pb
from crictl.jsonschema import SCHEMA_DIALECT, config_schema
from crictl.tests.conftest import BUSYBOX, container_config_dict, pod_config_dict, run_crictl

POD_REF = "#/$defs/PodSandboxConfig"
CONTAINER_REF = "#/$defs/ContainerConfig"
JSON_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,),
                                           "integer": (int,), "number": (int, float), "boolean": (bool,)}


def schemas_printed(*args: str) -> list[dict[str, Any]]:
    """Every JSON document ``crictl args...`` prints, in order."""
    result = run_crictl(*args)
    assert result.returncode == 0, result.stderr
    decoder, text, documents = json.JSONDecoder(), result.stdout.strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].lstrip()
    return documents


def violations(schema: dict[str, Any], value: Any, root: dict[str, Any], where: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` ($ref, type, enum, minimum, properties, additionalProperties, items)."""
    if "$ref" in schema:
        return violations(root["$defs"][schema["$ref"].removeprefix("#/$defs/")], value, root, where)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(is_json_type(value, kind) for kind in types):
        return [f"{where}: {value!r} is not {'/'.join(types)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if "minimum" in schema and value < schema["minimum"]:
        return [f"{where}: {value!r} is below {schema['minimum']}"]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            rule = schema.get("properties", {}).get(key, schema.get("additionalProperties", True))
            if rule is False:
                found.append(f"{where}: unknown key {key!r}")
            elif isinstance(rule, dict):
                found += violations(rule, item, root, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += violations(schema["items"], item, root, f"{where}[{index}]")
    return found


def is_json_type(value: Any, kind: str) -> bool:
    return isinstance(value, JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))


def validation_errors(schema: dict[str, Any], config: dict[str, Any]) -> list[str]:
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        return violations(schema, config, schema)
    return [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(config)]


def full_pod_config() -> dict[str, Any]:
    return {**pod_config_dict("schema-pod"), "hostname": "pod", "log_directory": "/tmp/pod-logs",
            "dns_config": {"servers": ["1.1.1.1"], "searches": ["local"], "options": ["ndots:2"]},
            "port_mappings": [{"protocol": "UDP", "container_port": 53, "host_port": 5353}],
            "labels": {"app": "dns"}, "annotations": {"note": "x"},
            "linux": {"cgroup_parent": "/kubepods", "sysctls": {"net.ipv4.ip_forward": "1"},
                      "security_context": {"namespace_options": {"network": "NODE", "pid": 1},
                                           "run_as_user": {"value": 0}, "supplemental_groups": [10]}}}


def full_container_config() -> dict[str, Any]:
    return {**container_config_dict("schema-ctr"), "args": ["-c", "true"], "working_dir": "/",
            "envs": [{"key": "A", "value": "MQ=="}],  # KeyValue.value is bytes (base64) in today's CRI
            "tty": False, "stdin": True,
            "mounts": [{"container_path": "/data", "host_path": "/tmp", "readonly": True,
                        "propagation": "PROPAGATION_PRIVATE"}],
            "linux": {"resources": {"memory_limit_in_bytes": 67108864, "cpu_shares": 512},
                      "security_context": {"privileged": False, "capabilities": {"add_capabilities": ["NET_ADMIN"]},
                                           "seccomp": {"profile_type": "RuntimeDefault"}}}}


# The config files the crictl tests write (conftest, test_container, test_sandbox, test_run), and fuller ones.
POD_CONFIGS = [
    pod_config_dict("ctr-pod"),
    {"metadata": {"name": "sandbox-yaml", "namespace": "crictl-test"}, "labels": {"from": "yaml"}},
    full_pod_config(),
]
CONTAINER_CONFIGS = [
    container_config_dict("ctr-main"),
    {"metadata": {"name": "ctr-main"}, "image": {"image": BUSYBOX}, "command": ["sleep", "3600"],
     "labels": {"io.kubernetes.pod.name": "ctr-pod", "io.kubernetes.pod.namespace": "crictl-test"}},
    {**container_config_dict("run-no-image"), "image": {"image": "registry.invalid/crictl-tests/none:0"}},
    full_container_config(),
]


@pytest.fixture(scope="module")
def pod_schema() -> dict[str, Any]:
    (schema,) = schemas_printed("runp", "jsonschema")
    return schema


@pytest.fixture(scope="module")
def container_schema() -> dict[str, Any]:
    (schema,) = schemas_printed("create", "jsonschema", "--container")
    return schema


def test_each_command_prints_its_schema(pod_schema: dict[str, Any], container_schema: dict[str, Any]) -> None:
    assert pod_schema == config_schema(pb.PodSandboxConfig.DESCRIPTOR)
    assert container_schema == config_schema(pb.ContainerConfig.DESCRIPTOR)
    assert (pod_schema["$schema"], pod_schema["$ref"], container_schema["$ref"]) == (
        SCHEMA_DIALECT, POD_REF, CONTAINER_REF)
    assert schemas_printed("runp", "js") == [pod_schema]
    assert schemas_printed("pull", "jsonschema") == [pod_schema]
    assert schemas_printed("pull", "js") == [pod_schema]
    for command in ("create", "run"):
        assert schemas_printed(command, "js", "-p") == [pod_schema]
        assert schemas_printed(command, "jsonschema", "-c") == [container_schema]
        assert schemas_printed(command, "js", "-pc") == [pod_schema, container_schema]  # pod first, as upstream


def test_without_a_choice_the_subcommand_shows_its_help() -> None:
    for command in ("create", "run"):
        result = run_crictl(command, "jsonschema")
        assert result.returncode == 0
        assert result.stdout.startswith(f"Usage: crictl {command} jsonschema [OPTIONS]")
        assert "-p, --pod" in result.stdout and "-c, --container" in result.stdout
    assert run_crictl("runp", "js", "--pod").returncode == 2  # runp's subcommand takes no flags


def test_help_lists_the_subcommand() -> None:
    for command in ("create", "run", "runp", "pull"):
        result = run_crictl(command, "--help")
        assert result.returncode == 0
        assert "Commands:\n  jsonschema, js  Display the JSON schema for the" in result.stdout


@pytest.mark.parametrize("descriptor", [pb.PodSandboxConfig.DESCRIPTOR, pb.ContainerConfig.DESCRIPTOR])
def test_schema_mirrors_the_descriptors(descriptor: Any) -> None:
    schema = config_schema(descriptor)
    pending, seen = [descriptor], set()
    while pending:
        message = pending.pop()
        if message.name in seen:
            continue
        seen.add(message.name)
        definition = schema["$defs"][message.name]
        assert definition["additionalProperties"] is False
        assert list(definition["properties"]) == [field.name for field in message.fields]  # proto names
        pending += [field.message_type for field in message.fields
                    if field.message_type is not None and not field.message_type.GetOptions().map_entry]
    assert seen == set(schema["$defs"])
    linux = schema["$defs"]["LinuxPodSandboxConfig" if descriptor.name == "PodSandboxConfig"
                            else "LinuxContainerConfig"]["properties"]
    assert linux["resources"] == {"$ref": "#/$defs/LinuxContainerResources"}


def test_field_kinds() -> None:
    definitions = config_schema(pb.ContainerConfig.DESCRIPTOR)["$defs"]
    config = definitions["ContainerConfig"]["properties"]
    assert config["command"] == {"type": "array", "items": {"type": "string"}}
    assert config["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert config["tty"] == {"type": "boolean"}
    assert definitions["KeyValue"]["properties"]["value"] == {"type": "string", "contentEncoding": "base64"}
    assert definitions["ContainerMetadata"]["properties"]["attempt"] == {"type": "integer", "minimum": 0}
    assert definitions["LinuxContainerResources"]["properties"]["cpu_shares"] == {"type": "integer"}
    propagation = definitions["Mount"]["properties"]["propagation"]
    assert propagation["type"] == ["string", "integer"]
    assert {"PROPAGATION_PRIVATE", 0, "PROPAGATION_BIDIRECTIONAL", 2} <= set(propagation["enum"])


@pytest.mark.parametrize("config", POD_CONFIGS)
def test_pod_configs_of_the_tests_validate(pod_schema: dict[str, Any], config: dict[str, Any]) -> None:
    assert validation_errors(pod_schema, config) == []
    ParseDict(config, pb.PodSandboxConfig())  # and crictl's loader takes them


@pytest.mark.parametrize("config", CONTAINER_CONFIGS)
def test_container_configs_of_the_tests_validate(container_schema: dict[str, Any], config: dict[str, Any]) -> None:
    assert validation_errors(container_schema, config) == []
    ParseDict(config, pb.ContainerConfig())


@pytest.mark.parametrize(("config", "problem"), [
    ({"metadata": {"name": "x", "namespace": "y"}, "log_dir": "/tmp"}, "log_dir"),
    ({"metadata": {"name": "x", "attempt": "first"}}, "first"),
    ({"metadata": {"name": "x", "attempt": -1}}, "-1"),
    ({"port_mappings": {"container_port": 80}}, "container_port"),
    ({"linux": {"security_context": {"namespace_options": {"network": "HOST"}}}}, "HOST"),
    ({"labels": {"a": 1}}, "1"),
])
def test_mistakes_are_caught(pod_schema: dict[str, Any], config: dict[str, Any], problem: str) -> None:
    errors = validation_errors(pod_schema, config)
    assert errors and problem in " ".join(errors)
