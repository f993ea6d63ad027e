"""cdk-nag (AWS Solutions rules) on the whole app, and the one way to acknowledge a finding.

cdk-nag 3 runs as a CDK policy-validation plugin: a finding that is neither fixed nor
acknowledged fails `cdk synth`. Every acknowledgement carries the reason it is safe, in words a
reviewer can check against the resource.
"""

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def add_nag_checks(app: App) -> AwsSolutionsChecks:
    checks = AwsSolutionsChecks(app, verbose=True)
    Validations.of(app).add_plugins(checks)
    return checks


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept finding `rule_id` (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and below."""
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"the reason for acknowledging {rule_id} must say why it is safe")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledge_prefix_wildcard(
    role: IConstruct, bucket: s3.IBucket, prefix: str, reason: str
) -> None:
    """Accept the IAM5 wildcard finding for `<bucket>/<prefix>*` on `role`'s policy.

    cdk-nag names the finding after the bucket's logical id, which is only known once the
    bucket sits in its stack, so it is resolved here rather than spelled by hand.
    """
    stack = Stack.of(bucket)
    cfn_bucket = bucket.node.default_child
    if not isinstance(cfn_bucket, CfnElement):
        raise TypeError("acknowledge_prefix_wildcard needs a bucket defined in this app")
    logical_id = stack.resolve(stack.get_logical_id(cfn_bucket))
    acknowledge(role, f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]", reason)
