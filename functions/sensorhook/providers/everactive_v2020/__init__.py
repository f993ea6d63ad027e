"""Everactive API v2020-07 webhooks: the Steam Trap State Change event."""
