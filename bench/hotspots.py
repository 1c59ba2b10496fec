"""Hot spots from a py-spy profile in collapsed-stack form (`py-spy record --format raw`).

    python bench/hotspots.py PROFILE [--top 25] [--ours]

Prints, per function, the share of samples where it is on the stack (inclusive) and
where it is the innermost frame (self). --ours keeps only agent/ and drivers/ frames
in the inclusive list, which is what to read to find what in our code costs time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::(?P<line>\d+))?\)$")


def _label(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file")
    for root in ("/agent/", "/drivers/", "/bench/", "site-packages/", "/lib/python3"):
        i = path.find(root)
        if i >= 0:
            path = path[i + 1:] if root.startswith("/") else path[i + len(root):]
            break
    return f"{m.group('func')} ({path})"


def load(path: Path) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(f) for f in stack.split(";") if f]
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += count
        for label in set(frames):
            inclusive[label] += count
        if frames:
            own[frames[-1]] += count
    return inclusive, own, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--ours", action="store_true",
                        help="inclusive list: only agent/ and drivers/ functions")
    args = parser.parse_args()
    inclusive, own, total = load(args.profile)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples\n\ninclusive (on the stack):")
    shown = 0
    for label, count in inclusive.most_common():
        if args.ours and "(agent/" not in label and "(drivers/" not in label:
            continue
        print(f"  {100 * count / total:5.1f}%  {label}")
        shown += 1
        if shown >= args.top:
            break
    print("\nself (innermost frame):")
    for label, count in own.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
