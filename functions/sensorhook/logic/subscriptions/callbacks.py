"""Callback URLs: whether a provider's webhook leads to this deployment, and whether this
deployment is the local mode's plain-http API on loopback."""

import ipaddress
from urllib.parse import urlsplit


def normalized_url(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def points_at(url: str | None, webhook_base_url: str) -> bool:
    """Does a callback URL lead to this deployment (its HTTP API, under any route)?"""
    return normalized_url(url).startswith(normalized_url(webhook_base_url) + "/")


def is_http_loopback(url: str) -> bool:
    """The local mode's HTTP API (http://127.0.0.1:<port>): in AWS the API URL is always https."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    try:
        return (
            parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
        )
    except ValueError:
        return False
