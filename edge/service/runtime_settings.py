"""The settings Home Assistant changes at run time, kept in the state directory across restarts.

``<state dir>/ha-settings.json`` (:func:`edge.core.paths.state_dir`: ``$STATE_DIRECTORY``
under systemd, else ``~/.local/state/edge``) holds only what was set from Home Assistant::

    {"listening": true, "sensitivity": "low", "labels": {"dog_bark": false},
     "learn_seconds": 600, "home_background": "/var/lib/edge-listener/home-background.npz"}

Precedence: a setting made from Home Assistant overrides ``config.yaml`` (at start and
after a SIGHUP reload) until it is changed again from Home Assistant. Keys never set
from there follow ``config.yaml``. Delete the file (and restart) to go back to
``config.yaml`` alone. A label switched on in Home Assistant is reported even if
``detector.labels`` leaves it out, and one switched off is not, whatever the list says.

The file is written atomically; a missing, unreadable or invalid file (or key) is
logged once and ignored, so the listener always starts listening.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.core.files import write_atomic
from edge.detect.settings import SENSITIVITIES
from edge.service.config import Config

log = logging.getLogger("edge.control")

FILE_NAME = "ha-settings.json"
DEFAULT_LEARN_SECONDS = 600.0


def default_path() -> Path:
    """``<state dir>/ha-settings.json``."""
    from edge.core.paths import state_dir

    return state_dir() / FILE_NAME


@dataclass
class RuntimeSettings:
    """What Home Assistant set; ``None`` / a missing label = follow ``config.yaml``."""

    listening: bool = True
    sensitivity: str | None = None
    labels: dict[str, bool] = field(default_factory=dict)  # label -> reported (True) or not
    learn_seconds: float = DEFAULT_LEARN_SECONDS
    home_background: str | None = None  # the file the "learn" button wrote last

    def overlay(self, cfg: Config, model_labels: Sequence[str]) -> Config:
        """``cfg`` with these settings on top of its ``detector`` section."""
        det = cfg.detector
        changes: dict[str, Any] = {}
        if self.sensitivity is not None:
            changes["sensitivity"] = self.sensitivity
        if self.labels:
            enabled = set(model_labels if det.labels is None else det.labels)
            enabled |= {lab for lab, on in self.labels.items() if on}
            enabled -= {lab for lab, on in self.labels.items() if not on}
            changes["labels"] = [lab for lab in model_labels if lab in enabled]
        if self.home_background is not None:
            changes["home_background"] = self.home_background
        if not changes:
            return cfg
        return dataclasses.replace(cfg, detector=dataclasses.replace(det, **changes))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"listening": self.listening, "labels": dict(self.labels),
                             "learn_seconds": self.learn_seconds}
        if self.sensitivity is not None:
            d["sensitivity"] = self.sensitivity
        if self.home_background is not None:
            d["home_background"] = self.home_background
        return d

    def save(self, path: str | Path) -> None:
        """Write atomically (raises OSError)."""
        write_atomic(path, (json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path, model_labels: Sequence[str]) -> RuntimeSettings:
        """Read ``path``; what cannot be used is logged (one line per problem) and left at its default."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, ValueError) as e:
            log.warning("%s: cannot read the settings from Home Assistant (%s); using config.yaml's", path, e)
            return cls()
        if not isinstance(data, dict):
            log.warning("%s: not a JSON object; using config.yaml's settings", path)
            return cls()
        out = cls()

        def bad(key: str, expected: str) -> None:
            log.warning("%s: %s: expected %s, got %r; ignored", path, key, expected, data[key])

        if "listening" in data:
            if isinstance(data["listening"], bool):
                out.listening = data["listening"]
            else:
                bad("listening", "true or false")
        if "sensitivity" in data:
            if data["sensitivity"] in SENSITIVITIES:
                out.sensitivity = data["sensitivity"]
            else:
                bad("sensitivity", " | ".join(SENSITIVITIES))
        if "labels" in data:
            labels = data["labels"]
            if isinstance(labels, dict):
                for lab, on in labels.items():
                    if lab in model_labels and isinstance(on, bool):
                        out.labels[lab] = on
                    else:
                        log.warning("%s: labels.%s: not a label of this model with true/false; ignored", path, lab)
            else:
                bad("labels", "an object of label: true/false")
        if "learn_seconds" in data:
            v = data["learn_seconds"]
            if isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= 86400:
                out.learn_seconds = float(v)
            else:
                bad("learn_seconds", "seconds")
        if "home_background" in data:
            if isinstance(data["home_background"], str) and data["home_background"]:
                out.home_background = data["home_background"]
            else:
                bad("home_background", "a file name")
        return out
