"""The emulator fixtures of tests/paytm (the client tests use them too), shared here."""

from tests.paytm.conftest import emulator, paytm

__all__ = ["emulator", "paytm"]
