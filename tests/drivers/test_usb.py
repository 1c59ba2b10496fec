"""UsbTransport through pyusb's real code, on a simulated backend (tests/drivers/fake_usb.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from drivers.base import TransportState
from drivers.errors import DeviceNotFoundError, DevicePermissionError, TransportDownError
from drivers.url import UsbSpec
from drivers.usb_bulk import UsbTransport
from tests.drivers.fake_usb import PRODUCT_ID, VENDOR_ID, FakeUsbBackend, FakeUsbDevice
from tests.drivers.helpers import WAIT_S, fast_backoff, read_exactly, wait_state

# Short read timeout: the reader thread notices close() and unplug quickly.
READ_POLL_S = 0.02


def _usb(spec: UsbSpec, backend: FakeUsbBackend) -> UsbTransport:
    return UsbTransport(spec, backend, backoff=fast_backoff(), read_poll_s=READ_POLL_S)


async def test_found_by_vid_pid_data_both_ways_and_kernel_driver_detached() -> None:
    device = FakeUsbDevice(kernel_driver=True)
    backend = FakeUsbBackend(device)
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), backend) as usb:
        await wait_state(usb, TransportState.UP)
        assert device.detaches == 1 and not device.kernel_driver_active
        assert device.claimed == {0}
        await usb.write(b"\x02{\"type\":\"ping\"}\x03")
        assert bytes(device.from_host) == b"\x02{\"type\":\"ping\"}\x03"
        device.send_to_host(b"\x06")
        assert await read_exactly(usb, 1) == b"\x06"
        big = bytes(range(256)) * 64  # several bulk packets, several reads
        device.send_to_host(big)
        assert await read_exactly(usb, len(big)) == big
        detail = usb.status.detail
        assert detail["device"] == "0483:5740"
        assert detail["endpoints"] == "out 0x01, in 0x81"
        assert (detail["bus"], detail["address"], detail["interface"]) == ("1", "5", "0")
        assert usb.status.url == "usb://0483:5740"
        assert (usb.status.bytes_out, usb.status.bytes_in) == (17, 1 + len(big))
    # Closed on purpose: interface released, the kernel driver given its interface back.
    assert device.claimed == set()
    assert device.kernel_driver_active


async def test_found_by_serial_among_twins() -> None:
    other = FakeUsbDevice(serial="SN-OTHER", address=4)
    wanted = FakeUsbDevice(serial="SN-WANTED", address=7, echo=True)
    backend = FakeUsbBackend(other, wanted)
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID, "SN-WANTED"), backend) as usb:
        await wait_state(usb, TransportState.UP)
        assert usb.status.detail["address"] == "7"
        assert usb.status.detail["serial"] == "SN-WANTED"
        await usb.write(b"echo me")
        assert await read_exactly(usb, 7) == b"echo me"
        assert other.from_host == b"" and other.claimed == set()


async def test_unconfigured_device_without_kernel_driver_is_configured() -> None:
    device = FakeUsbDevice(kernel_driver=False, configured=False, echo=True)
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.UP)
        assert device.configuration == 1
        assert device.detaches == 0
        await usb.write(b"abc")
        assert await read_exactly(usb, 3) == b"abc"
    assert not device.kernel_driver_active  # we never detached one, so none is attached


async def test_unplug_reconnecting_replug_up_and_data_flows() -> None:
    device = FakeUsbDevice(kernel_driver=True)
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.UP)
        device.unplug()
        await wait_state(usb, TransportState.RECONNECTING)
        assert usb.status.last_error == "device unplugged or re-enumerated (no such device)"
        with pytest.raises(TransportDownError):
            await usb.write(b"x")
        device.replug()  # re-enumerated: new address, kernel driver bound again
        await wait_state(usb, TransportState.UP)
        assert usb.status.reconnects == 1
        assert usb.status.detail["address"] == "6"
        assert device.detaches == 2  # detached again after re-enumeration
        await usb.write(b"after")
        assert bytes(device.from_host).endswith(b"after")
        device.send_to_host(b"back")
        assert await read_exactly(usb, 4) == b"back"


async def test_write_on_an_unplugged_device_reports_the_loss() -> None:
    device = FakeUsbDevice()
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.UP)
        # Unplug with the reader thread possibly mid-read: whichever of the
        # write or the read notices first, the pipe goes RECONNECTING.
        device.unplug()
        with pytest.raises(TransportDownError):
            await usb.write(b"lost")
        await wait_state(usb, TransportState.RECONNECTING)


async def test_no_such_device_lists_what_is_attached_with_that_vendor() -> None:
    device = FakeUsbDevice(product_id=0x5741, serial="SN7")
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        assert isinstance(usb.last_exception, DeviceNotFoundError)
        assert usb.status.last_error == (
            "no such device: USB 0483:5740 is not attached; attached with vendor id 0483: "
            "0483:5741 on bus 1 address 5"
        )


async def test_no_such_serial_and_no_such_vendor() -> None:
    device = FakeUsbDevice(serial="SN1")
    spec = UsbSpec(VENDOR_ID, PRODUCT_ID, "SN2")
    async with _usb(spec, FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        assert usb.status.last_error == (
            "no such device: USB 0483:5740 serial 'SN2' is not attached; attached with vendor "
            "id 0483: 0483:5740 serial 'SN1' on bus 1 address 5"
        )
    async with _usb(UsbSpec(0x1234, 0x0001), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        assert usb.status.last_error == (
            "no such device: USB 1234:0001 is not attached (nothing with vendor id 1234 is "
            "attached)"
        )


async def test_device_appearing_later_is_picked_up() -> None:
    device = FakeUsbDevice(echo=True)
    device.unplug()
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        device.replug()
        await wait_state(usb, TransportState.UP)
        assert usb.status.reconnects == 0
        await usb.write(b"hi")
        assert await read_exactly(usb, 2) == b"hi"


@pytest.mark.parametrize("serial", [None, "SN0001"])
async def test_permission_denied_gives_the_udev_rule(serial: str | None) -> None:
    device = FakeUsbDevice(permission_denied=True)
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID, serial), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        assert isinstance(usb.last_exception, DevicePermissionError)
        error = usb.status.last_error
        assert error is not None and error.startswith("permission denied")
        assert (
            'SUBSYSTEM=="usb", ATTR{idVendor}=="0483", ATTR{idProduct}=="5740", '
            'GROUP="edc-agent", MODE="0660"'
        ) in error


async def test_interface_held_by_another_program_is_busy() -> None:
    device = FakeUsbDevice(kernel_driver=False)
    device.claimed.add(0)  # someone else's claim
    async with _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device)) as usb:
        await wait_state(usb, TransportState.RECONNECTING)
        assert usb.status.last_error is not None
        assert "is busy" in usb.status.last_error


async def test_close_during_a_slow_claim_gives_the_interface_back() -> None:
    gate = threading.Event()
    device = FakeUsbDevice(kernel_driver=True, open_gate=gate)
    usb = _usb(UsbSpec(VENDOR_ID, PRODUCT_ID), FakeUsbBackend(device))
    await usb.open()
    try:
        # The claim runs in a worker thread; wait (off the loop) until it is inside open.
        assert await asyncio.to_thread(device.opening.wait, WAIT_S)
        closing = asyncio.create_task(usb.close())
        await asyncio.sleep(0)  # close() has cancelled the supervisor and waits for the claim
        assert not closing.done()
    finally:
        gate.set()
    async with asyncio.timeout(WAIT_S):
        await closing
    assert usb.status.state is TransportState.DOWN
    assert device.claimed == set()  # the late claim was released
    assert device.kernel_driver_active  # and the kernel driver re-attached
