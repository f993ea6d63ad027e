"""The subscriptions reconciler (docs/subscriptions.md), one module per step of a run:
reconciler.py observes and runs the steps, plan.py decides (pure), apply.py changes the
providers and the v2020-07 signing secrets, record.py stores each subscription's state,
result.py reports what the run did; callbacks.py says where a callback URL leads."""
