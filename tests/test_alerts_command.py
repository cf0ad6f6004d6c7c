"""The command alert output with real processes: the event JSON on stdin, failures, time-outs, limits, priority."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from edge.core.events import Event
from edge.publish.alerts.command import CommandOutput, resolve_program
from edge.publish.alerts.rules import RuleBook
from edge.publish.alerts.settings import AlertRule, CommandConfig
from edge.publish.alerts.sink import AlertSink

ROOT = Path(__file__).resolve().parent.parent


def edge(*args: object, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    e = dict(env or os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=e)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def config(tmp_path: Path, command: str, extra: str = "") -> Path:
    f = tmp_path / "c.yaml"
    f.write_text(f"detector: {{release_s: 0.1}}\nalerts:\n  command: {{enabled: true, argv: [{command}]{extra}}}\n")
    return f


def test_the_command_gets_each_onset_and_offset_as_event_json_on_stdin(tmp_path: Path, tiny_model: Path,
                                                                      burst_wav) -> None:
    out = tmp_path / "got.jsonl"
    cmd = script(tmp_path / "forward.sh", f'printf "%s %s %s " "$EDGE_LABEL" "$EDGE_STATE" "$EDGE_PRIORITY" >> {out}\n'
                                          f"cat >> {out}\n")
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2), (500.0, 2.5, 3.2)], 4.0)
    r = edge("run", "--config", config(tmp_path, str(cmd)), "--source", wav, "--model", tiny_model, "--realtime")
    assert r.returncode == 0, r.stderr
    printed = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(e["label"], e["state"]) for e in printed] == [("mid_tone", "on"), ("mid_tone", "off"),
                                                           ("low_tone", "on"), ("low_tone", "off")]
    got = sorted(out.read_text().splitlines(), key=lambda x: printed.index(json.loads(x.split(" ", 3)[3])))
    assert [json.loads(x.split(" ", 3)[3]) for x in got] == printed  # the very event JSON, one object per run
    assert [tuple(x.split(" ", 3)[:3]) for x in got] == [(e["label"], e["state"], "normal") for e in printed]


def test_a_failing_command_logs_one_line_and_the_listener_keeps_listening(tmp_path: Path, tiny_model: Path,
                                                                          burst_wav) -> None:
    cmd = script(tmp_path / "fail.sh", "cat > /dev/null; echo 'no route to phone' >&2; exit 3\n")
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2), (500.0, 2.0, 2.7), (2000.0, 3.5, 4.2)], 5.0)
    r = edge("run", "--config", config(tmp_path, str(cmd)), "--source", wav, "--model", tiny_model, "--realtime")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 6  # every onset and offset still printed
    warnings = [x for x in r.stderr.splitlines() if "WARNING" in x]
    assert len(warnings) == 1, r.stderr  # one line for the streak, not one per event
    assert "alerts.command: fail.sh (mid_tone on) failed with exit status 3: no route to phone; listening goes on" \
        in warnings[0]
    assert "Traceback" not in r.stderr
    assert "alerts.command: 0 played" in r.stderr and "6 failed" in r.stderr


def test_a_hanging_command_is_killed_after_its_timeout(tmp_path: Path, tiny_model: Path, burst_wav) -> None:
    pids = tmp_path / "pids"
    cmd = script(tmp_path / "hang.sh", f"echo $$ >> {pids}\nexec sleep 30\n")
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2)], 3.0)
    t0 = time.monotonic()
    r = edge("run", "--config", config(tmp_path, str(cmd), ", timeout_s: 0.5"), "--source", wav, "--model",
             tiny_model, "--realtime")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20
    assert "hang.sh (mid_tone on) still running after 0.5 s: killed; listening goes on" in r.stderr
    assert len(r.stdout.splitlines()) == 2
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def ev(label: str, eid: str, state: str = "on") -> Event:
    return Event(eid, label, state, 1.0, None, time.time(), None, 0.9, 0.8, -20.0, "test")


def sink_for(tmp_path: Path, body: str, rules: dict[str, AlertRule], max_running: int = 2) -> tuple[AlertSink, Path]:
    log = tmp_path / "runs.log"
    cmd = script(tmp_path / "run.sh", f'echo "start $EDGE_LABEL $(date +%s.%N)" >> {log}\n{body}'
                                      f'echo "end $EDGE_LABEL $(date +%s.%N)" >> {log}\n')
    cfg = CommandConfig(enabled=True, argv=[str(cmd)], max_running=max_running)
    book = RuleBook(rules, ("smoke_alarm", "door_knock", "dog_bark"), {"safety": ("smoke_alarm",)}, "x")
    sink = AlertSink("command", CommandOutput(cfg, resolve_program(cfg.argv, "x")), book, states=("on", "off"),
                     threads=cfg.max_running, urgent_thread=True, close_grace_s=5.0)
    return sink, log


def runs(log: Path) -> list[tuple[str, str, float]]:
    out = []
    for line in log.read_text().splitlines():
        what, label, t = line.split()
        out.append((what, label, float(t)))
    return out


def test_at_most_n_commands_run_at_once_and_a_smoke_alarm_does_not_wait_for_a_free_one(tmp_path: Path) -> None:
    sink, log = sink_for(tmp_path, "sleep 1\n", {"all": AlertRule(min_interval_s=0.0)}, max_running=2)
    sink.start()
    try:
        for i in range(4):
            sink.event(ev("door_knock", f"k{i}"))
        time.sleep(0.3)
        t_smoke = time.time()
        sink.event(ev("smoke_alarm", "s"))
        time.sleep(0.3)
    finally:
        sink.close()
    rs = runs(log)
    starts = {}
    for what, label, t in rs:
        if what == "start":
            starts.setdefault(label, []).append(t)
    assert len(starts["door_knock"]) == 4 and len(starts["smoke_alarm"]) == 1
    # knocks: two at once, the next two only after the first two ended (about 1 s later)
    k = sorted(starts["door_knock"])
    assert k[1] - k[0] < 0.5 and k[2] - k[0] > 0.8
    # the smoke alarm started at once although both slots were busy with knocks
    assert starts["smoke_alarm"][0] - t_smoke < 0.3
    # never more than 2 knocks + the urgent slot running at once
    events = sorted([(t, 1 if w == "start" else -1) for w, _, t in rs])
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak == 3


def test_the_rate_limit_holds_per_label_and_never_for_safety_sounds(tmp_path: Path) -> None:
    sink, log = sink_for(tmp_path, "cat > /dev/null\n", {"door_knock": AlertRule(min_interval_s=5.0)})
    sink.start()
    try:
        for i in range(3):
            sink.event(ev("door_knock", f"k{i}"))
            sink.event(ev("door_knock", f"k{i}", "off"))
            sink.event(ev("smoke_alarm", f"s{i}"))
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        sink.close()
    started = [label for what, label, _ in runs(log) if what == "start"]
    assert started.count("door_knock") == 2  # the first knock's onset and offset; the next two: rate-limited
    assert started.count("smoke_alarm") == 3
    assert sink.stats()["rate_limited"] == 2
