"""`EveractiveApi`: the provider REST calls the control plane makes, as typed results.

Every call goes through one path: bearer token (refreshed once on a 401), the retry loop of
`transport`, the `data` wrapper unwrapped, errors turned into `ApiError` subclasses and
counted. Listings walk `paginationInfo` to the last page under a hard page cap.
"""

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from sensorhook.observability import logger
from sensorhook.providers.common import as_utc, describe_validation_error
from sensorhook.providers.everactive_api.auth import TokenSource, default_token_url
from sensorhook.providers.everactive_api.models import (
    ApiError,
    ApiFlavor,
    ClientCredentials,
    Gateway,
    Health,
    NotFound,
    PageLimitExceeded,
    PaginationInfo,
    Sensor,
    SortDirection,
    Webhook,
    WebhookSpec,
    api_error_from_response,
)
from sensorhook.providers.everactive_api.transport import (
    ERRORS_METRIC,
    ApiRequest,
    HttpResponse,
    RetryingSender,
    RetryPolicy,
    Transport,
    default_transport,
    record_metric,
)

READINGS_WINDOW_S = 24 * 3600  # the provider answers at most 24 hours of readings per call

Resource = TypeVar("Resource", bound=BaseModel)


@dataclass(frozen=True)
class _Dialect:
    """What differs between the flavors: query names and two resource paths."""

    page: str
    page_size: str
    sort_by: str
    sort_dir: str
    gateways: str
    webhook: str


_DIALECTS = {
    ApiFlavor.DATA_SERVICES: _Dialect(
        "page", "page-size", "sort-by", "sort-dir", "/evergateways", "/webhook/{id}"
    ),
    # v2020-07's seed lists "get gateways" without the path; this and the plural webhook path
    # are the emulator's reading (local/emulator/api/server.py), kept in step with it.
    ApiFlavor.V2020_07: _Dialect(
        "page", "pageSize", "sortBy", "sortDir", "/gateways", "/webhooks/{id}"
    ),
}


def _unwrap(document: Any) -> Any:
    """The `data` of the response wrapper; a bare document (as `/health` answers) as is."""
    return document["data"] if isinstance(document, dict) and "data" in document else document


def _reading_seconds(reading: Any) -> float | None:
    if not isinstance(reading, dict):
        return None
    seconds = reading.get("timestamp")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    date = reading.get("readingDate")
    if isinstance(date, str):
        try:
            return as_utc(datetime.fromisoformat(date.replace("Z", "+00:00"))).timestamp()
        except ValueError:
            return None
    return None


class EveractiveApi:
    def __init__(
        self,
        *,
        flavor: ApiFlavor,
        base_url: str,
        credentials: Callable[[], ClientCredentials],
        token_url: str | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        timeout_s: float = 5.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
        retry_after_cap_s: float | None = None,
        token_refresh_margin_s: float = 60.0,
        page_size: int = 100,
        max_pages: int = 1000,
        rng: random.Random | None = None,
        utc_now: Callable[[], datetime] = lambda: datetime.now(UTC),
        allow_http_loopback_callbacks: bool = False,
    ) -> None:
        """`token_url` defaults to `<base>/auth/token` for v2020-07 and is required for Data
        Services. `retry_after_cap_s` defaults to `backoff_cap_s`. `allow_http_loopback_callbacks`
        is for the local mode only: plain-http webhook callbacks to 127.0.0.1/localhost."""
        resolved_token_url = token_url or default_token_url(flavor, base_url)
        if resolved_token_url is None:
            raise ValueError("token_url is required for the Data Services flavor")
        self.flavor = flavor
        self._base_url = base_url.rstrip("/")
        self._dialect = _DIALECTS[flavor]
        self._page_size = page_size
        self._max_pages = max_pages
        self._allow_http_loopback_callbacks = allow_http_loopback_callbacks
        self._sender = RetryingSender(
            transport or default_transport(),
            RetryPolicy(
                max_attempts=max_attempts,
                backoff_base_s=backoff_base_s,
                backoff_cap_s=backoff_cap_s,
                retry_after_cap_s=backoff_cap_s if retry_after_cap_s is None else retry_after_cap_s,
            ),
            flavor=flavor,
            timeout_s=timeout_s,
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            utc_now=utc_now,
        )
        self._tokens = TokenSource(
            flavor=flavor,
            token_url=resolved_token_url,
            credentials=credentials,
            sender=self._sender,
            clock=clock,
            refresh_margin_s=token_refresh_margin_s,
        )

    # -- resources -------------------------------------------------------------------------

    def health(self) -> Health:
        """GET /health."""
        return self._one(Health, self._call("GET", "/health"))

    def gateways(
        self,
        *,
        sort_by: str | None = None,
        sort_dir: SortDirection | None = None,
        **filters: str,
    ) -> Iterator[Gateway]:
        """GET /evergateways (v2020-07: /gateways), every page. `filters` are query names as
        the flavor spells them (v2020-07: `id`, `location`, `name`, `serialNumber`)."""
        query = {**filters, **self._sorting(sort_by, sort_dir)}
        return self._listing(self._dialect.gateways, Gateway, query, key=lambda g: g.serial_number)

    def sensors(
        self, *, sort_by: str | None = None, sort_dir: SortDirection | None = None
    ) -> Iterator[Sensor]:
        """GET /eversensors, every page."""
        query = self._sorting(sort_by, sort_dir)
        return self._listing("/eversensors", Sensor, query, key=lambda s: s.mac_address)

    def last_reading(self, mac: str) -> dict[str, Any] | None:
        """GET /eversensors/{mac}/readings/last; None when the provider knows no reading."""
        try:
            data = _unwrap(
                self._call("GET", "/eversensors/{mac}/readings/last", path_params={"mac": mac})
            )
        except NotFound:
            return None
        return data if isinstance(data, dict) and data else None

    def readings(
        self, mac: str, start: datetime, end: datetime, *, window_s: int = READINGS_WINDOW_S
    ) -> Iterator[dict[str, Any]]:
        """A sensor's readings in [start, end), oldest first, whole seconds.

        The range is cut into windows of at most `window_s` (at most 24 hours), each asked for
        with `start-time` and `end-time` (unix seconds) and walked page by page. Windows are
        half-open and every reading is kept only in the window its timestamp falls in, so a
        reading exactly on an edge comes out once whether the provider treats `end-time` as
        inclusive or not.
        Readings without a timestamp cannot be placed and are skipped (counted in a log).
        """
        if not 0 < window_s <= READINGS_WINDOW_S:
            raise ValueError(f"window_s must be within 1..{READINGS_WINDOW_S}")
        start_s = math.floor(as_utc(start).timestamp())
        end_s = math.ceil(as_utc(end).timestamp())
        window_start = start_s
        while window_start < end_s:
            window_end = min(window_start + window_s, end_s)
            yield from self._window_readings(mac, window_start, window_end)
            window_start = window_end

    def list_webhooks(
        self, *, sort_by: str | None = None, sort_dir: SortDirection | None = None
    ) -> list[Webhook]:
        """GET /webhooks, every page."""
        query = self._sorting(sort_by, sort_dir)
        return list(self._listing("/webhooks", Webhook, query, key=lambda w: w.id))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """GET /webhook/{id} (v2020-07: /webhooks/{id}). Raises NotFound."""
        return self._one(
            Webhook, self._call("GET", self._dialect.webhook, path_params={"id": webhook_id})
        )

    def create_webhook(self, spec: WebhookSpec) -> Webhook:
        """POST /webhooks.

        Not sent again after a 5xx or a lost answer: the provider may have created it, and a
        blind retry would make a duplicate. The next reconcile lists and converges instead.
        The answer may carry only the new id; the rest is filled in from `spec`.
        """
        spec.check_callback(allow_http_loopback=self._allow_http_loopback_callbacks)
        document = self._call("POST", "/webhooks", body=spec.body(), idempotent=False)
        return self._webhook_answer(document, spec)

    def update_webhook(self, webhook_id: str, spec: WebhookSpec) -> Webhook:
        """PUT /webhook/{id} with the whole configuration (the seed lists its fields under
        "query parameters"; like create, they go in the JSON body). Raises NotFound.
        v2020-07 documents no update: there a subscription is deleted and created again."""
        spec.check_callback(allow_http_loopback=self._allow_http_loopback_callbacks)
        document = self._call(
            "PUT", self._dialect.webhook, body=spec.body(), path_params={"id": webhook_id}
        )
        return self._webhook_answer(document, spec, webhook_id=webhook_id)

    def delete_webhook(self, webhook_id: str) -> None:
        """DELETE /webhook/{id} (v2020-07: /webhooks/{id}). Raises NotFound (also when a
        retried delete had succeeded)."""
        self._call("DELETE", self._dialect.webhook, path_params={"id": webhook_id})

    # -- plumbing --------------------------------------------------------------------------

    def _sorting(self, sort_by: str | None, sort_dir: SortDirection | None) -> dict[str, str]:
        query = {}
        if sort_by:
            query[self._dialect.sort_by] = sort_by
        if sort_dir:
            query[self._dialect.sort_dir] = SortDirection(sort_dir).value
        return query

    def _call(
        self,
        method: str,
        path_template: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
        path_params: Mapping[str, str] | None = None,
    ) -> Any:
        """One logical call: its JSON answer, or an ApiError (counted unless NotFound)."""
        try:
            response = self._authorized(
                method,
                path_template,
                query=query,
                body=body,
                idempotent=idempotent,
                path_params=path_params or {},
            )
            if not 200 <= response.status < 300:
                raise api_error_from_response(response.status, response.body)
            if not response.body.strip():
                return None
            try:
                return json.loads(response.body)
            except ValueError:
                raise ApiError(
                    response.status, "invalid_response", f"{path_template}: not JSON"
                ) from None
        except ApiError as error:
            if not isinstance(error, NotFound):
                record_metric(ERRORS_METRIC, MetricUnit.Count, 1, self.flavor)
                logger.warning(
                    "provider api call failed",
                    extra={
                        "api_flavor": self.flavor.value,
                        "method": method,
                        "path": path_template,
                        "status": error.status,
                        "error_type": type(error).__name__,
                        "error_code": error.code,
                    },
                )
            raise

    def _authorized(
        self,
        method: str,
        path_template: str,
        *,
        query: dict[str, Any] | None,
        body: dict[str, Any] | None,
        idempotent: bool,
        path_params: Mapping[str, str],
    ) -> HttpResponse:
        """Sends with the cached token; on a 401 once more with a fresh one, then it stands."""
        path = path_template.format(
            **{name: quote(value, safe=":") for name, value in path_params.items()}
        )
        url = self._base_url + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()

        def send(token: str) -> HttpResponse:
            return self._sender.send(
                ApiRequest(
                    method=method,
                    url=url,
                    path_template=path_template,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    body=payload,
                    idempotent=idempotent,
                )
            )

        token = self._tokens.bearer()
        response = send(token)
        if response.status == 401:
            self._tokens.invalidate(token)
            response = send(self._tokens.bearer())
        return response

    def _pages(
        self,
        path_template: str,
        query: dict[str, Any],
        *,
        page_size: int | None,
        path_params: Mapping[str, str] | None = None,
    ) -> Iterator[list[Any]]:
        """Each page's `data` list, following `paginationInfo` to `totalPages`.

        A response without `paginationInfo` is the only page. More than `max_pages` pages
        raises PageLimitExceeded: a provider that never ends must not hold the function.
        """
        page = 1
        while True:
            paging = {}
            if page_size is not None:
                paging[self._dialect.page_size] = page_size
            if page > 1:
                paging[self._dialect.page] = page
            document = self._call(
                "GET", path_template, query={**query, **paging} or None, path_params=path_params
            )
            data = _unwrap(document)
            if not isinstance(data, list):
                raise ApiError(200, "invalid_response", f"{path_template}: data is not a list")
            yield data
            info = self._pagination_info(document)
            if info is None or not data or page >= info.total_pages:
                return
            if page >= self._max_pages:
                raise PageLimitExceeded(
                    None,
                    "page_limit",
                    f"{path_template}: more than {self._max_pages} pages "
                    f"(provider says {info.total_pages})",
                )
            page_size = page_size or info.page_size
            page += 1

    @staticmethod
    def _pagination_info(document: Any) -> PaginationInfo | None:
        if not isinstance(document, dict) or not isinstance(document.get("paginationInfo"), dict):
            return None
        try:
            return PaginationInfo.model_validate(document["paginationInfo"])
        except ValidationError:
            return None

    def _listing(
        self,
        path_template: str,
        model: type[Resource],
        query: dict[str, Any],
        *,
        key: Callable[[Resource], str],
    ) -> Iterator[Resource]:
        """Every item of every page once: an item that moved between pages while they were
        walked is not yielded twice; one the provider sends malformed is logged and skipped."""
        seen: set[str] = set()
        for page in self._pages(path_template, query, page_size=self._page_size):
            for item in page:
                try:
                    resource = model.model_validate(item)
                except ValidationError as error:
                    logger.warning(
                        "provider api item skipped",
                        extra={"path": path_template, "reason": describe_validation_error(error)},
                    )
                    continue
                if key(resource) not in seen:
                    seen.add(key(resource))
                    yield resource

    def _window_readings(self, mac: str, start_s: int, end_s: int) -> Iterator[dict[str, Any]]:
        placed: dict[str, tuple[float, dict[str, Any]]] = {}
        undated = 0
        query = {"start-time": start_s, "end-time": end_s}
        for page in self._pages(
            "/eversensors/{mac}/readings", query, page_size=None, path_params={"mac": mac}
        ):
            for reading in page:
                seconds = _reading_seconds(reading)
                if seconds is None:
                    undated += 1
                elif start_s <= seconds < end_s:
                    placed.setdefault(json.dumps(reading, sort_keys=True), (seconds, reading))
        if undated:
            logger.warning(
                "provider readings without a timestamp skipped",
                extra={"path": "/eversensors/{mac}/readings", "count": undated},
            )
        for _, reading in sorted(placed.values(), key=lambda pair: pair[0]):
            yield reading

    def _one(self, model: type[Resource], document: Any) -> Resource:
        try:
            return model.model_validate(_unwrap(document))
        except ValidationError as error:
            raise ApiError(
                200, "invalid_response", f"{model.__name__}: {describe_validation_error(error)}"
            ) from None

    def _webhook_answer(
        self, document: Any, spec: WebhookSpec, *, webhook_id: str | None = None
    ) -> Webhook:
        data = _unwrap(document)
        answered = data if isinstance(data, dict) else {}
        known = {**spec.body(), **({"id": webhook_id} if webhook_id else {})}
        return self._one(Webhook, {**known, **answered})
