"""Fixtures for the Paytm tests: a running emulator on a loopback port."""

from devtools.paytm import emulator

__all__ = ["emulator"]
