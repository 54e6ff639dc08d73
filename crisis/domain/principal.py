"""Who is acting or reading: an organisation's key with a role."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from crisis.domain.enums import Mode, Role


class Principal(BaseModel):
    """The authenticated caller. `exercise_only` keys belong to exercise controllers."""

    model_config = ConfigDict(frozen=True)

    org: str
    role: Role
    key_id: str
    exercise_only: bool = False

    def may_touch_mode(self, mode: Mode) -> bool:
        """Exercise controllers act only on exercise crises."""
        return mode is Mode.EXERCISE or not self.exercise_only
