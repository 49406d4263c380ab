"""Refreshes the screenshots of ``docs/tour.md``: ``make docs-screens``, or
``python scripts/docs_screens.py [--no-run]`` from the repository root.

Runs ``tests/e2e/test_screenshots.py`` (real Chromium; ``CHROMIUM_PATH``, default
``/usr/bin/chromium``), which saves every main page at 1280×800 and 390×844 under
``var/e2e/screens/``, then copies the pages of the tour into ``docs/screens/``: the laptop ones
downscaled to 960 px wide, the phone ones (taken at 2×) to 390 px, each cut at a height that keeps
the top of the page, as optimised 256-colour PNGs, so the whole set stays well under 3 MB in git.
``--no-run`` only copies what the last run left in ``var/e2e/screens/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "var" / "e2e" / "screens"
TARGET = ROOT / "docs" / "screens"
TEST = "tests/e2e/test_screenshots.py"

# The pages of docs/tour.md, in its order.
TOUR = ["front", "store", "checkout", "success", "library", "orders", "order", "products", "analytics", "balance"]
WIDTHS = {"desktop": 960, "phone": 390}
MAX_HEIGHTS = {"desktop": 1400, "phone": 1700}
BUDGET_BYTES = 3_000_000


def run_test() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.setdefault("CHROMIUM_PATH", "/usr/bin/chromium")
    env["REQUIRE_BROWSER"] = "1"  # a missing browser is a failure here, not a skip
    command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)  # noqa: S603 - a fixed command line


def shrink(source: Path, target: Path, *, width: int, max_height: int) -> int:
    """Writes ``source`` scaled to ``width`` and cut at ``max_height``; returns the file's size."""
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    height = round(rgb.height * width / rgb.width)
    small = rgb.resize((width, height), Image.Resampling.LANCZOS)
    if height > max_height:
        small = small.crop((0, 0, width, max_height))
    small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, format="PNG", optimize=True)
    return target.stat().st_size


def copy_tour() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in TOUR:
        for size, width in WIDTHS.items():
            source = SOURCE / f"{name}-{size}.png"
            if not source.exists():
                raise SystemExit(f"{source} is missing: run without --no-run first")
            total += shrink(source, TARGET / source.name, width=width, max_height=MAX_HEIGHTS[size])
    print(f"{len(TOUR) * len(WIDTHS)} screenshots in {TARGET.relative_to(ROOT)}: {total / 1_000_000:.2f} MB")
    if total > BUDGET_BYTES:
        raise SystemExit(f"the screenshots take {total} bytes, over the budget of {BUDGET_BYTES}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="copy the last run's screenshots only")
    args = parser.parse_args()
    if not args.no_run:
        run_test()
    copy_tour()


if __name__ == "__main__":
    main()
