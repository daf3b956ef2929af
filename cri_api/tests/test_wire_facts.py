"""Our proto, as compiled into the committed stubs, carries exactly the CRI v1 wire facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from cri_api import pb

FACTS = json.loads((Path(__file__).parent / "data" / "cri-v1-wire-facts.json").read_text())
FILE = pb.DESCRIPTOR


def all_messages() -> dict[str, Descriptor]:
    """Every message by dotted name relative to the package (``Outer.Inner`` for nested ones)."""
    found: dict[str, Descriptor] = {}

    def walk(message: Descriptor, prefix: str) -> None:
        name = prefix + message.name
        found[name] = message
        for nested in message.nested_types:
            walk(nested, name + ".")

    for message in FILE.message_types_by_name.values():
        walk(message, "")
    return found


def all_enums() -> dict[str, EnumDescriptor]:
    enums = {name: enum for name, enum in FILE.enum_types_by_name.items()}
    for name, message in all_messages().items():
        for enum in message.enum_types:
            enums[f"{name}.{enum.name}"] = enum
    return enums


def field_fact(field: FieldDescriptor) -> list[Any]:
    """A field as the facts file writes it: [number, type, label, type name, oneof]."""
    type_object = field.message_type or field.enum_type
    type_name = type_object.name if type_object is not None else ""
    oneof = field.containing_oneof.name if field.containing_oneof is not None else ""
    label = 3 if field.is_repeated else 1
    return [field.number, field.type, label, type_name, oneof]


def test_package() -> None:
    assert FILE.package == FACTS["package"] == "runtime.v1"


def test_inventory_counts() -> None:
    assert sum(len(service.methods) for service in FILE.services_by_name.values()) == 43
    assert len(FILE.message_types_by_name) == 175
    assert len(all_enums()) == 11


@pytest.mark.parametrize("service", sorted(FACTS["services"]))
def test_service_methods(service: str) -> None:
    descriptor = FILE.services_by_name[service]
    actual = {
        method.name: [method.input_type.name, method.output_type.name,
                      method.client_streaming, method.server_streaming]
        for method in descriptor.methods
    }
    assert actual == FACTS["services"][service]
    assert descriptor.full_name == f"runtime.v1.{service}"


def test_message_names() -> None:
    assert sorted(all_messages()) == sorted(FACTS["messages"])


@pytest.mark.parametrize("message", sorted(FACTS["messages"]))
def test_message_fields(message: str) -> None:
    descriptor = all_messages()[message]
    actual = {field.name: field_fact(field) for field in descriptor.fields}
    assert actual == FACTS["messages"][message]


def test_map_fields_are_maps() -> None:
    for name, descriptor in all_messages().items():
        if name.endswith("Entry"):
            assert descriptor.GetOptions().map_entry, f"{name} must be a map entry"


@pytest.mark.parametrize("enum", sorted(FACTS["enums"]))
def test_enum_values(enum: str) -> None:
    descriptor = all_enums()[enum]
    assert {value.name: value.number for value in descriptor.values} == FACTS["enums"][enum]
