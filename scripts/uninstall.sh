#!/usr/bin/env bash
# Remove edc-agent installed by scripts/install.sh (docs/install.md).
#
#   sudo ./scripts/uninstall.sh           stop and disable the service; remove the program,
#                                         the unit and the udev rules. KEEP the journal
#                                         (/var/lib/edc-agent), the config and the merchant
#                                         key (/etc/edc-agent) and the edc-agent user, so a
#                                         later install carries on where this one stopped.
#   sudo ./scripts/uninstall.sh --purge   also delete the journal, the config, the key and
#                                         the user. The journal is the record of every
#                                         payment: export what you need first.
#
#   EDC_AGENT_ROOT=DIR, --no-systemctl    as for install.sh (tests, staging)
set -euo pipefail

ROOT=${EDC_AGENT_ROOT:-}
ROOT=${ROOT%/}
NAME=edc-agent
use_systemctl=1
purge=0

say() { printf 'edc-agent uninstall: %s\n' "$*"; }
die() { printf 'edc-agent uninstall: ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --purge) purge=1 ;;
        --no-systemctl) use_systemctl=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "no directory $ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    use_systemctl=0
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi
[ -d /run/systemd/system ] || use_systemctl=0
R() { printf '%s%s' "$ROOT" "$1"; }

if [ "$use_systemctl" = 1 ]; then
    # Stopping drains in-flight calls (at most a few seconds); unfinished sales stay in
    # the journal and are resumed if the agent is ever installed again.
    systemctl disable --now --quiet "$NAME" 2>/dev/null || true
fi

rm -f "$(R /etc/systemd/system/edc-agent.service)" \
      "$(R /etc/udev/rules.d/70-edc-agent.rules)" \
      "$(R /etc/edc-agent/edc-agent.toml.example)"
rm -rf "$(R /etc/systemd/system/edc-agent.service.d)" "$(R /opt/edc-agent)"
say "removed /opt/edc-agent, the unit and the udev rules"

if [ "$purge" = 1 ]; then
    rm -rf "$(R /var/lib/edc-agent)" "$(R /etc/edc-agent)"
    rm -f "$(R /etc/sysusers.d/edc-agent.conf)"
    if [ -z "$ROOT" ] && getent passwd "$NAME" >/dev/null; then
        userdel "$NAME" 2>/dev/null || say "could not remove user $NAME (still in use?)"
        if getent group "$NAME" >/dev/null; then groupdel "$NAME" 2>/dev/null || true; fi
    fi
    say "purged the journal, the config, the merchant key and the $NAME user"
else
    say "kept /var/lib/edc-agent (journal), /etc/edc-agent (config, key) and the $NAME user;"
    say "  --purge removes them"
fi

if [ "$use_systemctl" = 1 ]; then
    systemctl daemon-reload
    command -v udevadm >/dev/null 2>&1 && udevadm control --reload
fi
exit 0
