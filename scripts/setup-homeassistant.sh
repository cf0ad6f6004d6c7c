#!/usr/bin/env bash
# Install a real Home Assistant for tests/test_homeassistant.py, outside the repository.
#   bash scripts/setup-homeassistant.sh        (CI runs it from .ci/run before the tests)
# The venv goes to ~/.cache/edge-ha/venv (or $EDGE_HA_VENV), the path the tests look
# for; re-running it installs nothing when that version is already there. Home
# Assistant needs Python 3.13: python3.13 on PATH, else one of pyenv's. Without
# one it says so and exits 0 (the Home Assistant tests then skip with that reason);
# a failed download or install exits non-zero and leaves no usable venv (the tests skip).
# Fresh machine: about 4-8 minutes and 0.9 GB (Home Assistant, its pinned dependencies
# and the requirements of the integrations a bare configuration loads).
set -euo pipefail

version=${EDGE_HA_VERSION:-2025.4.4}
venv=${EDGE_HA_VENV:-$HOME/.cache/edge-ha/venv}
marker="$venv/.edge-ha-version"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && [ -x "$venv/bin/hass" ]; then
  echo "setup-homeassistant: Home Assistant $version already in $venv"
  exit 0
fi

python=""
# python3.13 on PATH (a pyenv shim there may point at nothing: run it to be sure), else one of pyenv's.
candidates=("$(command -v python3.13 || true)")
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
  candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if [ -n "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    python=$p
    break
  fi
done
if [ -z "$python" ]; then
  echo "setup-homeassistant: no Python 3.13 (python3.13 or pyenv 3.13.x); Home Assistant tests will skip"
  exit 0
fi

start=$(date +%s)
echo "setup-homeassistant: installing Home Assistant $version with $python into $venv"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
"${pip[@]}" install --upgrade pip

# Home Assistant pins its dependency tree in homeassistant/package_constraints.txt, shipped in its
# wheel: take it from there (no other download), and install everything under it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${pip[@]}" download --no-deps -d "$tmp" "homeassistant==$version"
"$venv/bin/python" - "$tmp" <<'EOF'
import sys, zipfile, pathlib
d = pathlib.Path(sys.argv[1])
whl = next(d.glob("homeassistant-*.whl"))
with zipfile.ZipFile(whl) as z:
    (d / "constraints.txt").write_bytes(z.read("homeassistant/package_constraints.txt"))
EOF
"${pip[@]}" install -c "$tmp/constraints.txt" "$tmp"/homeassistant-*.whl

# The requirements of the integrations the tests' configuration loads (Home Assistant's
# default set, mqtt and their dependencies), read from their manifests, so that the tests
# can start it with --skip-pip and nothing is installed while they run.
"$venv/bin/python" - "$tmp/reqs.txt" <<'EOF'
import json, sys
from pathlib import Path
import homeassistant.components as comps
from homeassistant import bootstrap

root = Path(comps.__file__).parent
want = set(bootstrap.DEFAULT_INTEGRATIONS) | set(bootstrap.CORE_INTEGRATIONS) | {
    "mqtt", "api", "websocket_api", "http", "logger", "system_log", "frontend", "recorder"}
for name in ("LOGGING_AND_HTTP_DEPS_INTEGRATIONS", "FRONTEND_INTEGRATIONS", "RECORDER_INTEGRATIONS",
             "DISCOVERY_INTEGRATIONS", "STAGE_1_INTEGRATIONS"):
    want |= set(getattr(bootstrap, name, ()))
seen, reqs, todo = set(), set(), list(want)
while todo:
    d = todo.pop()
    if d in seen or not (root / d / "manifest.json").is_file():
        continue
    seen.add(d)
    m = json.loads((root / d / "manifest.json").read_text())
    reqs |= set(m.get("requirements", []))
    todo += m.get("dependencies", []) + m.get("after_dependencies", [])
Path(sys.argv[1]).write_text("\n".join(sorted(reqs)) + "\n")
print(f"setup-homeassistant: {len(reqs)} integration requirements of {len(seen)} integrations")
EOF
"${pip[@]}" install -c "$tmp/constraints.txt" -r "$tmp/reqs.txt"
"$venv/bin/hass" --version >/dev/null
echo "$version" > "$marker"
echo "setup-homeassistant: Home Assistant $version ready in $venv ($(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1))"
