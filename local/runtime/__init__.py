"""The local runtime: the CDK app on an embedded AWS (moto), with the parts moto lacks."""

from local.runtime.stack import DEMO_CREDENTIALS, DrainTimeout, EmbeddedStack

__all__ = ["DEMO_CREDENTIALS", "DrainTimeout", "EmbeddedStack"]
