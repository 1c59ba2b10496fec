#!/usr/bin/env bash
# Install or upgrade edc-agent as a systemd service on a Debian/Ubuntu till PC.
# The same command does both; docs/install.md explains every step.
#
#   sudo ./scripts/install.sh                        from this source tree (builds a wheel,
#                                                    dependencies from the package index)
#   sudo ./scripts/install.sh --wheelhouse DIR       offline, e.g. from a USB stick
#   ./scripts/install.sh --build-wheelhouse DIR      (with network) make that DIR: the
#                                                    edc-agent wheel and all its dependencies
#
# What it does: the package into a fresh virtual environment under
# /opt/edc-agent/releases/, /opt/edc-agent/venv pointed at it; the edc-agent system
# user (in dialout); /etc/edc-agent/edc-agent.toml from a commented skeleton, only if
# there is none (never overwritten); /var/lib/edc-agent for the journal; the unit;
# udev rules for the config's USB devices; then daemon-reload, enable, and (re)start,
# but only when `edc-agent check-config` accepts the config and the merchant key.
# On an upgrade whose config the new version rejects while the old one is running,
# nothing is switched: the running version stays.
#
# For tests and staging:
#   EDC_AGENT_ROOT=DIR   install below DIR instead of / (DESTDIR-style); implies
#                        --no-systemctl. The user is created in DIR/etc/passwd.
#   --no-systemctl       do not call systemctl or udevadm (automatic when the machine
#                        was not booted with systemd)
#   --skip-package       leave the Python environment alone; DIR/opt/edc-agent/venv must
#                        already exist (the test suite provides one)
#   --wheel FILE         install this edc-agent wheel instead of building one
#   PYTHON=python3.11    the interpreter for the virtual environment (default python3)
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${EDC_AGENT_ROOT:-}
ROOT=${ROOT%/}
PYTHON=${PYTHON:-python3}

NAME=edc-agent
OPT=/opt/edc-agent
VENV=$OPT/venv
RELEASES=$OPT/releases
ETC=/etc/edc-agent
CONFIG=$ETC/edc-agent.toml
KEY=$ETC/merchant.key
STATE=/var/lib/edc-agent
UNIT=/etc/systemd/system/edc-agent.service
UDEV_RULES=/etc/udev/rules.d/70-edc-agent.rules
SYSUSERS=/etc/sysusers.d/edc-agent.conf
KEEP_RELEASES=2  # the active one and the one before it, for a quick roll-back

use_systemctl=1
skip_package=0
wheel=""
wheelhouse=""
build_wheelhouse=""

say() { printf 'edc-agent install: %s\n' "$*"; }
warn() { printf 'edc-agent install: WARNING: %s\n' "$*" >&2; }
die() { printf 'edc-agent install: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --no-systemctl) use_systemctl=0 ;;
        --skip-package) skip_package=1 ;;
        --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; wheel=$2; shift ;;
        --wheelhouse) [ $# -ge 2 ] || die "--wheelhouse needs a directory"; wheelhouse=$2; shift ;;
        --build-wheelhouse)
            [ $# -ge 2 ] || die "--build-wheelhouse needs a directory"; build_wheelhouse=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

# --- the interpreter --------------------------------------------------------------

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "$PYTHON not found; install Python 3.11 or newer (apt-get install python3)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1); edc-agent needs 3.11 or newer" \
               "(Ubuntu 22.04: apt-get install python3.11 python3.11-venv, then PYTHON=python3.11)"
    case "$(readlink -f "$(command -v "$PYTHON")")" in
        /home/*|/root/*) warn "$PYTHON lives under /home or /root, which the service cannot" \
                              "see (ProtectHome=yes); use the system's /usr/bin/python3" ;;
    esac
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        local pkg
        pkg="python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
        if [ -z "$ROOT" ] && command -v apt-get >/dev/null 2>&1; then
            say "installing $pkg (Python virtual environments)"
            apt-get install -y "$pkg" >/dev/null || die "apt-get install $pkg failed"
        else
            die "$PYTHON cannot create virtual environments; apt-get install $pkg"
        fi
    fi
}

# A virtual environment with pip, made with the target interpreter.
make_venv() {
    "$PYTHON" -m venv "$1" || die "cannot create a virtual environment in $1"
}

# Build the edc-agent wheel from a copy of the source tree (the tree stays clean).
build_wheel() {
    local venv=$1 out=$2 tmp
    tmp=$(mktemp -d)
    cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/agent" "$SRC/drivers" "$tmp/"
    find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
    "$venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
        -w "$out" "$tmp" || die "building the edc-agent wheel failed"
    rm -rf "$tmp"
}

newest_wheel() {
    find "$1" -maxdepth 1 -name 'edc_agent-*.whl' | sort -V | tail -n 1
}

if [ -n "$build_wheelhouse" ]; then
    check_python
    mkdir -p "$build_wheelhouse"
    tmp=$(mktemp -d)
    make_venv "$tmp/venv"
    build_wheel "$tmp/venv" "$build_wheelhouse"
    "$tmp/venv/bin/python" -m pip wheel --quiet --disable-pip-version-check \
        -w "$build_wheelhouse" "$(newest_wheel "$build_wheelhouse")" \
        || die "downloading the dependencies failed"
    rm -rf "$tmp"
    say "wheelhouse ready in $build_wheelhouse (for Python $("$PYTHON" -V 2>&1 | cut -d' ' -f2)," \
        "$(uname -m)); on the till PC: sudo ./scripts/install.sh --wheelhouse DIR"
    exit 0
fi

# --- where we install ---------------------------------------------------------------

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    use_systemctl=0
    say "installing below $ROOT (no systemctl, no udevadm)"
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi
if [ "$use_systemctl" = 1 ] && [ ! -d /run/systemd/system ]; then
    warn "this machine was not booted with systemd: installing files only"
    use_systemctl=0
fi
R() { printf '%s%s' "$ROOT" "$1"; }

service_active() {
    [ "$use_systemctl" = 1 ] && systemctl is-active --quiet "$NAME"
}

# --- the system user ----------------------------------------------------------------

install -d -m 0755 "$(R /etc)" "$(R /etc/sysusers.d)"
install -m 0644 "$SRC/systemd/edc-agent.sysusers" "$(R "$SYSUSERS")"
if command -v systemd-sysusers >/dev/null 2>&1; then
    if [ -n "$ROOT" ]; then
        systemd-sysusers --root="$ROOT" "$(R "$SYSUSERS")" >/dev/null
    else
        systemd-sysusers "$SYSUSERS" >/dev/null
    fi
elif [ -z "$ROOT" ]; then
    getent group "$NAME" >/dev/null || groupadd --system "$NAME"
    getent passwd "$NAME" >/dev/null || useradd --system --gid "$NAME" --no-create-home \
        --home-dir "$STATE" --shell /usr/sbin/nologin --comment "edc-agent service" "$NAME"
    usermod -a -G dialout "$NAME"
else
    warn "systemd-sysusers not found: no $NAME user below $ROOT"
fi
# Numeric ids from the target's own files, so a temporary root works like the real one.
uid=$(awk -F: -v n="$NAME" '$1 == n { print $3 }' "$(R /etc/passwd)" 2>/dev/null || true)
gid=$(awk -F: -v n="$NAME" '$1 == n { print $3 }' "$(R /etc/group)" 2>/dev/null || true)
[ -n "$uid" ] && [ -n "$gid" ] || [ -n "$ROOT" ] || die "user $NAME was not created"

# own OWNER GROUP MODE PATH: ownership only when the ids are known (see above).
own() {
    if [ -n "$uid" ] && [ -n "$gid" ]; then
        chown "$1:$2" "$4"
    fi
    chmod "$3" "$4"
}

# --- directories, config, key ---------------------------------------------------------

install -d -m 0755 "$(R "$OPT")" "$(R "$ETC")" "$(R "$RELEASES")" "$(R /var/lib)"
# Same owner and mode as StateDirectory=/StateDirectoryMode= in the unit.
install -d "$(R "$STATE")"
own "${uid:-0}" "${gid:-0}" 0700 "$(R "$STATE")"

install -m 0644 "$SRC/packaging/edc-agent.toml" "$(R "$ETC/edc-agent.toml.example")"
if [ -e "$(R "$CONFIG")" ]; then
    say "keeping $CONFIG (the new skeleton is $ETC/edc-agent.toml.example)"
else
    install -m 0640 "$SRC/packaging/edc-agent.toml" "$(R "$CONFIG")"
    say "created $CONFIG from the skeleton: set paytm.mid and the [[lanes]]"
fi
# Root writes it, the service's group reads it, nobody else sees the merchant's setup.
own 0 "${gid:-0}" 0640 "$(R "$CONFIG")"

key_missing=0
if [ -e "$(R "$KEY")" ]; then
    # Read by systemd as root (LoadCredential=); the service gets its own copy.
    own 0 0 0600 "$(R "$KEY")"
else
    key_missing=1
fi

# --- the Python package -----------------------------------------------------------------

first_install=1
[ -e "$(R "$VENV")" ] && first_install=0
config_ok=0
check_config() {  # check_config EDC_AGENT_BINARY
    if [ ! -x "$1" ]; then
        warn "$1 missing: cannot check the config"
        return 1
    fi
    "$1" check-config --config "$(R "$CONFIG")"
}

if [ "$skip_package" = 1 ]; then
    [ -e "$(R "$VENV")/bin/python" ] || die "--skip-package: $(R "$VENV") does not exist"
    say "leaving $VENV as it is (--skip-package)"
    if check_config "$(R "$VENV")/bin/edc-agent"; then config_ok=1; fi
else
    check_python
    # Each install gets its own environment, named by time: a venv cannot be moved.
    stamp=$(date +%Y%m%d-%H%M%S)
    [ -e "$(R "$RELEASES")/$stamp" ] && stamp="$stamp-$$"
    release="$(R "$RELEASES")/$stamp"
    make_venv "$release"
    pip_opts=()
    if [ -n "$wheelhouse" ]; then
        [ -d "$wheelhouse" ] || die "no directory $wheelhouse"
        wheelhouse=$(cd "$wheelhouse" && pwd)
        pip_opts=(--no-index --find-links "$wheelhouse")
        [ -n "$wheel" ] || wheel=$(newest_wheel "$wheelhouse")
        [ -n "$wheel" ] || die "no edc_agent-*.whl in $wheelhouse"
    elif [ -z "$wheel" ]; then
        build_wheel "$release" "$release/dist"
        wheel=$(newest_wheel "$release/dist")
    fi
    [ -f "$wheel" ] || die "no wheel $wheel"
    version=$(basename "$wheel" | cut -d- -f2)
    say "installing edc-agent $version into $RELEASES/$stamp"
    "$release/bin/python" -m pip install --quiet --disable-pip-version-check "${pip_opts[@]}" \
        "$wheel" || { rm -rf "$release"; die "pip could not install $wheel"; }
    rm -rf "$release/dist"
    if check_config "$release/bin/edc-agent"; then config_ok=1; fi
    if [ "$first_install" = 0 ] && [ "$config_ok" = 0 ] && service_active; then
        rm -rf "$release"
        die "edc-agent $version rejects $CONFIG (problems above); the running version" \
            "stays active and untouched. Fix the config, then run this again."
    fi
    # Switch atomically: the running service keeps the files of its own release.
    ln -sfn "releases/$stamp" "$(R "$OPT")/venv.new"
    mv -T "$(R "$OPT")/venv.new" "$(R "$VENV")"
    say "$VENV now points at releases/$stamp (edc-agent $version)"
    find "$(R "$RELEASES")" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' \
        | sort -rn | tail -n +$((KEEP_RELEASES + 1)) | cut -d' ' -f2- \
        | while IFS= read -r old; do rm -rf "$old"; done
fi

# --- unit, udev rules, documentation --------------------------------------------------

install -d -m 0755 "$(R /etc/systemd/system)" "$(R /etc/udev/rules.d)" "$(R "$OPT/docs")"
install -m 0644 "$SRC/systemd/edc-agent.service" "$(R "$UNIT")"
install -m 0644 "$SRC/docs/install.md" "$(R "$OPT/docs/install.md")"
if "$(R "$VENV")/bin/python" -m agent.service.udev --config "$(R "$CONFIG")" \
        --output "$(R "$UDEV_RULES")"; then
    say "udev rules for the config's USB devices in $UDEV_RULES"
else
    warn "udev rules not updated (the config has problems); USB lanes may lack access"
fi

# --- systemd ------------------------------------------------------------------------------

if [ "$use_systemctl" = 1 ]; then
    systemctl daemon-reload
    if command -v udevadm >/dev/null 2>&1; then
        udevadm control --reload
        udevadm trigger --subsystem-match=usb --action=change
    fi
    systemctl enable --quiet "$NAME"
    if [ "$config_ok" = 1 ]; then
        if systemctl restart "$NAME"; then
            say "edc-agent is running: systemctl status $NAME"
        else
            die "edc-agent did not start: journalctl -u $NAME -p err -n 50"
        fi
    else
        say "edc-agent is enabled but NOT started: fix what check-config said above, then"
        say "  sudo systemctl start $NAME"
    fi
else
    if [ "$config_ok" = 1 ]; then
        say "files installed; the config is valid (systemctl not used)"
    else
        say "files installed; the config or key is not ready (systemctl not used)"
    fi
fi

if [ "$key_missing" = 1 ]; then
    say "no merchant key yet. Put it in place (root-only; the service reads a copy):"
    say "  sudo install -m 600 -o root -g root /path/to/merchant.key $KEY"
    say "  sudo $VENV/bin/edc-agent check-config --config $CONFIG"
    say "  sudo systemctl restart $NAME"
fi
