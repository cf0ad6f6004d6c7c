"""Which rule an event alerts under, and the rate limit per label.

:class:`RuleBook` resolves, once per label, the configuration's ``alerts.rules``
over :data:`~edge.publish.alerts.patterns.BUILTIN_RULES`, field by field from
the most specific rule to the least: the label, its groups in
:data:`GROUP_ORDER` (``alarms``, ``safety``), then ``all``; all of the
configuration's rules before any built-in one. A label the model did not have
when the configuration was read (a sound taught later) still alerts: under its
groups' and ``all``'s rules, with an automatic pattern of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from edge.core.events import Event
from edge.core.schema import ConfigError
from edge.publish.alerts.patterns import BUILTIN_RULES, PatternError, Rule, auto_pattern, parse_pattern
from edge.publish.alerts.settings import AlertRule

#: Groups a rule may name, most specific first; ``all`` matches every label.
GROUP_ORDER = ("alarms", "safety")
ALL = "all"


class RuleBook:
    """Resolved rules per label.

    Args:
        rules: the configuration's ``alerts.rules`` (label or group -> :class:`AlertRule`).
        labels: the labels a rule may name (the model's; a taught-sound enrolment may pass more).
        groups: group name -> its labels, e.g. ``{"safety": (...), "alarms": (...)}`` (from ``edge.detect.labels``).
        where: ``"<file>: alerts"``, for error messages.

    Raises :class:`ConfigError` (one line, naming the key) for a rule of an unknown label or
    group, or a pattern that cannot be played.
    """

    def __init__(self, rules: Mapping[str, AlertRule], labels: Sequence[str],
                 groups: Mapping[str, Collection[str]], where: str) -> None:
        self.groups = {g: frozenset(groups.get(g, ())) for g in GROUP_ORDER}
        names = set(labels) | set(GROUP_ORDER) | {ALL}
        for key, rule in rules.items():
            if key not in names:
                raise ConfigError(f"{where}.rules.{key}: unknown label or group (labels: {', '.join(labels)}; "
                                  f"groups: {', '.join((*GROUP_ORDER, ALL))})")
            if rule.pattern is not None:
                try:
                    parse_pattern(rule.pattern)
                except PatternError as e:
                    raise ConfigError(f"{where}.rules.{key}.pattern: {e}") from None
        self.user = {k: {f: getattr(r, f) for f in AlertRule.__dataclass_fields__ if getattr(r, f) is not None}
                     for k, r in rules.items()}
        self._cache: dict[str, Rule] = {}

    def chain(self, label: str) -> list[str]:
        """The rule names that apply to ``label``, most specific first."""
        return [label, *(g for g in GROUP_ORDER if label in self.groups[g]), ALL]

    def rule(self, label: str) -> Rule:
        got = self._cache.get(label)
        if got is None:
            got = self._cache[label] = self._resolve(label)
        return got

    def _resolve(self, label: str) -> Rule:
        layers: list[Mapping[str, Any]] = [self.user.get(n, {}) for n in self.chain(label)]
        layers += [BUILTIN_RULES.get(n, {}) for n in self.chain(label)]

        def first(name: str) -> Any:
            return next((layer[name] for layer in layers if layer.get(name) is not None), None)

        # The sound is one choice: the most specific rule that names a pattern or a WAV decides it.
        sound = next((layer for layer in layers if layer.get("pattern") or layer.get("wav")), {})
        wav = sound.get("wav")
        pattern = sound.get("pattern") or first("pattern") or auto_pattern(label)
        outputs = first("outputs")
        return Rule(label=label, steps=parse_pattern(str(pattern)), wav=wav, priority=str(first("priority")),
                    min_interval_s=float(first("min_interval_s")), repeat_s=float(first("repeat_s")),
                    outputs=tuple(outputs) if outputs is not None else None)


class RateLimit:
    """Onsets per label at most every ``min_interval_s``; offsets and repeats only of admitted onsets.

    Runs on the processing thread (no lock). ``clock``: ``time.monotonic`` seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: dict[str, float] = {}
        self._admitted: dict[str, str] = {}  # event id -> label, until its offset
        self.limited = 0

    def admit(self, ev: Event, rule: Rule) -> bool:
        """Whether this event is alerted. An onset counts against its label's interval; an offset is
        alerted only when its onset was."""
        if ev.state != "on":
            return self._admitted.pop(ev.id, None) is not None
        now = self.clock()
        last = self._last.get(ev.label)
        if last is not None and now - last < rule.min_interval_s:
            self.limited += 1
            return False
        self._last[ev.label] = now
        self._admitted[ev.id] = ev.label
        if len(self._admitted) > 1024:  # onsets whose offsets never came (cannot happen; bounded anyway)
            self._admitted.pop(next(iter(self._admitted)))
        return True
