"""The provider emulator's API side: Everactive's token endpoints, Data Services API and
v2020-07 API over loopback HTTP, drawn from the simulated installation (docs/emulator.md)."""

from local.emulator.api.server import DEMO_API_CREDENTIALS, ProviderApi
from local.emulator.api.webhooks import Target

__all__ = ["DEMO_API_CREDENTIALS", "ProviderApi", "Target"]
