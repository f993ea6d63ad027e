"""The control plane's subscriptions reconciler."""
