"""Everactive Data Services v1 webhooks: `sensor_reading` and `gateway_status` bodies."""
