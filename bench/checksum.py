"""Checksum throughput: ours against the official `paytmchecksum`, same inputs, same run.

    python bench/checksum.py [--seconds S]

One operation = generate a checksum and verify it. Prints a table with the ratio
ours/theirs per mode and writes the figures to bench/results/checksum.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

import paytmchecksum  # noqa: E402

from agent.paytm.checksum import (  # noqa: E402
    MerchantKey,
    generate,
    generate_params,
    verify,
    verify_params,
)

KEY_TEXT = "ABCDEFGHIJKLMNOP"
RESULTS = Path(__file__).resolve().parent / "results" / "checksum.json"
DEFAULT_SECONDS = 1.0  # per measurement
ROUNDS = 3  # best of, to dampen noise from other processes

# A Sale body as the EDC client signs it (params mode: the top-level strings) ...
PARAMS: dict[str, str | None] = {
    "paytmMid": "TESTMID00000000000001",
    "paytmTid": "12345678",
    "transactionDateTime": "2024-01-01 10:00:00",
    "merchantTransactionId": "ORDER0001retry1",
    "merchantReferenceNo": "INV42",
    "transactionAmount": "125000",
}
# ... and the same body as JSON text, with a nested object, for json mode.
BODY_TEXT = json.dumps({**PARAMS, "merchantExtendedInfo": {"paymentMode": "ALL",
                                                          "autoAccept": "True"},
                        "displayInfo": {"Bill": "INV42", "Till": "1"}})


def _rate(op: Callable[[], None], seconds: float) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        count = 0
        batch = 200
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                op()
            count += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help="duration of each measurement (default %(default)s)")
    args = parser.parse_args(argv)
    key = MerchantKey(KEY_TEXT.encode())

    def ours_params() -> None:
        if not verify_params(PARAMS, key, generate_params(PARAMS, key)):
            raise SystemExit("ours: params round trip failed")

    def theirs_params() -> None:
        # Their verify deletes CHECKSUMHASH in place; PARAMS has none, but pass a copy anyway
        # as a real caller would have to.
        checksum = paytmchecksum.generateSignature(PARAMS, KEY_TEXT)
        if not paytmchecksum.verifySignature(dict(PARAMS), KEY_TEXT, checksum):
            raise SystemExit("theirs: params round trip failed")

    def ours_json() -> None:
        if not verify(BODY_TEXT, key, generate(BODY_TEXT, key)):
            raise SystemExit("ours: json round trip failed")

    def theirs_json() -> None:
        checksum = paytmchecksum.generateSignature(BODY_TEXT, KEY_TEXT)
        if not paytmchecksum.verifySignature(BODY_TEXT, KEY_TEXT, checksum):
            raise SystemExit("theirs: json round trip failed")

    rows = []
    for mode, ours, theirs in (("params", ours_params, theirs_params),
                               ("json", ours_json, theirs_json)):
        ours_rate = _rate(ours, args.seconds)
        theirs_rate = _rate(theirs, args.seconds)
        rows.append({"mode": mode, "ours_ops_s": round(ours_rate),
                     "theirs_ops_s": round(theirs_rate),
                     "ratio": round(ours_rate / theirs_rate, 3)})

    print(f"generate+verify operations per second (best of {ROUNDS} × {args.seconds:.1f} s)")
    print(f"{'mode':<8}{'ours':>12}{'paytmchecksum':>16}{'ours/theirs':>14}")
    for row in rows:
        print(f"{row['mode']:<8}{row['ours_ops_s']:>12,}{row['theirs_ops_s']:>16,}"
              f"{row['ratio']:>14.2f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "checksum generate+verify",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds_per_measurement": args.seconds,
        "best_of": ROUNDS,
        "results": rows,
    }, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
