"""Adapt a synthesized template to what moto's CloudFormation can create.

Two things stop moto from deploying a CDK template as is:
- resource types it has no model for (API Gateway v2, ``Custom::*`` backed by Node handlers):
  an output or property that refers to one makes ``CreateStack`` fail. The runtime emulates
  these itself from the original template, so they are removed from the deployed copy and every
  reference to them is replaced by the value the runtime provides (e.g. the API's local URL);
- Lambda layers from public ARNs (Powertools, AWS SDK for pandas), which moto cannot resolve.
  The libraries they carry are already importable in the local virtualenv, so layers are dropped.
"""

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.parsing import NULL_MODELS, get_model_map

# Value to use for a reference to an emulated resource: (logical id, attribute or None for Ref).
Substitute = Callable[[str, str | None], str]

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}")


def unsupported_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> type of the resources moto's CloudFormation would not create."""
    supported = get_model_map()
    return {
        logical_id: resource["Type"]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] not in supported and resource["Type"] not in NULL_MODELS
    }


@dataclass(frozen=True)
class LocalizedTemplate:
    body: dict[str, Any]
    removed: dict[str, str]  # logical id -> type, emulated by the runtime or not at all
    dropped_layers: dict[str, list[Any]]  # function logical id -> its Layers property


def localize(template: Mapping[str, Any], substitute: Substitute) -> LocalizedTemplate:
    body = copy.deepcopy(dict(template))
    removed = unsupported_resources(body)
    resources: dict[str, Any] = body["Resources"]
    for logical_id in removed:
        del resources[logical_id]
    dropped_layers: dict[str, list[Any]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn")
        if isinstance(depends_on, list):
            resource["DependsOn"] = [d for d in depends_on if d not in removed]
        elif isinstance(depends_on, str) and depends_on in removed:
            del resource["DependsOn"]
        if resource["Type"] == "AWS::Lambda::Function" and "Layers" in resource.get(
            "Properties", {}
        ):
            dropped_layers[logical_id] = resource["Properties"].pop("Layers")

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and value in removed:
                return substitute(value, None)
            if key == "Fn::GetAtt":
                logical_id, attribute = (
                    value.split(".", 1) if isinstance(value, str) else (value[0], value[1])
                )
                if logical_id in removed:
                    return substitute(logical_id, attribute)
            if key == "Fn::Sub":
                return {key: rewrite_sub(value)}
        return {key: rewrite(value) for key, value in node.items()}

    def rewrite_sub(value: Any) -> Any:
        def replace(match: re.Match[str]) -> str:
            if match.group(1) not in removed:
                return match.group(0)
            return substitute(match.group(1), match.group(2))

        if isinstance(value, str):
            return _SUB_REFERENCE.sub(replace, value)
        return [_SUB_REFERENCE.sub(replace, value[0]), rewrite(value[1])]

    for section in ("Resources", "Outputs"):
        if section in body:
            body[section] = rewrite(body[section])
    return LocalizedTemplate(body=body, removed=removed, dropped_layers=dropped_layers)
