"""Reading a synthesized template: find resources by what they are, and render intrinsic
functions as plain strings so policies compare as readable (action, resource) pairs."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.stack import SensorhookStack


@dataclass
class Synth:
    stack: SensorhookStack
    template: Template
    resources: dict[str, Any]  # logical id -> resource, from the written template file
    outputs: dict[str, Any]
    checks: AwsSolutionsChecks
    outdir: Path


def render(value: Any) -> str:
    """`{"Fn::GetAtt": ["Queue", "Arn"]}` -> "Queue.Arn", `{"Ref": "X"}` -> "X", joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return str(argument)
        if function == "Fn::GetAtt":
            return f"{argument[0]}.{argument[1]}"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(render(part) for part in parts)
    raise ValueError(f"cannot render {value!r}")


def logical_ids(resources: dict[str, Any], resource_type: str, **properties: Any) -> list[str]:
    return [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == resource_type
        and all(resource.get("Properties", {}).get(k) == v for k, v in properties.items())
    ]


def one_logical_id(resources: dict[str, Any], resource_type: str, **properties: Any) -> str:
    found = logical_ids(resources, resource_type, **properties)
    assert len(found) == 1, f"expected one {resource_type} with {properties}, found {found}"
    return found[0]


def function_id(resources: dict[str, Any], handler: str) -> str:
    return one_logical_id(resources, "AWS::Lambda::Function", Handler=handler)


def role_grants(resources: dict[str, Any], role_logical_id: str) -> set[tuple[str, str]]:
    """Every (action, resource) an IAM::Policy attached to the role allows."""
    grants: set[tuple[str, str]] = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        properties = resource["Properties"]
        if {"Ref": role_logical_id} not in properties["Roles"]:
            continue
        for statement in properties["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            targets = statement["Resource"]
            for action in actions if isinstance(actions, list) else [actions]:
                for target in targets if isinstance(targets, list) else [targets]:
                    grants.add((action, render(target)))
    return grants
