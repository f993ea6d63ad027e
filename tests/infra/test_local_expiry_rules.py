"""The local runtime's expiry (local/runtime/expiry.py) reads every retention rule the stack
sets from the synthesized template: none is restated, none is missed."""

from infra.config import StageConfig
from infra.constants import (
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INBOX_PREFIX,
    RAW_PREFIX,
    READINGS_TTL_ATTRIBUTE,
    resource_name,
)
from local.runtime.expiry import ExpiryRules, LifecycleRule, TtlRule
from tests.infra.cfn import Synth


def test_the_dev_stages_ttls_lifecycle_rules_and_queue_retention_are_found(dev: Synth) -> None:
    config: StageConfig = dev.stack.config  # the dev stage's values, as cdk.json sets them
    identity = {logical_id: logical_id for logical_id in dev.resources}

    rules = ExpiryRules.from_template({"Resources": dev.resources}, identity)

    tables = {
        dev.resources[rule.table]["Properties"]["TableName"]: rule.attribute for rule in rules.ttl
    }
    assert tables == {
        resource_name("dev", "readings"): READINGS_TTL_ATTRIBUTE,
        resource_name("dev", "idempotency"): IDEMPOTENCY_TTL_ATTRIBUTE,
    }
    by_id = {(rule.rule_id, rule.prefix): rule for rule in rules.lifecycle}
    assert {key: (rule.expiration_days, rule.noncurrent_days) for key, rule in by_id.items()} == {
        ("raw-archive", RAW_PREFIX): (config.raw_archive_expiration_days, None),
        ("inbox-expire", INBOX_PREFIX): (config.inbox_expiration_days, None),
        ("noncurrent-versions-expire", ""): (None, config.noncurrent_version_expiration_days),
        ("expire-access-logs", ""): (config.access_log_expiration_days, None),
    }
    assert all(isinstance(rule, TtlRule) for rule in rules.ttl)
    assert all(isinstance(rule, LifecycleRule) for rule in rules.lifecycle)
    # the queues no function reads (dead letters, the lake writer's failures), 14 days each
    names = {
        dev.resources[queue.queue]["Properties"]["QueueName"]: queue.retention_s
        for queue in rules.queues
    }
    assert names == {
        resource_name("dev", name): 14 * 86400.0
        for name in ("ingest-dlq", "forward-dlq", "lake-writer-failures")
    }
