"""An automated accessibility check for the browser tests: axe-core, vendored, run inside the page.

``assert_accessible(page)`` evaluates ``tests/e2e/vendor/axe-core/axe.min.js`` (from the npm registry;
see the README there for the version) into the page that Playwright has open, runs
``axe.run(document, {resultTypes: ['violations']})`` and fails the test with a readable list of every
violation whose impact is serious or critical: its rule id, impact, help text and link, and the first
few elements it found. Minor and moderate findings are returned, not failed on. Nothing is fetched
from the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_PATH = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
TARGETS_SHOWN = 5

_RUN_AXE = """
async (options) => {
  const results = await window.axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => Array.isArray(t) ? t.join(' >>> ') : String(t)).join(' '),
      summary: n.failureSummary || '',
      html: n.html,
    })),
  }));
}
"""


def axe_violations(page: Any, *, rules: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every axe violation on ``page`` as it is now (all impacts). ``rules`` switches rules off or on,
    e.g. ``{"region": {"enabled": False}}``."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, like the check itself: the site's
        # Content-Security-Policy refuses inline scripts, which add_script_tag would insert, and
        # the browser tests keep that policy on (no bypass_csp) so that they see what buyers see.
        page.evaluate(f"() => {{ {AXE_PATH.read_text(encoding='utf-8')}\n}}")
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if rules:
        options["rules"] = rules
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, options)
    return violations


def format_violations(violations: list[dict[str, Any]], *, where: str = "") -> str:
    lines = [f"{len(violations)} serious/critical accessibility violation(s){' on ' + where if where else ''}:"]
    for violation in violations:
        nodes = violation["nodes"]
        lines.append(f"- {violation['id']} [{violation['impact']}]: {violation['help']} ({violation['helpUrl']})")
        for node in nodes[:TARGETS_SHOWN]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary[:300]}")
        if len(nodes) > TARGETS_SHOWN:
            lines.append(f"    ... and {len(nodes) - TARGETS_SHOWN} more element(s)")
    return "\n".join(lines)


def assert_accessible(page: Any, *, where: str = "", rules: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fails the test if axe finds a serious or critical violation on ``page``; returns the others
    (minor and moderate) for a test that wants to look at them."""
    violations = axe_violations(page, rules=rules)
    failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    if failing:
        raise AssertionError(format_violations(failing, where=where or page.url))
    return [v for v in violations if v.get("impact") not in FAILING_IMPACTS]
