"""What `replay --flavor` selects, whichever import of the enum the caller holds."""

from enum import StrEnum

from sensorhook.core.flavors import Flavor
from sensorhook.logic.replay import ReplayFilter


class ReimportedFlavor(StrEnum):
    """The same enum as a second import of the module makes it (the local runtime re-imports
    the functions' package per deployment, while the CLI keeps its own)."""

    EFENTO_MEASUREMENTS = "efento-measurements"


def test_a_flavor_from_another_import_of_the_enum_still_selects() -> None:
    selection = ReplayFilter(flavor=ReimportedFlavor.EFENTO_MEASUREMENTS)  # type: ignore[arg-type]

    assert selection.passes_flavor(Flavor.EFENTO_MEASUREMENTS)
    assert not selection.passes_flavor(Flavor.EVERACTIVE_DS_SENSOR_READING)


def test_no_flavor_selects_every_flavor() -> None:
    assert all(ReplayFilter().passes_flavor(flavor) for flavor in Flavor)
