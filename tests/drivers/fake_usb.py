"""A simulated USB backend for pyusb: devices with one interface and two bulk endpoints.

pyusb's own code (usb.core.find, Device, Configuration, Interface, Endpoint,
usb.util) runs unchanged on top of `FakeUsbBackend`; only the calls a real
backend makes into libusb are played here. Each `FakeUsbDevice` is a register
bridge with interface 0 holding bulk OUT 0x01 and bulk IN 0x81. Bytes the host
writes land in `from_host` (and come back when `echo=True`); the test makes the
device send with `send_to_host()`.

`unplug()` makes every call on an open handle fail with ENODEV (as libusb does)
and hides the device from enumeration; `replug()` brings it back re-enumerated:
a new bus address, unconfigured state reset, and the kernel driver bound again.
Thread-safe: the driver reads from its own thread.
"""

from __future__ import annotations

import array
import errno
import threading
from dataclasses import dataclass
from typing import Any

import usb.backend
import usb.core

VENDOR_ID = 0x0483
PRODUCT_ID = 0x5740
EP_OUT = 0x01
EP_IN = 0x81
MAX_PACKET = 64
CONFIG_VALUE = 1

_BULK = 0x02
_GET_DESCRIPTOR = 0x06
_DESC_STRING = 0x03
_LANGID_EN_US = 0x0409
_STRING_MANUFACTURER, _STRING_PRODUCT, _STRING_SERIAL = 1, 2, 3


def _no_device() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


class FakeUsbDevice:
    """One simulated device. Test-side methods: send_to_host, unplug, replug."""

    def __init__(
        self,
        vendor_id: int = VENDOR_ID,
        product_id: int = PRODUCT_ID,
        serial: str | None = "SN0001",
        *,
        manufacturer: str | None = "EDC Labs",
        product: str | None = "Register bridge",
        bus: int = 1,
        address: int = 5,
        kernel_driver: bool = True,
        configured: bool = True,
        echo: bool = False,
        permission_denied: bool = False,
        open_gate: threading.Event | None = None,
    ) -> None:
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.serial = serial
        self.manufacturer = manufacturer
        self.product = product
        self.bus = bus
        self.address = address
        self.echo = echo
        self.permission_denied = permission_denied
        # When given, open_device() signals `opening` and blocks until the gate
        # is set: a slow device, to test close() during a claim.
        self.open_gate = open_gate
        self.opening = threading.Event()
        self._kernel_driver_at_plug = kernel_driver
        self._configured_at_plug = configured
        self.cond = threading.Condition()
        self.plugged = True
        self.generation = 0  # bumped by unplug(): handles of older generations are dead
        self.kernel_driver_active = kernel_driver
        self.configuration = CONFIG_VALUE if configured else 0
        self.claimed: set[int] = set()
        self.detaches = 0
        self.from_host = bytearray()
        self.to_host = bytearray()

    # -- test side ------------------------------------------------------------------

    def send_to_host(self, data: bytes) -> None:
        with self.cond:
            self.to_host += data
            self.cond.notify_all()

    def unplug(self) -> None:
        with self.cond:
            self.plugged = False
            self.generation += 1
            self.claimed.clear()
            self.cond.notify_all()

    def replug(self) -> None:
        with self.cond:
            self.plugged = True
            self.address += 1  # re-enumeration gives a new address
            self.kernel_driver_active = self._kernel_driver_at_plug
            self.configuration = CONFIG_VALUE if self._configured_at_plug else 0
            self.to_host.clear()
            self.cond.notify_all()

    def strings(self) -> dict[int, str | None]:
        return {
            _STRING_MANUFACTURER: self.manufacturer,
            _STRING_PRODUCT: self.product,
            _STRING_SERIAL: self.serial,
        }


@dataclass(frozen=True)
class _Ref:
    """What enumerate_devices() yields: a device as seen at one enumeration."""

    device: FakeUsbDevice
    generation: int


@dataclass(frozen=True)
class _Handle:
    device: FakeUsbDevice
    generation: int


class _Desc:
    """A descriptor: pyusb copies its fields with getattr."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


# IBackend comes from pyusb, which has no type information (it is Any to mypy).
class FakeUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, *devices: FakeUsbDevice) -> None:
        super().__init__()
        self.devices = list(devices)

    def _live(self, handle: _Handle) -> FakeUsbDevice:
        """The device behind `handle`, or ENODEV. Callers hold `device.cond`."""
        dev = handle.device
        if not dev.plugged or handle.generation != dev.generation:
            raise _no_device()
        return dev

    # -- enumeration and descriptors ------------------------------------------------------

    def enumerate_devices(self) -> list[_Ref]:
        return [_Ref(d, d.generation) for d in self.devices if d.plugged]

    def get_parent(self, dev: _Ref) -> None:
        return None

    def get_device_descriptor(self, dev: _Ref) -> _Desc:
        d = dev.device
        return _Desc(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=d.vendor_id, idProduct=d.product_id,
            bcdDevice=0x0100,
            iManufacturer=_STRING_MANUFACTURER if d.manufacturer is not None else 0,
            iProduct=_STRING_PRODUCT if d.product is not None else 0,
            iSerialNumber=_STRING_SERIAL if d.serial is not None else 0,
            bNumConfigurations=1, address=d.address, bus=d.bus, port_number=1,
            port_numbers=(1,), speed=3,
        )

    def get_configuration_descriptor(self, dev: _Ref, config: int) -> _Desc:
        if config != 0:
            raise IndexError("no such configuration")
        return _Desc(
            bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
            bConfigurationValue=CONFIG_VALUE, iConfiguration=0, bmAttributes=0x80, bMaxPower=50,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: _Ref, intf: int, alt: int, config: int) -> _Desc:
        if config != 0 or intf != 0 or alt != 0:
            raise IndexError("no such interface")
        return _Desc(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=2, bInterfaceClass=0xFF, bInterfaceSubClass=0, bInterfaceProtocol=0,
            iInterface=0, extra_descriptors=[],
        )

    def get_endpoint_descriptor(
        self, dev: _Ref, ep: int, intf: int, alt: int, config: int
    ) -> _Desc:
        if config != 0 or intf != 0 or alt != 0 or ep not in (0, 1):
            raise IndexError("no such endpoint")
        return _Desc(
            bLength=7, bDescriptorType=5, bEndpointAddress=(EP_OUT, EP_IN)[ep],
            bmAttributes=_BULK, wMaxPacketSize=MAX_PACKET, bInterval=0, bRefresh=0,
            bSynchAddress=0, extra_descriptors=[],
        )

    # -- handles and configuration ------------------------------------------------------------

    def open_device(self, dev: _Ref) -> _Handle:
        d = dev.device
        if d.open_gate is not None:
            d.opening.set()
            d.open_gate.wait()
        if not d.plugged or dev.generation != d.generation:
            raise _no_device()
        if d.permission_denied:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        return _Handle(d, d.generation)

    def close_device(self, dev_handle: _Handle) -> None:
        return None

    def get_configuration(self, dev_handle: _Handle) -> int:
        with dev_handle.device.cond:
            return self._live(dev_handle).configuration

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            if d.claimed:
                raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
            d.configuration = config_value

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        with dev_handle.device.cond:
            self._live(dev_handle)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            if d.kernel_driver_active or intf in d.claimed:
                raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
            d.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.device.cond:
            self._live(dev_handle).claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        with dev_handle.device.cond:
            return self._live(dev_handle).kernel_driver_active

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            if not d.kernel_driver_active:
                raise usb.core.USBError("Entity not found", -5, errno.ENOENT)
            d.kernel_driver_active = False
            d.detaches += 1

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            if intf in d.claimed:
                raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
            d.kernel_driver_active = True

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        with dev_handle.device.cond:
            self._live(dev_handle)

    # -- transfers -------------------------------------------------------------------------

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array.array[int], timeout: int
    ) -> int:
        chunk = data.tobytes()
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            if ep != EP_OUT or intf not in d.claimed:
                raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)
            d.from_host += chunk
            if d.echo:
                d.to_host += chunk
            d.cond.notify_all()
        return len(chunk)

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        d = dev_handle.device

        def alive() -> bool:
            return d.plugged and dev_handle.generation == d.generation

        with d.cond:
            if not alive():
                raise _no_device()
            if ep != EP_IN or intf not in d.claimed:
                raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)
            d.cond.wait_for(lambda: bool(d.to_host) or not alive(), timeout / 1000)
            if not alive():
                raise _no_device()
            if not d.to_host:
                raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
            n = min(len(buff), len(d.to_host))
            buff[:n] = array.array("B", d.to_host[:n])
            del d.to_host[:n]
            return n

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,  # pyusb's parameter names
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        with dev_handle.device.cond:
            d = self._live(dev_handle)
            strings = d.strings()
        if bRequest != _GET_DESCRIPTOR or (wValue >> 8) != _DESC_STRING:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        index = wValue & 0xFF
        if index == 0:
            body = _LANGID_EN_US.to_bytes(2, "little")
        else:
            text = strings.get(index)
            if text is None:
                raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
            body = text.encode("utf-16-le")
        payload = bytes([2 + len(body), _DESC_STRING]) + body
        n = min(len(data), len(payload))
        data[:n] = array.array("B", payload[:n])
        return n
