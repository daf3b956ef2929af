"""``-o go-template`` of inspect, inspecti, inspectp, info and imagefsinfo against both runtimes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from cri_api import pb
from crictl.tests.conftest import BUSYBOX, Runtime, assert_one_line_error, run_crictl

pytestmark = pytest.mark.root

POD_LABELS = {"suite": "go-template", "app.kubernetes.io/name": "demo"}


@dataclass
class Objects:
    """What the module's templates look at: a pod with two created containers, and their image."""

    pod_id: str
    container_ids: list[str]
    image_id: str


@pytest.fixture(scope="module")
def objects(runtime: Runtime) -> Objects:
    pod_id = runtime.run_pod("gotmpl-pod", labels=POD_LABELS)
    container_ids = [runtime.run_container(pod_id, name=name, start=False) for name in ("gotmpl-a", "gotmpl-b")]
    image = runtime.images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX))).image
    return Objects(pod_id, container_ids, image.id)


def render(runtime: Runtime, command: str, template: str, *args: str) -> str:
    """The standard output of ``crictl COMMAND -o go-template --template TEMPLATE ARGS``."""
    return runtime.crictl(command, "-o", "go-template", "--template", template, *args, check=True).stdout


def test_inspect(runtime: Runtime, objects: Objects) -> None:
    first, second = objects.container_ids
    assert render(runtime, "inspect", "{{.status.id}} {{.status.state}} {{.status.metadata.name}}", first) \
        == f"{first} CONTAINER_CREATED gotmpl-a\n"
    # Several containers make a list, as in the JSON output.
    assert render(runtime, "inspect", "{{range .}}{{.status.metadata.name}},{{end}}", first, second) \
        == "gotmpl-a,gotmpl-b,\n"
    assert render(runtime, "inspect", "{{.status.exitCode}} {{if .status.exitCode}}set{{end}}", first) == "0 set\n"
    # The template sees exactly what -o json prints.
    assert json.loads(render(runtime, "inspect", "{{json .}}", first)) == runtime.crictl_json("inspect", first)


def test_inspecti(runtime: Runtime, objects: Objects) -> None:
    assert render(runtime, "inspecti", "{{.status.id}}", BUSYBOX) == objects.image_id + "\n"
    tags = render(runtime, "inspecti", "{{range .status.repoTags}}{{.}} {{end}}", BUSYBOX).split()
    assert BUSYBOX in tags
    assert json.loads(render(runtime, "inspecti", "{{json .}}", BUSYBOX)) == runtime.crictl_json("inspecti", BUSYBOX)


def test_inspectp(runtime: Runtime, objects: Objects) -> None:
    template = '{{.status.metadata.name}} {{.status.state}} {{index .status.labels "app.kubernetes.io/name"}}'
    assert render(runtime, "inspectp", template, objects.pod_id) == "gotmpl-pod SANDBOX_READY demo\n"
    assert render(runtime, "inspectp", "{{range $k, $v := .status.labels}}{{$k}}={{$v}};{{end}}", objects.pod_id) \
        == "app.kubernetes.io/name=demo;suite=go-template;\n"
    assert json.loads(render(runtime, "inspectp", "{{json .}}", objects.pod_id)) \
        == runtime.crictl_json("inspectp", objects.pod_id)


def test_info(runtime: Runtime) -> None:
    conditions = render(runtime, "info", "{{range .status.conditions}}{{.type}}={{.status}};{{end}}")
    assert "RuntimeReady=true;" in conditions
    assert json.loads(render(runtime, "info", "{{json .}}", "-q")) == runtime.crictl_json("info", "-q")


def test_imagefsinfo(runtime: Runtime) -> None:
    assert render(runtime, "imagefsinfo", "{{range $key, $value := .status}}{{$key}} {{end}}") \
        == "containerFilesystems imageFilesystems \n"
    line = render(runtime, "imagefsinfo", "{{range .status.imageFilesystems}}{{.fsId.mountpoint}} "
                                          "{{.usedBytes.value}}{{end}}")
    mountpoint, used = line.split()
    assert mountpoint.startswith("/") and used.isdigit()


def test_template_errors_are_one_line(runtime: Runtime, objects: Objects) -> None:
    pod_id = objects.pod_id
    missing = runtime.crictl("inspectp", "-o", "go-template", "--template", "{{.nope}}", pod_id)
    assert_one_line_error(missing, 'crictl: execute template: failed to template data: template: '
                                   'tmplExecuteRawJSON:1:2: executing "tmplExecuteRawJSON" at <.nope>: '
                                   'map has no entry for key "nope"')
    assert missing.stdout == ""
    broken = runtime.crictl("info", "-o", "go-template", "--template", "{{.status")
    assert_one_line_error(broken, "execute template: failed to generate go-template: template: "
                                  "tmplExecuteRawJSON:1: unclosed action")
    unsupported = runtime.crictl("imagefsinfo", "-o", "go-template", "--template", '{{printf "%v" .}}')
    assert_one_line_error(unsupported, 'function "printf" is not supported')


def test_template_flag_edge_cases(runtime: Runtime, objects: Objects) -> None:
    # Without --template the template is empty, so upstream prints an empty line.
    assert runtime.crictl("inspectp", "-o", "go-template", objects.pod_id, check=True).stdout == "\n"
    # With json or yaml, --template is ignored.
    assert runtime.crictl_json("inspectp", "--template", "{{.nope}}", objects.pod_id)["status"]["id"] == objects.pod_id


@pytest.mark.parametrize(("command", "formats"), [
    ("inspect", "json|yaml|go-template|table"), ("inspecti", "json|yaml|go-template|table"),
    ("inspectp", "json|yaml|go-template|table"), ("imagefsinfo", "json|yaml|go-template|table"),
    ("info", "json|yaml|go-template"),
])
def test_help_lists_go_template(command: str, formats: str) -> None:
    result = run_crictl(command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"-o, --output [{formats}]" in text
    assert "--template TEXT The template string is only used when output is go-template" in text
