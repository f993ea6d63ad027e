"""What a run did, as the function answers it, logs it and the CLI shows it: counts by action
kind, the plan (header names, never values) and what went wrong."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from sensorhook.logic.subscriptions.plan import Action, ActionKind, Plan, action_key


class ReconcileResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    dry_run: bool
    plan: Plan
    applied: tuple[Action, ...] = ()
    failed: tuple[tuple[Action, str], ...] = ()

    @property
    def error_count(self) -> int:
        return len(self.plan.errors) + len(self.failed)

    def summary(self) -> dict[str, Any]:
        """Counts by action kind, and what went wrong (no secret ever reaches these strings)."""
        done = self.plan.actions if self.dry_run else self.applied
        return {
            "dry_run": self.dry_run,
            "planned": {
                kind.value: sum(a.kind is kind for a in self.plan.actions) for kind in ActionKind
            },
            "applied": {kind.value: sum(a.kind is kind for a in done) for kind in ActionKind}
            if not self.dry_run
            else {},
            "unchanged": len(self.plan.unchanged),
            "manual": len(self.plan.manual),
            "errors": {
                **self.plan.errors,
                **{action_key(action): error for action, error in self.failed},
            },
            "plan": self.plan.describe(),
        }
