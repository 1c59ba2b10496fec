"""Serial ports and USB devices this machine sees, whether the agent's user may open them,
and the link URL to put in the config: `drivers.discovery` (what `edc-agent ports` prints)
plus the owner and mode of each device node."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass

from drivers.discovery import list_serial_ports, list_usb_devices
from drivers.errors import TransportError
from drivers.serial_port import DIALOUT_HINT
from drivers.url import DEFAULT_BAUDRATE

UDEV_HINT = ('add a udev rule, e.g. SUBSYSTEM=="usb", ATTR{idVendor}=="VVVV", '
             'ATTR{idProduct}=="PPPP", GROUP="edc-agent", MODE="0660"')


@dataclass(frozen=True, slots=True)
class PortInfo:
    kind: str  # serial | usb
    device: str  # /dev/ttyUSB0, /dev/bus/usb/001/004
    description: str
    ids: str  # VID:PID (and serial number) when known
    owner: str  # user:group mode, e.g. root:dialout crw-rw----
    can_open: bool | None  # the agent's user may read and write it (None: cannot tell)
    advice: str  # what to do when it cannot
    link: str  # the lane's link URL for this device


@dataclass(frozen=True, slots=True)
class PortList:
    ports: list[PortInfo]
    problem: str  # why a part could not be listed ("" when none)


def owner_of(path: str | None) -> str:
    if not path:
        return ""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group} {stat.filemode(st.st_mode)}"


def list_ports() -> PortList:
    """Blocking (pyusb opens devices to read their names): call it in a worker thread."""
    ports: list[PortInfo] = []
    for port in list_serial_ports():
        stable = port.by_id[0] if port.by_id else port.path
        ids = " ".join(x for x in (port.vid_pid, port.serial_number) if x)
        ports.append(PortInfo(
            "serial", port.path, port.description, ids, owner_of(port.path), port.can_open,
            "" if port.can_open else DIALOUT_HINT,
            f"serial://{stable}?baudrate={DEFAULT_BAUDRATE}"))
    problem = ""
    try:
        devices = list_usb_devices()
    except (TransportError, ImportError, OSError, ValueError) as exc:
        devices = []
        problem = f"cannot list USB devices: {exc}"
    for dev in devices:
        if dev.is_hub:
            continue
        where = dev.node or (f"bus {dev.bus} address {dev.address}"
                             if dev.bus is not None else "bus ?")
        names = " / ".join(x for x in (dev.manufacturer, dev.product) if x) or "(no name)"
        suffix = f"/{dev.serial_number}" if dev.serial_number else ""
        ports.append(PortInfo(
            "usb", where, names, dev.vid_pid + suffix, owner_of(dev.node), dev.can_open,
            UDEV_HINT if dev.can_open is False else "", f"usb://{dev.vid_pid}{suffix}"))
    return PortList(ports, problem)
