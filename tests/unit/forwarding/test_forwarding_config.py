"""The forwarding keys of cdk.json, validated at synth (infra.config) with the runtime model."""

import pytest

from infra.config import ConfigError, load_stage_config
from sensorhook.core.forwarding import ForwardingEndpoint, ForwardingPolicy


def _stage(**values: object) -> dict[str, object]:
    return {"stages": {"dev": values}}


def _endpoint(**overrides: object) -> dict[str, object]:
    return {
        "name": "partner",
        "url": "https://partner.example.com/hooks",
        "detail_types": ["readings.*"],
        **overrides,
    }


def test_defaults_are_the_seed_values():
    policy = ForwardingPolicy()
    assert policy.no_response_limit == 5
    assert policy.temporary_disable_seconds == 6 * 3600
    assert policy.disable_after_seconds == 30 * 3600
    endpoint = ForwardingEndpoint.model_validate(_endpoint())
    assert endpoint.timeout_seconds == 10
    assert endpoint.signature_scheme == "standard-webhooks"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://partner.example.com/hooks"}, "https"),
        ({"url": "ftp://partner.example.com/"}, "https"),
        ({"url": "https://" + "a" * 500 + ".com"}, "500"),
        ({"headers": {f"X-H{i}": "v" for i in range(6)}}, "at most 5"),
        ({"headers": {"X-Long": "v" * 513}}, "512"),
        ({"headers": {"X-" + "n" * 511: "v"}}, "512"),
        ({"headers": {"webhook-signature": "forged"}}, "set by sensorhook"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, "one line"),
        ({"detail_types": []}, "detail_types"),
        ({"detail_types": ["readings*x"]}, "prefix"),
        ({"key_id": "k"}, "key_id"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_endpoint_stops_synth_naming_the_key(overrides: dict[str, object], message: str):
    with pytest.raises(ConfigError) as raised:
        load_stage_config(_stage(forwarding_endpoints=[_endpoint(**overrides)]), "dev")
    assert "forwarding_endpoints" in str(raised.value)
    assert message in str(raised.value)


def test_five_headers_of_512_characters_are_accepted():
    headers = {f"X-{i}" + "n" * 509: "v" * 512 for i in range(5)}
    config = load_stage_config(_stage(forwarding_endpoints=[_endpoint(headers=headers)]), "dev")
    assert config.forwarding_endpoints[0].headers == headers


def test_local_http_only_on_a_local_stage():
    local = _endpoint(url="http://127.0.0.1:9000/hook")
    with pytest.raises(ConfigError, match="only for a local stage"):
        load_stage_config(_stage(forwarding_endpoints=[local]), "dev")
    config = load_stage_config(
        _stage(forwarding_endpoints=[local], forwarding_local_endpoints=True), "dev"
    )
    assert config.forwarding_endpoints[0].url.startswith("http://127.0.0.1")
    with pytest.raises(ConfigError, match="https"):
        load_stage_config(
            _stage(
                forwarding_endpoints=[_endpoint(url="http://10.0.0.1/hook")],
                forwarding_local_endpoints=True,
            ),
            "dev",
        )


def test_endpoint_names_are_unique():
    with pytest.raises(ConfigError, match="unique"):
        load_stage_config(_stage(forwarding_endpoints=[_endpoint(), _endpoint()]), "dev")


def test_policy_thresholds_are_configurable_and_checked():
    config = load_stage_config(
        _stage(forwarding_policy={"no_response_limit": 3, "temporary_disable_seconds": 60}), "dev"
    )
    assert config.forwarding_policy.no_response_limit == 3
    with pytest.raises(ConfigError, match="forwarding_policy"):
        load_stage_config(_stage(forwarding_policy={"retry_max_seconds": 13 * 3600}), "dev")


def test_detail_types_exact_or_prefix():
    endpoint = ForwardingEndpoint.model_validate(
        _endpoint(detail_types=["readings.*", "steam_trap.state_changed"])
    )
    assert endpoint.receives("readings.received")
    assert endpoint.receives("steam_trap.state_changed")
    assert not endpoint.receives("steam_trap.state_changed.v2")
    assert not endpoint.receives("gateway.offline")
