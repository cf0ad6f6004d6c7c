"""Which labels are special to the detector, defined once.

Alarm labels bridge the pauses of their beep pattern (``detector.alarm_release_s``)
and may be confirmed by their rhythm (:mod:`edge.detect.alarm_pattern`); safety
labels are the sounds where a miss costs most. Neither is ever held back by the
familiarity check (:mod:`edge.detect.familiarity`), so the recipe fits no
prototypes for them.
"""

from __future__ import annotations

#: Smoke (ISO 8201 T3) and CO (T4) alarms, by the name of their beep pattern.
ALARM_PATTERN_NAMES: dict[str, str] = {"smoke_alarm": "T3", "co_alarm": "T4"}
#: Labels whose events bridge the pauses of a beep pattern (see ``alarm_release_s``).
ALARM_LABELS = frozenset(ALARM_PATTERN_NAMES)
#: The sounds where a miss costs most (issue bar: recall >= 0.9): reported apart by the
#: evaluation, and never held back by the familiarity check (with the alarms).
SAFETY_LABELS = ("smoke_alarm", "glass_breaking", "baby_cry")
#: Never held back by the familiarity check: a missed event costs more than a false alarm.
NEVER_HELD = ALARM_LABELS | frozenset(SAFETY_LABELS)
