"""Features of other open issues that the CLI fronts, and the stack outputs that show they are
deployed. One place: when a feature lands, its construct publishes the output named here and
its command (or status section) lights up.
"""

from dataclasses import dataclass

from cli.errors import CliError
from cli.target import Target


@dataclass(frozen=True)
class Feature:
    title: str
    issue: str
    outputs: tuple[str, ...]  # stack outputs the CLI needs from it

    def deployed(self, target: Target) -> bool:
        return all(target.has(output) for output in self.outputs)

    def require(self, target: Target) -> None:
        """Stop with one line unless the stack has the feature's outputs."""
        if not self.deployed(target):
            missing = ", ".join(output for output in self.outputs if not target.has(output))
            raise CliError(
                f"{self.title} is not deployed in this stack ({target.name} has no output "
                f"{missing}; it comes with issue {self.issue})"
            )

    def not_wired(self) -> CliError:
        """The stack has the feature but this CLI predates its command."""
        return CliError(
            f"{self.title} is deployed in this stack, but this version of the CLI cannot drive "
            "it yet: update sensorhook"
        )


BACKFILL = Feature(
    title="backfill (the recovery state machine)",
    issue="#7",
    outputs=("RecoveryStateMachineArn",),
)
FORWARDING_ENDPOINTS = Feature(
    title="forwarding endpoints (the endpoint policy)",
    issue="#8",
    outputs=("ForwardingEndpointsTable",),
)
INCIDENTS = Feature(
    title="incidents (the recovery state machine)",
    issue="#7",
    outputs=("IncidentsTable",),
)
