"""`edc-agent ports`: the serial ports and USB devices this machine sees, and may we open them.

Meant for the technician wiring a till: it prints the link URL to put in the
config for each candidate, and why a device would not open (dialout group,
udev rule) before the agent is even started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass
from typing import Any

from drivers.errors import TransportError
from drivers.serial_port import DIALOUT_HINT
from drivers.url import DEFAULT_BAUDRATE

BY_ID_DIR = "/dev/serial/by-id"
USBFS_DIR = "/dev/bus/usb"
USB_CLASS_HUB = 9


@dataclass(frozen=True, slots=True)
class SerialPortInfo:
    path: str
    description: str
    vid_pid: str | None  # "0403:6001" for USB-serial adapters
    serial_number: str | None
    by_id: tuple[str, ...]  # stable /dev/serial/by-id names pointing at `path`
    can_open: bool  # read and write access for this user


@dataclass(frozen=True, slots=True)
class UsbDeviceInfo:
    vendor_id: int
    product_id: int
    bus: int | None
    address: int | None
    manufacturer: str | None
    product: str | None
    serial_number: str | None
    is_hub: bool
    node: str | None  # /dev/bus/usb/BBB/DDD when it exists
    can_open: bool | None  # None: cannot tell (no usbfs node)

    @property
    def vid_pid(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"


def _by_id_links() -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(BY_ID_DIR)):
            path = os.path.join(BY_ID_DIR, name)
            links.setdefault(os.path.realpath(path), []).append(path)
    return links


def list_serial_ports() -> list[SerialPortInfo]:
    from serial.tools import list_ports

    links = _by_id_links()
    ports = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = None
        if info.vid is not None and info.pid is not None:
            vid_pid = f"{info.vid:04x}:{info.pid:04x}"
        description = info.description if info.description not in (None, "n/a") else ""
        ports.append(
            SerialPortInfo(
                path=info.device,
                description=description,
                vid_pid=vid_pid,
                serial_number=info.serial_number,
                by_id=tuple(links.get(os.path.realpath(info.device), ())),
                can_open=os.access(info.device, os.R_OK | os.W_OK),
            )
        )
    return ports


def list_usb_devices(backend: Any = None) -> list[UsbDeviceInfo]:
    """Every USB device pyusb sees; raises TransportError when there is no USB backend."""
    import usb.core

    from drivers.usb_bulk import default_backend, dispose, read_string

    if backend is None:
        backend = default_backend()
    try:
        devices = list(usb.core.find(find_all=True, backend=backend))
    except usb.core.USBError as exc:
        raise TransportError(f"cannot list USB devices: {exc}") from exc
    infos = []
    for dev in devices:
        strings: dict[str, str | None] = {}
        for key, index in (
            ("manufacturer", dev.iManufacturer),
            ("product", dev.iProduct),
            ("serial", dev.iSerialNumber),
        ):
            # Strings need the device opened: unreadable without permission.
            try:
                strings[key] = read_string(dev, index)
            except (usb.core.USBError, ValueError, NotImplementedError):
                strings[key] = None
        dispose(dev)
        node = None
        can_open = None
        if dev.bus is not None and dev.address is not None:
            candidate = os.path.join(USBFS_DIR, f"{dev.bus:03d}", f"{dev.address:03d}")
            if os.path.exists(candidate):
                node = candidate
                can_open = os.access(candidate, os.R_OK | os.W_OK)
        infos.append(
            UsbDeviceInfo(
                vendor_id=int(dev.idVendor),
                product_id=int(dev.idProduct),
                bus=dev.bus,
                address=dev.address,
                manufacturer=strings["manufacturer"],
                product=strings["product"],
                serial_number=strings["serial"],
                is_hub=int(dev.bDeviceClass) == USB_CLASS_HUB,
                node=node,
                can_open=can_open,
            )
        )
    return sorted(infos, key=lambda d: (d.bus or 0, d.address or 0))


def _access(can_open: bool | None) -> str:
    return {True: "ok", False: "NO ACCESS", None: "?"}[can_open]


def format_ports(
    serial_ports: list[SerialPortInfo],
    usb_devices: list[UsbDeviceInfo] | None,
    usb_problem: str | None = None,
) -> str:
    lines = ["Serial ports"]
    if not serial_ports:
        lines.append("  none found (a USB-serial adapter shows up as /dev/ttyUSB* or /dev/ttyACM*)")
    for port in serial_ports:
        what = "  ".join(x for x in (port.vid_pid, port.description) if x)
        lines.append(f"  {port.path:<16} {_access(port.can_open):<9} {what}".rstrip())
        for link in port.by_id:
            lines.append(f"      also {link}")
        stable = port.by_id[0] if port.by_id else port.path
        lines.append(f"      link = \"serial://{stable}?baudrate={DEFAULT_BAUDRATE}\"")
    lines.append("")
    lines.append("USB devices")
    hubs = 0
    shown = 0
    if usb_devices is None:
        lines.append(f"  cannot list USB devices: {usb_problem or 'unknown problem'}")
    else:
        for dev in usb_devices:
            if dev.is_hub:
                hubs += 1
                continue
            shown += 1
            where = f"bus {dev.bus:03d} addr {dev.address:03d}" if dev.bus is not None \
                and dev.address is not None else "bus ? addr ?"
            names = " / ".join(x for x in (dev.manufacturer, dev.product) if x) or "(no name)"
            serial = f"  serial {dev.serial_number}" if dev.serial_number else ""
            lines.append(
                f"  {where}  {dev.vid_pid}  {_access(dev.can_open):<9} {names}{serial}"
            )
            suffix = f"/{dev.serial_number}" if dev.serial_number else ""
            lines.append(f"      link = \"usb://{dev.vid_pid}{suffix}\"")
        if not shown:
            lines.append("  none found")
        if hubs:
            lines.append(f"  ({hubs} hub{'s' if hubs != 1 else ''} not shown)")
    hints = []
    if any(not p.can_open for p in serial_ports):
        hints.append(f"serial ports marked NO ACCESS: {DIALOUT_HINT}")
    if usb_devices and any(d.can_open is False and not d.is_hub for d in usb_devices):
        hints.append(
            "USB devices marked NO ACCESS: add a udev rule for them, e.g. "
            'SUBSYSTEM=="usb", ATTR{idVendor}=="VVVV", ATTR{idProduct}=="PPPP", '
            'GROUP="edc-agent", MODE="0660"'
        )
    if hints:
        lines.append("")
        lines.extend(hints)
    return "\n".join(lines) + "\n"


def ports_main(args: argparse.Namespace | None = None) -> int:
    """Print what this machine sees; exit 0 even when nothing is found."""
    serial_ports = list_serial_ports()
    usb_devices: list[UsbDeviceInfo] | None
    usb_problem = None
    try:
        usb_devices = list_usb_devices()
    except TransportError as exc:
        usb_devices, usb_problem = None, str(exc)
    print(format_ports(serial_ports, usb_devices, usb_problem), end="")
    return 0
