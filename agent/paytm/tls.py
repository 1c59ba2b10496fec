"""The TLS context of every connection to Paytm. The client's session (agent.paytm.http),
the page's connectivity test and `edc-agent certify` all build it here, so a handshake
they report as verified is one the payments would make too.
"""

from __future__ import annotations

import ssl

from agent.errors import ConfigError
from agent.paytm.settings import PaytmConfig


def ssl_context(config: PaytmConfig) -> ssl.SSLContext:
    """System CA store (plus `ca_file`), hostname checks, TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.ca_file:
        try:
            context.load_verify_locations(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError([f"paytm.ca_file: cannot load CA certificates from "
                               f"{config.ca_file!r}: {exc}"]) from None
    return context
