"""The compactor: its daily schedule, one run at a time, and a role that can only rewrite the
lake's compacted prefixes."""

from infra import constants
from tests.infra.cfn import Synth, function_id, render, role_grants
from tests.infra.test_infra_stack import _baseline, _config, _properties, _role_of


def test_the_compactor_runs_daily_one_at_a_time_with_its_configuration(dev: Synth) -> None:
    compactor = function_id(dev.resources, constants.LAKE_COMPACTOR_HANDLER)
    function = _properties(dev, compactor)
    rule = dev.resources[constants.LAKE_COMPACTION_SCHEDULE_RULE_ID]["Properties"]
    config = _config(dev)

    assert function["ReservedConcurrentExecutions"] == 1
    assert rule["ScheduleExpression"] == f"cron(15 {config.lake_compaction_hour_utc} * * ? *)"
    assert render(rule["Targets"][0]["Arn"]) == f"{compactor}.Arn"
    variables = function["Environment"]["Variables"]
    assert variables["COMPACTION_DAYS_BACK"] == str(config.lake_compaction_days_back)
    assert variables["COMPACTION_MAX_ROWS"] == str(config.lake_compaction_max_rows)


def test_the_compactor_may_only_rewrite_readings_and_gateway_status(dev: Synth) -> None:
    compactor = function_id(dev.resources, constants.LAKE_COMPACTOR_HANDLER)

    grants = role_grants(dev.resources, _role_of(dev, compactor)) - _baseline(dev, compactor)

    objects = {resource for action, resource in grants if action != "s3:ListBucket"}
    assert {r.rsplit("/", 1)[-1] for r in objects} == {"*"}
    assert {r.rsplit("/", 2)[-2] for r in objects} == {"readings", "gateway_status"}
    assert {action for action, _ in grants} == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    }
