"""The subscriptions table (one item per declared subscription, keyed by its `name`) and what
the reconciler reads from the gateways table to judge whether a subscription went silent.

Keyed by the declared name rather than the provider's webhook id: the id changes whenever a
webhook has to be re-created, the name is what the operator wrote in cdk.json.
"""

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.wire_format import attribute_value, plain_item

_PARTITION_KEY = "name"
_ISO: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    RE_ENABLED = "re-enabled"  # the provider had disabled it; this run enabled it again
    DISABLED = "disabled"  # declared with enabled: false, or recovery gave up (gave_up_at)
    ERROR = "error"  # the last run could not make it true; see last_error
    SILENT = "silent"  # no events for the silence window while its gateways are online
    MANUAL = "manual"  # Efento: configured by hand in Efento Cloud, never through an API


INCIDENT_ATTRIBUTES = frozenset(
    {"incident_id", "incident_cause", "incident_started_at", "gave_up_at"}
)


class SubscriptionState(BaseModel):
    """One item of the subscriptions table."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    provider: str
    event_type: str
    callback_url: str
    status: SubscriptionStatus
    provider_id: str | None = None
    last_reconciled_at: UtcDatetime
    active_since: UtcDatetime | None = None  # when the current provider webhook was adopted
    last_event_at: UtcDatetime | None = None
    last_error: str | None = None
    # the open recovery incident (docs/recovery.md): set when one is detected, removed by the
    # recovery machine when it finishes; one at a time, so one recovery runs at a time
    incident_id: str | None = None
    incident_cause: str | None = None
    incident_started_at: UtcDatetime | None = None
    # recovery exhausted its retries: the subscription stays `disabled` until an operator
    # removes this attribute (docs/operations.md)
    gave_up_at: UtcDatetime | None = None


class SubscriptionsStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def all(self) -> dict[str, SubscriptionState]:
        """Every stored subscription state by name."""
        states: dict[str, SubscriptionState] = {}
        for item in _scan(self._client, TableName=self._table_name, ConsistentRead=True):
            state = SubscriptionState.model_validate(item)
            states[state.name] = state
        return states

    def put(self, state: SubscriptionState) -> None:
        """Write what a reconcile run observed. The incident attributes are not written here
        (only `open_incident` and `close_incident` change them, conditionally), so a run that
        read the row before the recovery machine closed an incident cannot bring it back.

        Once recovery gave up (`gave_up_at`), the row stays `disabled` until an operator acts:
        a later run still records what it observed, but not its status, whether it read the
        row before or after the machine gave up (the condition decides, not the read).
        """
        document = state.model_dump(mode="json", exclude=set(INCIDENT_ATTRIBUTES))
        try:
            self._update(document, ConditionExpression="attribute_not_exists(gave_up_at)")
        except self._client.exceptions.ConditionalCheckFailedException:
            self._update({k: v for k, v in document.items() if k != "status"})

    def _update(self, document: dict[str, Any], **condition: str) -> None:
        names = {f"#{index}": name for index, name in enumerate(document) if name != _PARTITION_KEY}
        kept = {key: name for key, name in names.items() if document[name] is not None}
        dropped = [key for key, name in names.items() if document[name] is None]
        update = "SET " + ", ".join(f"{key} = :{key[1:]}" for key in kept)
        if dropped:
            update += " REMOVE " + ", ".join(dropped)
        self._client.update_item(
            TableName=self._table_name,
            Key={_PARTITION_KEY: {"S": document[_PARTITION_KEY]}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                f":{key[1:]}": attribute_value(document[name]) for key, name in kept.items()
            },
            **condition,
        )

    def delete(self, name: str) -> None:
        self._client.delete_item(TableName=self._table_name, Key={_PARTITION_KEY: {"S": name}})

    def get(self, name: str) -> SubscriptionState | None:
        item = self._client.get_item(
            TableName=self._table_name, Key={_PARTITION_KEY: {"S": name}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return SubscriptionState.model_validate(plain_item(item))

    def open_incident(self, name: str, incident_id: str, cause: str, at: datetime) -> bool:
        """Record an incident on an existing row unless one is open or recovery gave up;
        False when the row is absent or not free (someone else opened it first)."""
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={_PARTITION_KEY: {"S": name}},
                UpdateExpression="SET incident_id = :id, incident_cause = :cause, "
                "incident_started_at = :at",
                ConditionExpression="attribute_exists(#n) AND attribute_not_exists(incident_id) "
                "AND attribute_not_exists(gave_up_at)",
                ExpressionAttributeNames={"#n": _PARTITION_KEY},
                ExpressionAttributeValues={
                    ":id": {"S": incident_id},
                    ":cause": {"S": cause},
                    ":at": {"S": _iso(at)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def close_incident(self, name: str, incident_id: str, *, gave_up_at: datetime | None) -> bool:
        """Remove the open incident (only that one); with `gave_up_at`, also mark the
        subscription disabled until an operator looks at it. False: not the open incident."""
        update = "REMOVE incident_id, incident_cause, incident_started_at"
        values: dict[str, Any] = {":id": {"S": incident_id}}
        if gave_up_at is not None:
            update = "SET #s = :disabled, gave_up_at = :at " + update
            values |= {
                ":disabled": {"S": SubscriptionStatus.DISABLED.value},
                ":at": {"S": _iso(gave_up_at)},
            }
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={_PARTITION_KEY: {"S": name}},
                UpdateExpression=update,
                ConditionExpression="incident_id = :id",
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": {"#s": "status"}} if gave_up_at else {}),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


class ProviderContacts(BaseModel):
    """What the gateways table says about one provider's installation."""

    model_config = ConfigDict(frozen=True)

    last_reading_at: datetime | None = None  # newest reading relayed by any of its gateways
    last_status_at: datetime | None = None  # newest gateway status report
    gateways_online: int = 0


class GatewayContacts:
    """Reads the gateways table the processor and the gateway-health function keep."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def by_provider(self) -> dict[str, ProviderContacts]:
        """Per provider: newest contact times, and how many gateways are online.

        A gateway counts as online when the gateway-health function judged it so (`health`),
        or, before it has judged, when the gateway's own last status said so (`online`).
        """
        newest_reading: dict[str, datetime] = {}
        newest_status: dict[str, datetime] = {}
        online: dict[str, int] = {}
        for item in _scan(
            self._client,
            TableName=self._table_name,
            ProjectionExpression="#p, #r, #s, #h, #o",
            ExpressionAttributeNames={
                "#p": "provider",
                "#r": "last_reading_at",
                "#s": "reported_at",
                "#h": "health",
                "#o": "online",
            },
        ):
            provider = item.get("provider")
            if not isinstance(provider, str):
                continue
            for attribute, newest in (
                ("last_reading_at", newest_reading),
                ("reported_at", newest_status),
            ):
                value = item.get(attribute)
                if isinstance(value, str):
                    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                    if provider not in newest or newest[provider] < moment:
                        newest[provider] = moment
            health = item.get("health")
            is_online = health == "online" if health is not None else item.get("online") is True
            online[provider] = online.get(provider, 0) + int(is_online)
        return {
            provider: ProviderContacts(
                last_reading_at=newest_reading.get(provider),
                last_status_at=newest_status.get(provider),
                gateways_online=online.get(provider, 0),
            )
            for provider in {*newest_reading, *newest_status, *online}
        }


def _iso(moment: datetime) -> str:
    """The spelling `put` stores datetimes in (pydantic's JSON mode)."""
    return str(_ISO.dump_python(moment, mode="json"))


def _scan(client: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paginated Scan, as plain Python values."""
    for page in client.get_paginator("scan").paginate(**request):
        for item in page.get("Items", []):
            yield plain_item(item)
