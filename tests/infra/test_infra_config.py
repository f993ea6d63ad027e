"""Stage configuration: cdk.json's stages are valid, and a bad value stops the synth with a
message that names it."""

from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app, cdk_json_context, context_from_args
from infra.config import ConfigError, StageConfig, load_stage_config
from infra.constructs.function import settings_environment
from sensorhook.core.receiver_settings import ReceiverSettings
from sensorhook.core.settings import LakeWriterSettings


def _context(**dev_values: Any) -> dict[str, Any]:
    return {"stages": {"dev": dev_values}}


def test_every_stage_in_cdk_json_is_valid() -> None:
    context = cdk_json_context()["sensorhook"]

    configs = {stage: load_stage_config(context, stage) for stage in context["stages"]}

    assert set(configs) == {"dev", "prod"}
    assert configs["dev"].retain_data is False
    assert configs["prod"].retain_data is True


def test_an_empty_stage_takes_the_documented_defaults() -> None:
    config = load_stage_config(_context(), "dev")

    assert config == StageConfig()
    assert config.max_body_bytes == ReceiverSettings.model_fields["max_body_bytes"].default
    assert config.signature_max_skew_seconds == 300  # Everactive's recommended skew window
    assert config.retain_data is True  # safe unless a stage says otherwise


def test_defaults_agree_with_the_functions_own_defaults() -> None:
    receiver_defaults = {
        name: field.default
        for name, field in ReceiverSettings.model_fields.items()
        if not field.is_required()
    }
    config = StageConfig()

    assert {name: getattr(config, name) for name in receiver_defaults} == receiver_defaults


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_body_bytes": "big"}, "max_body_bytes"),
        ({"inline_body_max_bytes": 300_000}, "inline_body_max_bytes"),
        ({"receiver_timeout_seconds": 10}, "receiver_timeout_seconds"),
        ({"log_retention": "FOREVER"}, "log_retention"),
        ({"removal_policy": "snapshot"}, "removal_policy"),
        ({"inbox_expiration_days": 7}, "inbox_expiration_days"),
        ({"raw_archive_transition_ia_days": 10}, "raw_archive_transition_ia_days"),
        ({"alarm_email": "ops"}, "alarm_email"),
        ({"aws_sdk_pandas_layer_arn": "pandas"}, "aws_sdk_pandas_layer_arn"),
        ({"max_bodybytes": 5}, "max_bodybytes"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"stage 'dev': .*{named}"):
        load_stage_config(_context(**values), "dev")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"max_body_bytes": 1000, "inline_body_max_bytes": 2000},
            "inline_body_max_bytes must not exceed max_body_bytes",
        ),
        (
            {"processor_batch_size": 100, "processor_batching_window_seconds": 0},
            "processor_batching_window_seconds",
        ),
        (
            {"raw_archive_transition_ia_days": 60, "raw_archive_expiration_days": 45},
            "raw_archive_expiration_days must be later",
        ),
    ],
)
def test_inconsistent_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_stage_config(_context(**values), "dev")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"receiver_reserved_concurrency": 900}, r"does not fit .* at most 899"),
        (
            {"lambda_account_concurrency": 400, "receiver_reserved_concurrency": 300},
            r"does not fit an account concurrency of 400",
        ),
        (
            {"api_throttle_rate_limit": 1000},
            r"api_throttle_rate_limit 1000/s is more than receiver_reserved_concurrency 200",
        ),
        (
            {
                "lambda_account_concurrency": 300,
                "receiver_reserved_concurrency": 150,
                "api_throttle_rate_limit": 300,
                "processor_max_concurrency": 200,
            },
            r"processor_max_concurrency 200 is more than the 149 unreserved",
        ),
        ({"processor_max_concurrency": 1}, "processor_max_concurrency"),
        ({"processor_max_concurrency": 1001}, "processor_max_concurrency"),
    ],
)
def test_concurrency_that_cannot_work_in_the_account_is_refused(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_stage_config(_context(**values), "dev")


def test_the_default_limits_carry_ten_thousand_sensors_at_a_reading_a_minute() -> None:
    # Given 10,000 sensors, each reading once a minute, every reading its own webhook (Data
    # Services sends one per reading; Efento batches, so fewer), and their gateways' status
    config = StageConfig()
    readings_per_s = 10_000 / 60
    gateway_status_per_s = (10_000 / 25) / 300  # a gateway per 25 sensors, every 5 minutes
    mean_per_s = readings_per_s + gateway_status_per_s
    # Then the API admits about three times the mean (arrivals cluster; a provider catching up
    # after an outage sends faster) and two seconds of it at once
    assert config.api_throttle_rate_limit >= 2.9 * mean_per_s
    assert config.api_throttle_burst_limit >= 2 * config.api_throttle_rate_limit
    # and the receiver's reservation serves that rate at the sizing's time per request
    assert config.receiver_reserved_concurrency >= config.api_throttle_rate_limit * 0.4
    # and the processor keeps up with it (a batch of 10 takes ~1 s: 10 deliveries/s each)
    assert config.processor_max_concurrency * 10 >= config.api_throttle_rate_limit
    # and all of it fits the default account concurrency of 1,000 with room to spare
    assert config.receiver_reserved_concurrency + 1 + config.processor_max_concurrency <= 900


def test_an_unknown_stage_lists_the_configured_ones() -> None:
    with pytest.raises(ConfigError, match=r"'staging' is not configured .*configured: dev"):
        load_stage_config(_context(), "staging")


@pytest.mark.parametrize("stage", ["Prod", "dev_1", "", "a" * 17])
def test_a_stage_name_must_fit_resource_names(stage: str) -> None:
    with pytest.raises(ConfigError, match="lowercase"):
        load_stage_config(_context(), stage)


@pytest.mark.parametrize("context", [None, {}, {"stages": []}])
def test_a_missing_context_block_points_at_cdk_json(context: Any) -> None:
    with pytest.raises(ConfigError, match=r"cdk\.json"):
        load_stage_config(context, "dev")


def test_synth_stops_on_a_bad_stage_configuration(tmp_path: Any) -> None:
    context = cdk_json_context()
    context["sensorhook"]["stages"]["dev"]["reading_ttl_days"] = -1

    with pytest.raises(ConfigError, match="reading_ttl_days"):
        build_app(str(tmp_path), context)


def test_a_function_environment_must_set_every_settings_field() -> None:
    with pytest.raises(ValueError, match=r"missing: bucket_name; not in the model: bucket"):
        settings_environment(LakeWriterSettings, {"bucket": "b"})


def test_a_function_environment_is_the_upper_cased_field_names() -> None:
    assert settings_environment(LakeWriterSettings, {"bucket_name": "b"}) == {"BUCKET_NAME": "b"}


def test_app_py_takes_context_overrides_like_the_cdk_cli() -> None:
    context = context_from_args(["-c", "stage=prod", "--context", "note=a=b"])

    assert context["stage"] == "prod"
    assert context["note"] == "a=b"
    assert context["sensorhook"] == cdk_json_context()["sensorhook"]


def test_app_py_refuses_a_context_argument_without_a_value() -> None:
    with pytest.raises(SystemExit):
        context_from_args(["-c", "stage"])


def test_docs_configuration_lists_every_key() -> None:
    documented = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()

    undocumented = [key for key in StageConfig.model_fields if f"| `{key}` |" not in documented]

    assert undocumented == []
