"""The provider flavors sensorhook accepts, and the webhook route each one is served on."""

from enum import StrEnum


class Flavor(StrEnum):
    """One webhook dialect: a provider plus the way it authenticates and shapes its bodies."""

    EVERACTIVE_V2020_STEAM_TRAP = "everactive-v2020-07"
    EVERACTIVE_DS_SENSOR_READING = "everactive-ds-sensor-reading"
    EVERACTIVE_DS_GATEWAY_STATUS = "everactive-ds-gateway-status"
    EFENTO_MEASUREMENTS = "efento-measurements"

    @property
    def provider(self) -> str:
        return "efento" if self is Flavor.EFENTO_MEASUREMENTS else "everactive"


# The HTTP API routes (POST). Infra and the receiver both read this table, so a route
# cannot exist in one and not the other.
ROUTES: dict[Flavor, str] = {
    Flavor.EVERACTIVE_V2020_STEAM_TRAP: "/webhooks/everactive/v2020-07/events",
    Flavor.EVERACTIVE_DS_SENSOR_READING: "/webhooks/everactive/ds/sensor-readings",
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS: "/webhooks/everactive/ds/gateway-status",
    Flavor.EFENTO_MEASUREMENTS: "/webhooks/efento/measurements",
}

FLAVOR_BY_ROUTE: dict[str, Flavor] = {path: flavor for flavor, path in ROUTES.items()}

# The HTTP API's route key of each flavor's route (`routeKey` in a payload 2.0 event). The
# receiver routes on it, not on the path: behind a custom domain's API mapping the path carries
# the mapping's base path (`/sensorhook/webhooks/...`), the route key never does.
FLAVOR_BY_ROUTE_KEY: dict[str, Flavor] = {f"POST {path}": flavor for flavor, path in ROUTES.items()}
