"""USB driver: one bulk OUT and one bulk IN endpoint of the device matched by vid:pid[:serial].

pyusb is blocking, so USB calls never run on the event loop: finding and
claiming the device and each write run in a worker thread (asyncio.to_thread);
reads run in one dedicated thread per connection that reads with a short
timeout (so `close()` is prompt) and hands every chunk to the loop with
`call_soon_threadsafe`. State changes happen on the loop only.

When the device is unplugged or re-enumerates, transfers fail with ENODEV: the
driver releases the interface, disposes pyusb's handle and looks the device up
again with backoff; a re-enumerated device has a new bus address, so it is
found again by its ids (and serial), not by address.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import usb.core
import usb.util

from drivers.base import Backoff, TransportStatus
from drivers.errors import (
    DeviceNotFoundError,
    DevicePermissionError,
    TransportDownError,
    TransportError,
)
from drivers.pipe import PipeTransport
from drivers.url import UsbSpec

logger = logging.getLogger(__name__)

# The reader thread's bulk read returns at least this often, so close() and
# reconnects never wait longer for it.
USB_READ_POLL_S = 0.2
# A bulk write the device does not take within this time fails.
USB_WRITE_TIMEOUT_S = 2.0
# One bulk read asks for up to this many bytes (rounded up to whole packets,
# so a device sending full packets never overflows our buffer).
USB_READ_CHUNK = 4096

UDEV_RULE_FILE = "/etc/udev/rules.d/70-edc-agent.rules"


def vid_pid(vendor_id: int, product_id: int) -> str:
    return f"{vendor_id:04x}:{product_id:04x}"


def udev_hint(vendor_id: int, product_id: int) -> str:
    return (
        f"allow the agent's user to use it with a udev rule, e.g. in {UDEV_RULE_FILE}: "
        f'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vendor_id:04x}", '
        f'ATTR{{idProduct}}=="{product_id:04x}", GROUP="edc-agent", MODE="0660" '
        "then run `udevadm control --reload && udevadm trigger` and replug the device"
    )


@contextlib.contextmanager
def _quiet_usb_logger() -> Iterator[None]:
    # pyusb logs a missing libusb at ERROR with no handler of ours attached;
    # we report that ourselves, in words.
    usb_logger = logging.getLogger("usb")
    level = usb_logger.level
    usb_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        usb_logger.setLevel(level)


def default_backend() -> Any:
    """The first of libusb-1.0, OpenUSB, libusb-0.1 that loads, as `usb.core.find` picks."""
    import usb.backend.libusb0
    import usb.backend.libusb1
    import usb.backend.openusb

    with _quiet_usb_logger():
        for module in (usb.backend.libusb1, usb.backend.openusb, usb.backend.libusb0):
            backend = module.get_backend()
            if backend is not None:
                return backend
    raise TransportError(
        "no USB backend: libusb is not installed (install the libusb-1.0-0 package)"
    )


def read_string(dev: Any, index: int) -> str | None:
    """A string descriptor (serial number, product...), None when the device has none.

    Unlike pyusb's `dev.serial_number`, which turns "access denied" into a
    ValueError about language ids, this raises the USBError with its errno.
    """
    if not index:
        return None
    langids = usb.util.get_langids(dev)
    if not langids:
        return None
    text: str = usb.util.get_string(dev, index, langids[0])
    return text


def is_permission_error(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM)


def _is_gone(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENODEV, errno.ENOENT, errno.ENXIO)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, usb.core.USBTimeoutError) or (
        getattr(exc, "errno", None) == errno.ETIMEDOUT
    )


@dataclass(eq=False)
class _Claim:
    """A device found, configured and claimed; owned by one connection."""

    dev: Any  # usb.core.Device
    interface: int
    ep_out: Any  # usb.core.Endpoint
    ep_in: Any
    detached: bool  # we detached a kernel driver from `interface`
    stop: threading.Event = field(default_factory=threading.Event)
    may_read: threading.Event = field(default_factory=threading.Event)
    reader_done: asyncio.Future[None] | None = None


class UsbTransport(PipeTransport):
    """Bulk endpoints of a USB device; `backend` is a pyusb backend (tests pass a simulated one)."""

    def __init__(
        self,
        spec: UsbSpec,
        backend: Any = None,
        *,
        url: str | None = None,
        backoff: Backoff | None = None,
        read_poll_s: float = USB_READ_POLL_S,
        write_timeout_s: float = USB_WRITE_TIMEOUT_S,
    ) -> None:
        ids = vid_pid(spec.vendor_id, spec.product_id)
        detail = {"device": ids}
        if spec.serial:
            detail["serial"] = spec.serial
        status = TransportStatus(
            url=url or f"usb://{ids}" + (f"/{spec.serial}" if spec.serial else ""),
            kind="usb",
            detail=detail,
        )
        super().__init__(status, backoff)
        self.spec = spec
        self._backend = backend
        self._read_poll_s = read_poll_s
        self._write_timeout_s = write_timeout_s
        self._claim: _Claim | None = None
        self._name = ids + (f" serial {spec.serial!r}" if spec.serial else "")

    # -- connect / disconnect -------------------------------------------------------

    async def _connect(self) -> None:
        claim_task = asyncio.ensure_future(asyncio.to_thread(self._find_and_claim))
        try:
            claim = await asyncio.shield(claim_task)
        except asyncio.CancelledError:
            # The claim runs on in its thread: wait for it and give back what
            # it got, or the interface would stay claimed after close().
            with contextlib.suppress(Exception):
                late = await claim_task
                await asyncio.to_thread(_release, late, True)
            raise
        loop = asyncio.get_running_loop()
        claim.reader_done = loop.create_future()
        claim.may_read.set()
        self._claim = claim
        dev = claim.dev
        self.status.detail.update(
            {
                "bus": str(dev.bus),
                "address": str(dev.address),
                "interface": str(claim.interface),
                "endpoints": f"out 0x{claim.ep_out.bEndpointAddress:02x}, "
                f"in 0x{claim.ep_in.bEndpointAddress:02x}",
            }
        )
        thread = threading.Thread(
            target=self._read_loop,
            args=(claim, loop),
            name=f"usb-read {self._name}",
            daemon=True,  # never keeps the process alive; close() stops it anyway
        )
        try:
            thread.start()
        except BaseException:
            _resolve(claim.reader_done)  # no thread: nothing for _disconnect() to wait for
            raise

    async def _disconnect(self) -> None:
        claim, self._claim = self._claim, None
        if claim is None:
            return
        claim.stop.set()
        claim.may_read.set()
        if claim.reader_done is not None:
            # At most one read timeout (read_poll_s) away.
            await claim.reader_done
        # Give the interface back to its kernel driver only when we stop on
        # purpose; after an unplug there is nothing to give back.
        await asyncio.to_thread(_release, claim, self._closed)

    def _find_and_claim(self) -> _Claim:  # runs in a worker thread
        backend = self._backend if self._backend is not None else default_backend()
        spec = self.spec
        try:
            candidates = list(
                usb.core.find(
                    find_all=True, backend=backend, idVendor=spec.vendor_id,
                    idProduct=spec.product_id,
                )
            )
        except usb.core.USBError as exc:
            raise TransportError(f"cannot list USB devices: {exc}") from exc
        chosen: Any = None
        denied: Any = None  # a candidate whose serial number we may not read
        for dev in candidates:
            if chosen is None:
                if spec.serial is None:
                    chosen = dev
                    continue
                try:
                    serial = read_string(dev, dev.iSerialNumber)
                except usb.core.USBError as exc:
                    if is_permission_error(exc):
                        denied = denied if denied is not None else dev
                    else:
                        logger.debug("USB %s: cannot read a serial number: %s", self._name, exc)
                else:
                    if serial == spec.serial:
                        chosen = dev
                        continue
            dispose(dev)
        if chosen is None:
            if denied is not None:
                hint = udev_hint(spec.vendor_id, spec.product_id)
                raise DevicePermissionError(
                    f"permission denied reading the serial number of USB {self._name} "
                    f"(bus {denied.bus} address {denied.address}): {hint}"
                )
            raise DeviceNotFoundError(self._not_found_text(backend))
        try:
            return self._claim_device(chosen)
        except BaseException:
            dispose(chosen)
            raise

    def _not_found_text(self, backend: Any) -> str:
        spec = self.spec
        text = f"no such device: USB {self._name} is not attached"
        try:
            same_vendor = list(
                usb.core.find(find_all=True, backend=backend, idVendor=spec.vendor_id)
            )
        except usb.core.USBError:
            return text
        if not same_vendor:
            return f"{text} (nothing with vendor id {spec.vendor_id:04x} is attached)"
        seen = []
        for dev in same_vendor:
            entry = vid_pid(dev.idVendor, dev.idProduct)
            if spec.serial is not None:
                with contextlib.suppress(usb.core.USBError, ValueError, NotImplementedError):
                    entry += f" serial {read_string(dev, dev.iSerialNumber)!r}"
            seen.append(f"{entry} on bus {dev.bus} address {dev.address}")
            dispose(dev)
        return f"{text}; attached with vendor id {spec.vendor_id:04x}: " + ", ".join(seen)

    def _claim_device(self, dev: Any) -> _Claim:
        where = f"USB {self._name} (bus {dev.bus} address {dev.address})"
        try:
            try:
                cfg = dev.get_active_configuration()
            except usb.core.USBError as exc:
                if is_permission_error(exc) or _is_gone(exc):
                    raise
                cfg = None  # unconfigured ("Configuration not set")
            if cfg is None:
                dev.set_configuration()
                cfg = dev.get_active_configuration()
            intf, ep_out, ep_in = _bulk_pair(cfg, where)
            number = int(intf.bInterfaceNumber)
            detached = False
            try:
                if dev.is_kernel_driver_active(number):
                    # e.g. cdc_acm or a vendor driver bound at plug-in: it
                    # owns the interface until we take it.
                    dev.detach_kernel_driver(number)
                    detached = True
                    logger.info("%s: detached the kernel driver from interface %d", where, number)
            except NotImplementedError:
                pass  # the backend cannot tell (or has no kernel drivers)
            usb.util.claim_interface(dev, number)
            if intf.bAlternateSetting != 0:
                intf.set_altsetting()
        except usb.core.USBError as exc:
            raise self._open_error(where, exc) from exc
        return _Claim(dev=dev, interface=number, ep_out=ep_out, ep_in=ep_in, detached=detached)

    def _open_error(self, where: str, exc: usb.core.USBError) -> TransportError:
        if is_permission_error(exc):
            return DevicePermissionError(
                f"permission denied opening {where}: "
                f"{udev_hint(self.spec.vendor_id, self.spec.product_id)}"
            )
        if _is_gone(exc):
            return DeviceNotFoundError(f"no such device: {where} disappeared while opening it")
        if getattr(exc, "errno", None) == errno.EBUSY:
            return TransportError(
                f"{where} is busy: another program (or a kernel driver we could not detach) "
                "holds its interface"
            )
        return TransportError(f"cannot open {where}: {exc}")

    # -- data ---------------------------------------------------------------------------

    def _read_loop(self, claim: _Claim, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread: blocking bulk reads, results posted to the loop."""
        packet = max(int(claim.ep_in.wMaxPacketSize), 1)
        size = -(-USB_READ_CHUNK // packet) * packet
        timeout_ms = max(int(self._read_poll_s * 1000), 1)
        try:
            while not claim.stop.is_set():
                # Flow control: while the loop's buffer is full, do not read.
                if not claim.may_read.wait(self._read_poll_s):
                    continue
                try:
                    data = claim.ep_in.read(size, timeout=timeout_ms)
                except usb.core.USBError as exc:
                    if _is_timeout(exc):
                        continue
                    if not claim.stop.is_set():
                        _post(loop, self._lost_from_thread, claim, _usb_loss_text(exc))
                    return
                except Exception as exc:  # a backend bug must not kill the lane silently
                    logger.exception("%s: unexpected error reading USB", self.status.url)
                    _post(loop, self._lost_from_thread, claim, f"read failed: {exc!r}")
                    return
                if len(data):
                    _post(loop, self._feed_from_thread, claim, bytes(data))
        finally:
            done = claim.reader_done
            if done is not None:
                _post(loop, _resolve, done)

    def _feed_from_thread(self, claim: _Claim, data: bytes) -> None:
        if claim is self._claim:  # not a late chunk of a connection already dropped
            self._feed(data)

    def _lost_from_thread(self, claim: _Claim, reason: str) -> None:
        if claim is self._claim:
            self._connection_lost(reason)

    async def _send(self, data: bytes) -> None:
        claim = self._claim
        if claim is None:
            raise TransportDownError(f"USB {self._name}: not connected")
        timeout_ms = max(int(self._write_timeout_s * 1000), 1)
        sent = 0
        while sent < len(data):
            try:
                n = await asyncio.to_thread(claim.ep_out.write, data[sent:], timeout_ms)
            except usb.core.USBError as exc:
                if _is_timeout(exc):
                    raise TransportDownError(
                        f"USB {self._name}: write timed out after {self._write_timeout_s:g} s "
                        "(the device is not taking data)"
                    ) from exc
                reason = _usb_loss_text(exc)
                if claim is self._claim:
                    self._connection_lost(reason)
                raise TransportDownError(f"USB {self._name}: {reason}") from exc
            sent += int(n)
            self._count_out(int(n))

    def _pause_reading(self) -> None:
        if self._claim is not None:
            self._claim.may_read.clear()

    def _resume_reading(self) -> None:
        if self._claim is not None:
            self._claim.may_read.set()


def _bulk_pair(cfg: Any, where: str) -> tuple[Any, Any, Any]:
    """The first interface with a bulk OUT and a bulk IN endpoint, and those endpoints."""
    for intf in cfg:
        ep_out = ep_in = None
        for ep in intf:
            if usb.util.endpoint_type(ep.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
                continue
            if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_OUT:
                ep_out = ep_out or ep
            else:
                ep_in = ep_in or ep
        if ep_out is not None and ep_in is not None:
            return intf, ep_out, ep_in
    raise TransportError(f"{where} has no interface with a bulk OUT and a bulk IN endpoint")


def _usb_loss_text(exc: BaseException) -> str:
    if _is_gone(exc):
        return "device unplugged or re-enumerated (no such device)"
    return f"transfer failed: {exc}"


def _release(claim: _Claim, reattach: bool) -> None:  # runs in a worker thread
    dev = claim.dev
    with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
        usb.util.release_interface(dev, claim.interface)
    if reattach and claim.detached:
        with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
            dev.attach_kernel_driver(claim.interface)
    dispose(dev)


def dispose(dev: Any) -> None:
    """Close pyusb's handle on `dev` and forget its claims; never raises."""
    with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
        usb.util.dispose_resources(dev)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    # From the reader thread. The loop may already be closed if the agent
    # stopped without closing the transport; then nobody is listening anyway.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)
