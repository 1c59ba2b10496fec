"""`edc-agent certify`: the go-live check against the configured Paytm, safe by default.

    edc-agent certify --config FILE [--report FILE.md] [--sale PAISE] [--production]

Network (DNS, TCP, TLS per base URL) → EDC key, MID and checksum mode (Status Enquiry of an
id that cannot exist, params mode then JSON mode) → PG key and MID (Transaction Status of a
random order) → the clock against Paytm's answers → the answer style and unplaced fields →
with --sale, a guided sale and its void on every lane → Paytm's 10-point checklist.

Exit 0 when every check passed, 1 when one failed, 2 for a bad config or invocation. No
money moves without --sale; nothing secret is printed or written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agent.certify.answers import check_answers, check_clock
from agent.certify.checklist import checklist
from agent.certify.model import Check, Findings, Verdict
from agent.certify.network import check_network
from agent.certify.probes import check_edc, check_pg
from agent.certify.report import checklist_text, markdown, progress_line, verdict_line
from agent.certify.sale import check_sale_allowed, run_sales
from agent.config import Config, load_config
from agent.errors import ConfigError
from agent.keyfile import load_merchant_key
from agent.paytm.checksum import MerchantKey
from agent.paytm.clock import now_ist
from agent.paytm.edc import EdcClient
from agent.paytm.http import make_session
from agent.paytm.transport import PaytmPoster

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2

__all__ = ["CertifyOptions", "Check", "Findings", "Verdict", "certify", "certify_main"]


@dataclass(frozen=True, slots=True)
class CertifyOptions:
    config_path: str
    report: str | None = None
    sale_paise: str | None = None
    production: bool = False


async def certify(config: Config, key: MerchantKey, options: CertifyOptions,
                  out: TextIO) -> Findings:
    """Run every check, printing a progress line each; the findings, in order."""
    started = now_ist()
    findings = Findings(progress=lambda check: print(progress_line(check), file=out,
                                                     flush=True))
    print(f"edc-agent certify: merchant {config.paytm.mid}, EDC {config.paytm.edc_base_url}, "
          f"PG {config.paytm.pg_base_url}", file=out)
    await check_network(config.paytm, findings)
    async with make_session(config.paytm) as session:
        poster = PaytmPoster(session, config.paytm)
        observations = await check_edc(config, poster, key, findings)
        observations += await check_pg(config, poster, key, findings)
        check_clock(observations, findings)
        check_answers(observations, findings)
        if options.sale_paise is None:
            findings.add("Sale", "Guided sale and void", Verdict.SKIP,
                         "not run: no money moves without --sale",
                         [f"To run one guided sale and its void on every lane's terminal: "
                          f"edc-agent certify --config {options.config_path} --sale 100"])
        else:
            client = EdcClient(session, config.paytm, key)
            await run_sales(config, client, options.sale_paise,
                            lambda text: print(text, file=out, flush=True), findings)
    points = checklist(config, findings)
    print("", file=out)
    for line in checklist_text(points):
        print(line, file=out)
    print("", file=out)
    print(verdict_line(findings), file=out)
    if options.report is not None:
        text = markdown(findings, points, mid=config.paytm.mid,
                        config_path=options.config_path, edc_url=config.paytm.edc_base_url,
                        pg_url=config.paytm.pg_base_url, started=started)
        await asyncio.to_thread(Path(options.report).write_text, text, encoding="utf-8")
        print(f"report written to {options.report}", file=out)
    return findings


def prepare(options: CertifyOptions) -> tuple[Config, MerchantKey]:
    """The config and key, or ConfigError (exit 2) with every problem."""
    config = load_config(options.config_path)
    key = load_merchant_key(config.paytm.merchant_key_file)
    if options.sale_paise is not None:
        check_sale_allowed(config, options.sale_paise, options.production)
    return config, key


def certify_main(args: argparse.Namespace) -> int:
    options = CertifyOptions(config_path=args.config, report=args.report,
                             sale_paise=args.sale, production=args.production)
    try:
        config, key = prepare(options)
    except ConfigError as exc:
        print(f"{options.config_path}: cannot certify:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        findings = asyncio.run(certify(config, key, options, sys.stdout))
    except OSError as exc:  # the report file could not be written
        print(f"edc-agent certify: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return EXIT_FAILED if findings.failed else EXIT_PASSED
