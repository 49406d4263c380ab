"""docs/tour.md (issue 14): every screenshot it shows is in docs/screens/, every PNG there is shown,
and the set stays small enough for git (``scripts/docs_screens.py`` makes them)."""

import re
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_tour_shows_every_committed_screenshot_and_no_missing_one() -> None:
    shown = set(re.findall(r'src="screens/([a-z-]+\.png)"', (DOCS / "tour.md").read_text(encoding="utf-8")))
    committed = {path.name for path in (DOCS / "screens").glob("*.png")}
    assert shown, "docs/tour.md shows no screenshot"
    assert shown == committed
    for name in committed:
        page = name.removesuffix(".png").rsplit("-", 1)[0]
        assert {f"{page}-desktop.png", f"{page}-phone.png"} <= committed, f"{page} lacks a size"


def test_the_screenshots_are_small_real_images() -> None:
    files = list((DOCS / "screens").glob("*.png"))
    assert sum(path.stat().st_size for path in files) < 3_000_000
    for path in files:
        with Image.open(path) as image:
            width, height = image.size
        assert width == (960 if path.name.endswith("-desktop.png") else 390), path.name
        assert 300 <= height <= 1700, path.name
