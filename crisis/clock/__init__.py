"""The ticking side of deadlines: notices missed ones and writes `clock.overdue` (rules: crisis.domain)."""
