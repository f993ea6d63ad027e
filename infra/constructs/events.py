"""The custom EventBridge bus the processor publishes sensorhook's domain events on
(docs/events.md), with an archive so events can be replayed to a new consumer."""

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from infra.config import StageConfig
from infra.constants import EVENT_SOURCE, event_bus_name, resource_name


class EventsBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, config: StageConfig):
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=event_bus_name(stage))
        self.archive = self.bus.archive(
            "Archive",
            archive_name=resource_name(stage, "events"),
            description=f"Every {EVENT_SOURCE} event on {event_bus_name(stage)}, for replay",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            # 0 keeps archived events indefinitely
            retention=Duration.days(config.event_archive_retention_days),
        )
