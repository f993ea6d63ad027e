"""What goes wrong at an operator's terminal, said in one line.

Every failure the CLI can foresee (no credentials, no stack, a wrong stage, throttling, access
denied, the local stack not running) becomes a `CliError`: one line on stderr and a non-zero
exit status. The traceback is shown only with `--debug`.
"""

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

# AWS's names for "slow down" across services (SQS, DynamoDB, CloudFormation, Logs, ...).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "LimitExceededException",
    }
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
_BAD_CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
)


class CliError(Exception):
    """A failure explained for the operator: `str(error)` is the whole message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# What the operator reads for each kind of failure before any AWS service answered.
_LOCAL_FAILURES: tuple[tuple[tuple[type[Exception], ...], str], ...] = (
    (
        (NoCredentialsError, PartialCredentialsError),
        "no AWS credentials: set AWS_PROFILE (or pass --profile), run `aws sso login`, "
        "or use --local for the stack `make local` runs",
    ),
    (
        (TokenRetrievalError, UnauthorizedSSOTokenError),
        "your AWS SSO session has expired: run `aws sso login` and try again",
    ),
    ((ProfileNotFound,), "AWS profile not found: {error}"),
    ((NoRegionError,), "no AWS region: set AWS_REGION or pass --region"),
    ((EndpointConnectionError,), "cannot reach AWS: {error}"),
)


def explain(error: Exception) -> CliError:
    """The one line an operator needs for an exception the commands did not handle."""
    if isinstance(error, CliError):
        return error
    for kinds, message in _LOCAL_FAILURES:
        if isinstance(error, kinds):
            return CliError(message.format(error=error))
    if isinstance(error, ClientError):
        return _client_error(error)
    if isinstance(error, BotoCoreError):
        return CliError(f"AWS call failed: {error}")
    return CliError(f"unexpected error: {type(error).__name__}: {error} (--debug shows where)")


def _client_error(error: ClientError) -> CliError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    operation = error.operation_name
    if code in THROTTLING_CODES:
        return CliError(
            f"AWS is throttling {operation} ({code}): wait a moment and run it again", 75
        )
    if code in _EXPIRED_CODES:
        return CliError("your AWS credentials have expired: refresh them and try again")
    if code in _BAD_CREDENTIAL_CODES:
        return CliError(f"AWS does not accept these credentials ({code}): check AWS_PROFILE")
    if code in _DENIED_CODES:
        return CliError(f"access denied to {operation}: {message}")
    return CliError(f"{operation} failed: {code}: {message}")
