"""DynamoDB writes made only if a condition holds: a failed condition is an answer, not an error."""

from collections.abc import Callable

from botocore.exceptions import ClientError


def written(write: Callable[[], object]) -> bool:
    """Run one conditional write: True if it happened, False if its condition did not hold.

    Every other failure is raised, so the caller's retry policy (SQS, the schedule) applies.
    """
    try:
        write()
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
