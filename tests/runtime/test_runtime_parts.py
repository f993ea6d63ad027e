"""The local runtime's pure parts: template rewriting, routing, batch responses, schedules."""

import json
import os
import re
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from local.runtime.assembly import source_hash
from local.runtime.http_front import http_apis
from local.runtime.lambda_runner import InProcessLambdas, Invocation, ThreadLocalEnviron
from local.runtime.localize import localize
from local.runtime.pollers import RecordFilter, failed_item_ids
from local.runtime.schedules import schedule_period_seconds

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP"}},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Layers": ["arn:aws:lambda:us-east-1:017000801446:layer:Powertools:18"],
                "Environment": {"Variables": {"API": {"Fn::Sub": "https://${Api}.example/${Fn}"}}},
            },
            "DependsOn": ["Api"],
        },
        "Exact": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": "POST /hooks/exact",
                "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
            },
        },
        "Templated": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": "POST /hooks/{name}",
                "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
            },
        },
        "Default": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": "$default",
                "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
            },
        },
        "Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": ["Fn", "Arn"]},
                "PayloadFormatVersion": "2.0",
            },
        },
    },
    "Outputs": {
        "Url": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
        "StageUrl": {
            "Value": {
                "Fn::Join": [
                    "",
                    [
                        "https://",
                        {"Ref": "Api"},
                        ".execute-api.",
                        {"Ref": "AWS::Region"},
                        ".",
                        {"Ref": "AWS::URLSuffix"},
                        "/",
                    ],
                ]
            }
        },
    },
}


def test_localize_replaces_references_to_emulated_resources_and_drops_layers() -> None:
    # Given a template whose function and output refer to an HTTP API moto cannot create
    # When localizing it with the runtime's substitute values
    localized = localize(TEMPLATE, lambda logical_id, attribute: f"<{logical_id}.{attribute}>")
    body = localized.body
    # Then the API resources are gone and every reference became the substitute
    assert set(body["Resources"]) == {"Fn"}
    function = body["Resources"]["Fn"]
    assert function["Properties"]["Environment"]["Variables"]["API"] == {
        "Fn::Sub": "https://<Api.None>.example/${Fn}"
    }
    assert function["DependsOn"] == []
    assert body["Outputs"]["Url"]["Value"] == "<Api.ApiEndpoint>"
    assert body["Outputs"]["StageUrl"]["Value"] == "<Api.ApiEndpoint>/"  # CDK's api.url
    # And the public layer is dropped (the venv has its libraries), the original left intact
    assert "Layers" not in function["Properties"]
    original_function = TEMPLATE["Resources"]["Fn"]["Properties"]
    assert localized.dropped_layers == {"Fn": original_function["Layers"]}
    assert "Layers" in original_function


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("POST", "/hooks/exact", "POST /hooks/exact", {}),
        ("POST", "/hooks/other", "POST /hooks/{name}", {"name": "other"}),
        ("GET", "/hooks/exact", "$default", {}),
        ("POST", "/hooks/a/b", "$default", {}),
    ],
)
def test_routes_match_like_api_gateway_most_specific_first(
    method: str, path: str, route_key: str, parameters: dict[str, str]
) -> None:
    [api] = http_apis(TEMPLATE)
    matched = next(
        (route, found) for route in api.routes if (found := route.match(method, path)) is not None
    )
    assert (matched[0].route_key, matched[1]) == (route_key, parameters)
    assert matched[0].function_logical_id == "Fn"


@pytest.mark.parametrize(
    ("invocation", "expected"),
    [
        (Invocation('{"batchItemFailures": []}', False, ""), set()),
        (Invocation("null", False, ""), set()),
        (Invocation('{"batchItemFailures": [{"itemIdentifier": "m2"}]}', False, ""), {"m2"}),
        (Invocation('{"batchItemFailures": [{"itemIdentifier": ""}]}', False, ""), None),
        (Invocation('{"errorMessage": "boom"}', True, ""), None),
    ],
)
def test_batch_responses_are_read_as_lambda_reads_them(
    invocation: Invocation, expected: set[str] | None
) -> None:
    assert failed_item_ids(invocation, report_item_failures=True) == expected


def test_failures_are_ignored_without_report_batch_item_failures() -> None:
    reported = Invocation('{"batchItemFailures": [{"itemIdentifier": "m2"}]}', False, "")
    assert failed_item_ids(reported, report_item_failures=False) == set()


def test_filter_criteria_match_stream_records_and_json_sqs_bodies() -> None:
    inserts = RecordFilter({"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]})
    assert inserts.accepts({"eventName": "INSERT"})
    assert not inserts.accepts({"eventName": "MODIFY"})
    by_body = RecordFilter({"Filters": [{"Pattern": json.dumps({"body": {"kind": ["a"]}})}]})
    assert by_body.accepts({"body": '{"kind": "a"}'})
    assert not by_body.accepts({"body": "not json"})
    assert RecordFilter(None).accepts({"anything": 1})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("cron(0/15 * * * ? *)", 900),
        ("cron(0 * * * ? *)", 3600),
        ("cron(0 2 * * ? *)", 86400),
        ("cron(0 2 ? * MON *)", 7 * 86400),
    ],
)
def test_schedule_periods(expression: str, seconds: int) -> None:
    assert schedule_period_seconds(expression) == seconds


def test_thread_local_environ_shows_a_function_its_variables_only_on_its_thread() -> None:
    # Given the overlay around the process environment
    environ = ThreadLocalEnviron(os.environ)
    seen_elsewhere: list[str | None] = []
    # When one thread applies a function's variables
    with environ.applied({"PROBE_ONLY_HERE": "yes"}):
        other = threading.Thread(
            target=lambda: seen_elsewhere.append(environ.get("PROBE_ONLY_HERE"))
        )
        other.start()
        other.join()
        # Then that thread sees them, alongside the process environment
        assert environ["PROBE_ONLY_HERE"] == "yes"
        assert environ.get("PATH") == os.environ["PATH"]
        assert dict(environ)["PROBE_ONLY_HERE"] == "yes"
    # And no other thread, nor this one afterwards, does
    assert seen_elsewhere == [None]
    assert "PROBE_ONLY_HERE" not in environ


def test_source_hash_changes_with_function_code_only(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("app")
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "handler.py").write_text("v1")
    first = source_hash(tmp_path)
    (tmp_path / "README.md").write_text("not an input")
    assert source_hash(tmp_path) == first
    (tmp_path / "functions" / "handler.py").write_text("v2")
    assert source_hash(tmp_path) != first


def test_a_stack_leaves_the_host_processs_modules_as_it_found_them(tmp_path: Path) -> None:
    # Given a host process that imported a package the functions' code also holds
    asset = tmp_path / "asset"
    (asset / "probe_host_pkg").mkdir(parents=True)
    (asset / "probe_host_pkg" / "__init__.py").write_text("")
    host = {name: types.ModuleType(name) for name in ("probe_host_pkg", "probe_host_pkg.reading")}
    sys.modules.update(host)
    lambdas = InProcessLambdas(tmp_path / "cache")
    try:
        # When a stack runs that code: its functions start without the host's modules, and
        # import their own, one of them a module the host never imported
        lambdas.install()
        lambdas.register_code_dir("sha", asset)
        assert "probe_host_pkg" not in sys.modules
        sys.modules["probe_host_pkg"] = types.ModuleType("probe_host_pkg")
        sys.modules["probe_host_pkg.adapter"] = types.ModuleType("probe_host_pkg.adapter")
        lambdas.uninstall()

        # Then the host has its own modules back, and none of the functions'
        assert {name: sys.modules.get(name) for name in host} == host
        assert "probe_host_pkg.adapter" not in sys.modules
    finally:
        for name in [m for m in sys.modules if m.startswith("probe_host_pkg")]:
            del sys.modules[name]


def test_a_failed_invocation_is_told_where_its_error_was_raised() -> None:
    import pydantic

    from local.runtime.lambda_runner import _raised_at

    try:
        pydantic.TypeAdapter(int).validate_python("not a number")
    except pydantic.ValidationError as error:
        where = _raised_at(error)
    # a library's frame by its path inside site-packages, with its line and function
    assert re.fullmatch(r"pydantic/type_adapter\.py:\d+ in validate_python", where), where
    try:
        {}["missing"]
    except KeyError as error:
        where = _raised_at(error)
    assert re.fullmatch(r"tests/runtime/test_runtime_parts\.py:\d+ in test_\w+", where), where
