"""`edc-agent ports`: listing, formatting, and the command itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers import discovery
from drivers.discovery import (
    SerialPortInfo,
    UsbDeviceInfo,
    format_ports,
    list_usb_devices,
    ports_main,
)
from drivers.errors import TransportError
from tests.drivers.fake_usb import FakeUsbBackend, FakeUsbDevice

REPO = Path(__file__).resolve().parents[2]


def test_usb_devices_with_strings_through_pyusb() -> None:
    backend = FakeUsbBackend(
        FakeUsbDevice(serial="SN42", address=9),
        FakeUsbDevice(vendor_id=0x1A86, product_id=0x7523, serial=None, manufacturer=None,
                      product="USB Serial", bus=2, address=3),
    )
    devices = list_usb_devices(backend)
    assert [(d.vid_pid, d.bus, d.address) for d in devices] == [
        ("0483:5740", 1, 9), ("1a86:7523", 2, 3),
    ]
    first, second = devices
    assert (first.manufacturer, first.product, first.serial_number) == (
        "EDC Labs", "Register bridge", "SN42",
    )
    assert (second.manufacturer, second.product, second.serial_number) == (
        None, "USB Serial", None,
    )


def test_unreadable_strings_are_left_out() -> None:
    devices = list_usb_devices(FakeUsbBackend(FakeUsbDevice(permission_denied=True)))
    assert devices[0].serial_number is None and devices[0].product is None


def test_format_lists_links_and_hints() -> None:
    ports = [
        SerialPortInfo("/dev/ttyUSB0", "FT232R USB UART", "0403:6001", "A1",
                       ("/dev/serial/by-id/usb-FTDI_FT232R-if00-port0",), can_open=False),
    ]
    usb = [
        UsbDeviceInfo(0x0483, 0x5740, 1, 4, "EDC Labs", "Register bridge", "SN1", False,
                      "/dev/bus/usb/001/004", can_open=False),
        UsbDeviceInfo(0x1D6B, 0x0002, 1, 1, None, None, None, True, None, None),
    ]
    text = format_ports(ports, usb)
    assert "/dev/ttyUSB0" in text and "NO ACCESS" in text
    assert 'link = "serial:///dev/serial/by-id/usb-FTDI_FT232R-if00-port0?baudrate=115200"' in text
    assert 'link = "usb://0483:5740/SN1"' in text
    assert "(1 hub not shown)" in text
    assert "dialout group" in text
    assert 'ATTR{idVendor}=="VVVV"' in text


def test_format_nothing_found_and_no_usb_backend() -> None:
    text = format_ports([], None, "no USB backend: libusb is not installed")
    assert "Serial ports\n  none found" in text
    assert "cannot list USB devices: no USB backend: libusb is not installed" in text
    assert "USB devices\n  none found" in format_ports([], [])


def test_ports_main_without_a_usb_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_backend(backend: object = None) -> list[UsbDeviceInfo]:
        raise TransportError("no USB backend: libusb is not installed (install libusb-1.0-0)")

    monkeypatch.setattr(discovery, "list_usb_devices", no_backend)
    monkeypatch.setattr(discovery, "list_serial_ports", lambda: [])
    assert ports_main(None) == 0
    out = capsys.readouterr().out
    assert "cannot list USB devices: no USB backend" in out


def test_edc_agent_ports_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "ports"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Serial ports" in done.stdout and "USB devices" in done.stdout
    assert "Traceback" not in done.stderr


def test_missing_libusb_is_a_clear_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import usb.backend.libusb0
    import usb.backend.libusb1
    import usb.backend.openusb

    for module in (usb.backend.libusb1, usb.backend.openusb, usb.backend.libusb0):
        monkeypatch.setattr(module, "get_backend", lambda *args, **kwargs: None)
    with pytest.raises(TransportError, match="no USB backend: libusb is not installed"):
        list_usb_devices()
