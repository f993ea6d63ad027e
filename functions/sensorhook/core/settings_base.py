"""What every function's settings model shares: validated once at cold start from its
environment, built when first validated (each function's model in core/settings.py, the
receiver's in core/receiver_settings.py, so its import builds no other function's model)."""

import os
from typing import Self

from pydantic import BaseModel, ConfigDict


class FunctionSettings(BaseModel):
    # built when first validated: a function validates its own settings, not the others'
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    @classmethod
    def from_env(cls) -> Self:
        wanted = {name.upper() for name in cls.model_fields}
        return cls.model_validate(
            {k.lower(): v for k, v in os.environ.items() if k.upper() in wanted}
        )
