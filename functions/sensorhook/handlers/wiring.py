"""What every handler does before its own work: build its parts from a validated environment."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

Handler = TypeVar("Handler", bound=Callable[[Any, LambdaContext], Any])


def parts_built_first(build: Callable[[], object]) -> Callable[[Handler], Handler]:
    """Run the function's cached factory (settings validated, clients created) before anything
    else, so a wrong environment fails the cold start loudly instead of the first request
    half-way through. The outermost decorator of every handler."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        def built(event: Any, context: LambdaContext) -> Any:
            build()
            return handler(event, context)

        return built  # type: ignore[return-value]

    return decorate
