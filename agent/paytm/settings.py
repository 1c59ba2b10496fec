"""What the Paytm clients are configured with: the `[paytm]` section of the agent's config.

Declared here, by the package that reads it, so the clients never import the agent's
config loader (agent/config.py loads, checks and hands over a `PaytmConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.paytm.checksum import ChecksumMode

DEFAULT_KEY_FILE = "/etc/edc-agent/merchant.key"
DEFAULT_STAGING_URL = "https://securegw-stage.paytm.in"


@dataclass(frozen=True, slots=True)
class PaytmConfig:
    mid: str = "TESTMID00000000000001"
    channel_id: str = "EDC"
    merchant_key_file: str = DEFAULT_KEY_FILE
    edc_base_url: str = DEFAULT_STAGING_URL
    pg_base_url: str = DEFAULT_STAGING_URL
    checksum_mode: ChecksumMode = ChecksumMode.PARAMS
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    ca_file: str | None = None  # extra CA bundle; the system store is always used
    void_path: str = "/ecr/void"  # reference §6: path Unconfirmed
    resend_path: str = "/order/resendpaymentrequest"  # reference §13: path Unconfirmed
    client_id: str = "C11"  # PG head.clientId: which merchant key (reference §12)
    display_name: str = ""  # shown on payment-link requests, ≤ 50 chars
