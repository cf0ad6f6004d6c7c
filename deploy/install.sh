#!/usr/bin/env bash
# Install, upgrade or remove the edge sound listener as a systemd service on
# 64-bit Debian / Raspberry Pi OS (bookworm or newer). Run as root:
#
#   sudo deploy/install.sh                 # install or upgrade from this checkout
#   sudo deploy/install.sh path/to/edge_listener-X.Y.Z-py3-none-any.whl
#   sudo deploy/install.sh --uninstall     # remove; keeps config and state
#   sudo deploy/install.sh --uninstall --purge
#
# Running it again is safe: packages, user and venv are brought up to date, the
# config in /etc/edge-listener/config.yaml is never overwritten.
set -euo pipefail
# Files under /opt must be readable by the service user whatever umask root has
# (sudo may pass on 0077); secrets get explicit modes below.
umask 022

readonly APP=edge-listener
readonly SERVICE_USER=edge
readonly SERVICE_GROUP=edge
readonly AUDIO_GROUP=audio
readonly PREFIX=/opt/edge-listener
readonly VENV=/opt/edge-listener/venv
readonly CONFIG_DIR=/etc/edge-listener
readonly CONFIG_FILE=/etc/edge-listener/config.yaml
readonly STATE_DIR=/var/lib/edge-listener
readonly UNIT_NAME=edge-listener.service
readonly UNIT_PATH=/etc/systemd/system/edge-listener.service
# Runtime system packages; deploy/Dockerfile installs the same list (tests check it).
readonly APT_PACKAGES=(python3 python3-venv python3-pip libportaudio2 ca-certificates)
readonly MIN_PYTHON_MINOR=11

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly REPO_DIR="${SCRIPT_DIR%/*}"

usage() {
    cat <<EOF
Usage: install.sh [OPTIONS] [SOURCE]

Install or upgrade the edge sound listener ($UNIT_NAME) on 64-bit Debian or
Raspberry Pi OS. SOURCE is the project directory or a built wheel; default:
the checkout this script lives in ($REPO_DIR).

Options:
  --uninstall     stop and remove the service, venv and unit; keep config and state
  --purge         with --uninstall: also remove $CONFIG_DIR, $STATE_DIR and the user
  --no-start      install and enable, but do not (re)start the service
  --no-apt        do not install system packages (they must already be present)
  --root DIR      install into the Debian root file system at DIR (a chroot made
                  with debootstrap, an SD-card image mounted on this machine): the
                  script copies itself and SOURCE into DIR and runs there; implies
                  --no-start. Also read from \$EDGE_ROOT.
  -h, --help      show this help and exit

Environment (for testing):
  EDGE_ARCH_OVERRIDE     pretend \`dpkg --print-architecture\` printed this (e.g. armhf)
  EDGE_MACHINE_OVERRIDE  pretend \`uname -m\` printed this (e.g. armv7l)
  PIP_INDEX_URL etc.     passed on to pip as usual

Files: venv $VENV, config $CONFIG_FILE (created from the
project's config.yaml only if absent), state $STATE_DIR, unit $UNIT_PATH.
Logs: journalctl -u $APP -f
EOF
}

log() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# --- argument parsing -------------------------------------------------------
ACTION=install
PURGE=0
START=1
APT=1
ROOT="${EDGE_ROOT:-}"
SOURCE=""

while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --uninstall) ACTION=uninstall ;;
        --purge) PURGE=1 ;;
        --no-start) START=0 ;;
        --no-apt) APT=0 ;;
        --root) [[ $# -ge 2 ]] || die "--root needs a directory"; ROOT="$2"; shift ;;
        --root=*) ROOT="${1#--root=}" ;;
        --) shift; [[ $# -eq 0 ]] || SOURCE="$1"; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) [[ -z "$SOURCE" ]] || die "only one SOURCE may be given (got '$SOURCE' and '$1')"; SOURCE="$1" ;;
    esac
    shift
done
if ((PURGE)) && [[ "$ACTION" != uninstall ]]; then
    die "--purge only makes sense with --uninstall"
fi

# --- architecture check -----------------------------------------------------
check_architecture() {
    local arch machine
    arch="${EDGE_ARCH_OVERRIDE:-$(dpkg --print-architecture 2>/dev/null || echo unknown)}"
    machine="${EDGE_MACHINE_OVERRIDE:-$(uname -m)}"
    case "$arch/$machine" in
        armhf/*|armel/*|i386/*|*/armv6l|*/armv7l|*/armv8l|*/i386|*/i686)
            die "32-bit system detected (dpkg architecture '$arch', machine '$machine'). onnxruntime publishes no 32-bit ARM (or x86) wheels, so the listener cannot run here. Install the 64-bit Raspberry Pi OS / Debian (arm64) and run this again." ;;
        arm64/aarch64|amd64/x86_64) ;;
        *) die "unsupported architecture (dpkg '$arch', machine '$machine'): only arm64 and amd64 are supported (onnxruntime wheels)" ;;
    esac
}

# --- --root: re-run this script inside the target root file system ----------
MOUNTED=()
cleanup_root() {
    local m i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        m="${MOUNTED[$i]}"
        umount -l "$m" 2>/dev/null || true
    done
    [[ -z "${ROOT_STAGE:-}" ]] || rm -rf "$ROOT_STAGE"
}

run_in_root() {
    [[ -d "$ROOT" && -x "$ROOT/bin/sh" ]] || die "--root '$ROOT' is not a root file system (no $ROOT/bin/sh)"
    [[ "$(id -u)" -eq 0 ]] || die "--root needs root (chroot)"
    local root stage_rel args=() src_in_root="" m
    root="$(cd "$ROOT" && pwd)"
    stage_rel="tmp/edge-listener-install.$$"
    ROOT_STAGE="$root/$stage_rel"
    trap cleanup_root EXIT
    mkdir -p "$ROOT_STAGE"
    cp "$SCRIPT_DIR/install.sh" "$SCRIPT_DIR/edge-listener.service" "$ROOT_STAGE/"
    if [[ "$ACTION" == install ]]; then
        local src="${SOURCE:-$REPO_DIR}"
        if [[ -d "$src" ]]; then
            mkdir -p "$ROOT_STAGE/src"
            # Copy the project without VCS data, caches or virtual environments.
            tar -C "$src" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ \
                --exclude=.pytest_cache --exclude=.ruff_cache --exclude=build --exclude=dist -cf - . \
                | tar -C "$ROOT_STAGE/src" -xf -
            src_in_root="/$stage_rel/src"
        elif [[ -f "$src" ]]; then
            cp "$src" "$ROOT_STAGE/"
            src_in_root="/$stage_rel/$(basename "$src")"
        else
            die "SOURCE '$src' is neither a directory nor a file"
        fi
    fi
    for m in proc sys dev; do
        if ! mountpoint -q "$root/$m"; then
            mkdir -p "$root/$m"
            case "$m" in
                proc) mount -t proc proc "$root/proc" ;;
                sys) mount -t sysfs sysfs "$root/sys" ;;
                dev) mount --bind /dev "$root/dev" ;;
            esac
            MOUNTED+=("$root/$m")
        fi
    done
    if [[ ! -s "$root/etc/resolv.conf" && -r /etc/resolv.conf ]]; then
        cp /etc/resolv.conf "$root/etc/resolv.conf"
    fi
    args+=(--no-start)
    if [[ "$ACTION" == uninstall ]]; then args+=(--uninstall); fi
    if ((PURGE)); then args+=(--purge); fi
    if ((APT == 0)); then args+=(--no-apt); fi
    if [[ -n "$src_in_root" ]]; then args+=("$src_in_root"); fi
    log "running inside $root"
    env -u EDGE_ROOT chroot "$root" /bin/bash "/$stage_rel/install.sh" "${args[@]}"
}

# --- helpers ----------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }

systemd_running() {
    # sd_booted(): /run/systemd/system exists only when systemd is PID 1.
    [[ -d /run/systemd/system ]] && have systemctl
}

install_packages() {
    if ((APT == 0)); then
        log "skipping apt (--no-apt)"
        return
    fi
    have apt-get || die "apt-get not found: this installer supports Debian and Raspberry Pi OS only"
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "system packages already installed"
        return
    fi
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

check_python() {
    have python3 || die "python3 not found (install it, or drop --no-apt)"
    local minor
    minor="$(python3 -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)')"
    ((minor >= MIN_PYTHON_MINOR)) || die "Python 3.$MIN_PYTHON_MINOR or newer is needed, found 3.$minor (Debian bookworm or newer)"
}

ensure_user() {
    getent group "$AUDIO_GROUP" >/dev/null || groupadd --system "$AUDIO_GROUP"
    if ! getent group "$SERVICE_GROUP" >/dev/null; then
        groupadd --system "$SERVICE_GROUP"
    fi
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        usermod -a -G "$AUDIO_GROUP" "$SERVICE_USER"
    else
        log "creating system user $SERVICE_USER (groups: $SERVICE_GROUP, $AUDIO_GROUP)"
        useradd --system --gid "$SERVICE_GROUP" --groups "$AUDIO_GROUP" --home-dir "$STATE_DIR" \
            --no-create-home --shell /usr/sbin/nologin --comment "edge sound listener" "$SERVICE_USER"
    fi
}

install_venv() {
    local src="${SOURCE:-$REPO_DIR}" tmp wheel
    [[ -e "$src" ]] || die "SOURCE '$src' does not exist"
    mkdir -p "$PREFIX"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating virtual environment $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    tmp="$(mktemp -d)"
    if [[ -d "$src" ]]; then
        [[ -f "$src/pyproject.toml" ]] || die "SOURCE '$src' has no pyproject.toml"
        log "building the package from $src"
        "$VENV/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$tmp" "$src"
        wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' -print -quit)"
    else
        wheel="$src"
    fi
    [[ -n "$wheel" && -f "$wheel" ]] || die "no wheel built from '$src'"
    log "installing $(basename "$wheel") and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$wheel"
    # Same version number on upgrade from a checkout: make sure the new code replaces the old.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
    rm -rf "$tmp"
    "$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null || true
    [[ -x "$VENV/bin/edge" ]] || die "the package installed no 'edge' command in $VENV/bin"
}

install_config() {
    install -d -m 0750 -o root -g "$SERVICE_GROUP" "$CONFIG_DIR"
    if [[ -e "$CONFIG_FILE" ]]; then
        log "keeping existing $CONFIG_FILE"
        return
    fi
    local example=""
    if [[ -d "${SOURCE:-$REPO_DIR}" && -f "${SOURCE:-$REPO_DIR}/config.yaml" ]]; then
        example="${SOURCE:-$REPO_DIR}/config.yaml"
    elif [[ -f "$REPO_DIR/config.yaml" ]]; then
        example="$REPO_DIR/config.yaml"
    fi
    if [[ -n "$example" ]]; then
        install -m 0640 -o root -g "$SERVICE_GROUP" "$example" "$CONFIG_FILE"
        log "installed $CONFIG_FILE from $example: edit it (mqtt section), then: systemctl restart $APP"
    else
        # Installing from a bare wheel: start with the built-in defaults.
        printf '# edge sound listener configuration; see the project README for every option.\n{}\n' \
            >"$CONFIG_FILE"
        chown "root:$SERVICE_GROUP" "$CONFIG_FILE"
        chmod 0640 "$CONFIG_FILE"
        log "no config.yaml next to SOURCE: wrote an empty $CONFIG_FILE (built-in defaults)"
    fi
}

install_unit() {
    local unit_src="$SCRIPT_DIR/edge-listener.service"
    [[ -f "$unit_src" ]] || die "unit file $unit_src missing"
    install -d -m 0755 "$STATE_DIR"
    chown "$SERVICE_USER:$SERVICE_GROUP" "$STATE_DIR"
    chmod 0750 "$STATE_DIR"
    install -D -m 0644 "$unit_src" "$UNIT_PATH"
    if have systemctl; then
        if systemd_running; then
            systemctl daemon-reload
        fi
        # systemctl enable works offline too (chroot, image): it only makes the symlinks.
        systemctl enable "$UNIT_NAME" >/dev/null 2>&1 || systemctl enable "$UNIT_NAME"
    else
        log "systemctl not found: enabling by symlink"
        mkdir -p /etc/systemd/system/multi-user.target.wants
        ln -sf "$UNIT_PATH" "/etc/systemd/system/multi-user.target.wants/$UNIT_NAME"
    fi
}

start_service() {
    if ((START == 0)); then
        log "not starting the service (--no-start); start it with: systemctl start $APP"
        return
    fi
    if ! systemd_running; then
        log "systemd is not running here (chroot or container): the service starts on next boot"
        return
    fi
    systemctl restart "$UNIT_NAME"
    if systemctl is-active --quiet "$UNIT_NAME"; then
        log "service running. Logs: journalctl -u $APP -f"
    else
        log "service did not stay up; see: journalctl -u $APP -n 50"
        systemctl --no-pager status "$UNIT_NAME" || true
        exit 1
    fi
}

do_install() {
    install_packages
    check_python
    ensure_user
    install_venv
    install_config
    install_unit
    start_service
    log "done: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("edge-listener", m.version("edge-listener"))' 2>/dev/null || echo installed)"
}

do_uninstall() {
    if have systemctl; then
        if systemd_running; then
            systemctl disable --now "$UNIT_NAME" 2>/dev/null || true
        else
            systemctl disable "$UNIT_NAME" 2>/dev/null || true
        fi
    fi
    rm -f "/etc/systemd/system/multi-user.target.wants/$UNIT_NAME" "$UNIT_PATH"
    if systemd_running; then
        systemctl daemon-reload
    fi
    rm -rf "$PREFIX"
    log "removed the service and $PREFIX"
    if ((PURGE)); then
        rm -rf "$CONFIG_DIR" "$STATE_DIR"
        if id -u "$SERVICE_USER" >/dev/null 2>&1; then
            userdel "$SERVICE_USER" 2>/dev/null || true
        fi
        if getent group "$SERVICE_GROUP" >/dev/null; then
            groupdel "$SERVICE_GROUP" 2>/dev/null || true
        fi
        log "purged $CONFIG_DIR, $STATE_DIR and user $SERVICE_USER"
    else
        log "kept $CONFIG_DIR and $STATE_DIR (use --uninstall --purge to remove them)"
    fi
}

# --- main -------------------------------------------------------------------
if [[ -n "$ROOT" && "$ROOT" != / ]]; then
    # The architecture is checked inside the root: it is the target system's that matters.
    run_in_root
    exit 0
fi
if [[ "$ACTION" == install ]]; then
    check_architecture
fi
[[ "$(id -u)" -eq 0 ]] || die "run as root: sudo $0"
if [[ "$ACTION" == uninstall ]]; then
    do_uninstall
else
    do_install
fi
