"""JSON Schemas of the config files crictl reads, built from the CRI protobuf descriptors.

Also the ``jsonschema`` (alias ``js``) subcommand that ``create``, ``run``, ``runp`` and ``pull`` carry,
and the command class that lets those commands keep their positional arguments beside it.
"""

from __future__ import annotations

from typing import Any

import click
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from cri_api import pb
from crictl.options import show_help_and_exit

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SUBCOMMAND_NAMES = ("jsonschema", "js")
_SCHEMA_ARGS_KEY = "crictl.jsonschema.args"
_SCALAR_TYPES = {
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
    FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_DOUBLE: "number",
}
_UNSIGNED_TYPES = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                   FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64}


def config_schema(descriptor: Descriptor) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a config file holding the message ``descriptor`` describes.

    Properties carry the proto field names (``log_directory``), as upstream's schema and config
    files do; every message is one ``$defs`` entry and unknown keys are rejected.
    """
    definitions: dict[str, Any] = {}
    reference = _message_reference(descriptor, definitions)
    return {"$schema": SCHEMA_DIALECT, **reference, "$defs": definitions}


def _message_reference(descriptor: Descriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    name = descriptor.full_name.removeprefix(descriptor.file.package + ".")
    if name not in definitions:
        definitions[name] = {}  # claimed first, so a message that contains itself ends the recursion
        properties = {field.name: _field_schema(field, definitions) for field in descriptor.fields}
        definitions[name] = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"$ref": f"#/$defs/{name}"}


def _field_schema(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _value_schema(value, definitions)}
    single = _value_schema(field, definitions)
    return {"type": "array", "items": single} if field.is_repeated else single


def _value_schema(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None:
        return _message_reference(field.message_type, definitions)
    if field.enum_type is not None:
        # The config loader takes an enum value's name or its number.
        values = field.enum_type.values
        return {"type": ["string", "integer"], "enum": [v.name for v in values] + [v.number for v in values]}
    if field.type in _SCALAR_TYPES:
        schema: dict[str, Any] = {"type": _SCALAR_TYPES[field.type]}
        if field.type == FieldDescriptor.TYPE_BYTES:
            schema["contentEncoding"] = "base64"
        return schema
    return {"type": "integer", "minimum": 0} if field.type in _UNSIGNED_TYPES else {"type": "integer"}


def echo_schema(descriptor: Descriptor) -> None:
    """Print the schema as two-space indented JSON."""
    import json

    click.echo(json.dumps(config_schema(descriptor), indent=2))


POD_SCHEMA_HELP = ("Print the pod JSON schema, which will be generated from the PodSandboxConfig "
                   "of the CRI API compiled with this version of crictl")
CONTAINER_SCHEMA_HELP = ("Print the container JSON schema, which will be generated from the ContainerConfig "
                         "of the CRI API compiled with this version of crictl")


def pod_schema_command() -> click.Command:
    """``jsonschema`` printing the schema of a pod config, as ``runp`` and ``pull`` have it."""

    @click.command("jsonschema", short_help="Display the JSON schema for the pod-config.json")
    def pod_schema() -> None:
        """Display the JSON schema for the pod-config.json.

        The schema will be generated from the PodSandboxConfig of the CRI API compiled with this version of crictl.
        """
        echo_schema(pb.PodSandboxConfig.DESCRIPTOR)

    return pod_schema


def pod_or_container_schema_command() -> click.Command:
    """``jsonschema`` printing the pod and/or container config schema, as ``create`` and ``run`` have it."""

    @click.command("jsonschema", short_help="Display the JSON schema for the pod or container config")
    @click.option("-p", "--pod", is_flag=True, help=POD_SCHEMA_HELP)
    @click.option("-c", "--container", is_flag=True, help=CONTAINER_SCHEMA_HELP)
    @click.pass_context
    def pod_or_container_schema(ctx: click.Context, pod: bool, container: bool) -> None:
        """Display the JSON schema for the pod or container config (the pod's first when both are asked for)."""
        if not (pod or container):
            show_help_and_exit(ctx)
        if pod:
            echo_schema(pb.PodSandboxConfig.DESCRIPTOR)
        if container:
            echo_schema(pb.ContainerConfig.DESCRIPTOR)

    return pod_or_container_schema


class WithJsonSchema(click.Command):
    """A command that runs its ``jsonschema`` (``js``) subcommand when that is its first argument.

    Otherwise its own options and positional arguments are parsed as usual.
    """

    def __init__(self, *args: Any, schema: click.Command, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in SUBCOMMAND_NAMES:
            ctx.meta[_SCHEMA_ARGS_KEY] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        schema_args = ctx.meta.pop(_SCHEMA_ARGS_KEY, None)
        if schema_args is None:
            return super().invoke(ctx)
        # A sibling of this command's context, named "<command> jsonschema": a child's usage line would
        # repeat this command's positional arguments.
        name = f"{ctx.info_name} {SUBCOMMAND_NAMES[0]}"
        with self.schema.make_context(name, schema_args, parent=ctx.parent) as schema_ctx:
            return self.schema.invoke(schema_ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        with formatter.section("Commands"):
            formatter.write_dl([(", ".join(SUBCOMMAND_NAMES), self.schema.get_short_help_str())])
