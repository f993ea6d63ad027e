"""Adapt a synthesized template to what moto's CloudFormation can create.

Two things stop moto from deploying a CDK template as is:
- resource types it has no model for (API Gateway v2, ``Custom::*`` backed by Node handlers):
  an output or property that refers to one makes ``CreateStack`` fail. The runtime emulates
  these itself from the original template, so they are removed from the deployed copy and every
  reference to them is replaced by the value the runtime provides (e.g. the API's local URL);
- Lambda layers from public ARNs (Powertools, AWS SDK for pandas), which moto cannot resolve.
  The libraries they carry are already importable in the local virtualenv, so layers are dropped;
- names moto generates beyond a service's length limit, and an archive's event pattern that
  moto wants as a string (event archives).
"""

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.parsing import NULL_MODELS, get_model_map

# Value to use for a reference to an emulated resource: (logical id, attribute or None for Ref).
Substitute = Callable[[str, str | None], str]

# Name properties moto generates too long ("<stack>-<logical id>-<suffix>") for the service's
# own limit, which real CloudFormation respects: the resource gets a name within it instead.
_NAME_LIMITS = {"AWS::Events::Archive": ("ArchiveName", 48)}

# JSON properties moto's model expects as a string although CloudFormation takes an object.
_STRING_JSON_PROPERTIES = {"AWS::Events::Archive": ("EventPattern",)}

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
        name_property, limit = _NAME_LIMITS.get(resource["Type"], ("", 0))
        if name_property:
            resource.setdefault("Properties", {}).setdefault(name_property, logical_id[:limit])
        properties = resource.get("Properties", {})
        for json_property in _STRING_JSON_PROPERTIES.get(resource["Type"], ()):
            if isinstance(properties.get(json_property), dict):
                properties[json_property] = json.dumps(properties[json_property])
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
            replaced = rewrite_intrinsic(*next(iter(node.items())))
            if replaced is not None:
                return replaced
        return {key: rewrite(value) for key, value in node.items()}

    def rewrite_intrinsic(key: str, value: Any) -> Any:
        """The replacement of one intrinsic function, or None to rewrite inside it."""
        if key == "Ref" and value in removed:
            return substitute(value, None)
        if key == "Fn::GetAtt":
            logical_id, attribute = (
                value.split(".", 1) if isinstance(value, str) else (value[0], value[1])
            )
            return substitute(logical_id, attribute) if logical_id in removed else None
        if key == "Fn::Sub":
            return {key: rewrite_sub(value)}
        if key == "Fn::Join":
            return execute_api_url(value[1])
        return None

    def execute_api_url(parts: Any) -> str | None:
        """CDK's ``api.url``: https:// + Ref(api) + .execute-api. + region + . + suffix + path."""
        if not isinstance(parts, list):
            return None
        for index, part in enumerate(parts):
            if isinstance(part, dict) and part.get("Ref") in removed:
                following = parts[index + 1 : index + 2]
                if (
                    following
                    and isinstance(following[0], str)
                    and following[0].startswith(".execute-api.")
                ):
                    suffix_at = parts.index({"Ref": "AWS::URLSuffix"}, index)
                    path = "".join(p for p in parts[suffix_at + 1 :] if isinstance(p, str))
                    return substitute(part["Ref"], "ApiEndpoint") + path
        return None

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
