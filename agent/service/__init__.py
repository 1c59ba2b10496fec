"""Running as a system service: systemd's notify protocol and watchdog, udev rules.

    notify.py   the sd_notify datagrams (READY, STATUS, WATCHDOG, STOPPING) on $NOTIFY_SOCKET
    systemd.py  what `edc-agent run` tells systemd, and when (heartbeat, status refresh)
    udev.py     udev rules for the USB devices named in a config (used by scripts/install.sh)
"""
