"""Render every page of a built HTML documentation in headless Chromium and report what does not fit.

Usage: ``python scripts/docs_layout.py HTML_DIR [--widths 1280,800] [--chromium PATH]``.

Each page is copied with a script appended that, once the page is laid out, lists the elements of
the text column (``div.body``) that stick out of it on the right, and the code blocks, tables and
signatures whose content is wider than their own box (a horizontal scroll bar). Chromium runs it
at each window width (``--dump-dom`` prints the page after its scripts ran). Exits 1 and lists the
elements when any page has one, else prints a summary line.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Appended to each page: writes the report, as JSON, into a <pre id="layout-report">.
PROBE = """
<script>
window.addEventListener("load", () => {
  const column = document.querySelector("div.body");
  const found = [];
  if (column) {
    const right = column.getBoundingClientRect().right;
    const describe = (el) => {
      const text = (el.innerText || "").trim().split("\\n")[0].slice(0, 80);
      return el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "")
        + ": " + text;
    };
    const reported = [];
    for (const el of column.querySelectorAll("*")) {
      if (reported.some((r) => r.contains(el))) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0) continue;
      const past = Math.round(box.right - right);
      const scrolls = ["PRE", "TABLE", "DT", "DIV"].includes(el.tagName)
        && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible";
      if (past > 1 || scrolls) {
        reported.push(el);
        found.push({element: describe(el), past_column: past, hidden: el.scrollWidth - el.clientWidth});
      }
    }
  }
  const out = document.createElement("pre");
  out.id = "layout-report";
  out.textContent = JSON.stringify({column: !!column, found});
  document.body.appendChild(out);
});
</script>
"""

REPORT = re.compile(r'<pre id="layout-report">(.*?)</pre>', re.S)


def find_chromium(given: str | None) -> str:
    for name in filter(None, [given, "chromium", "chromium-browser", "google-chrome"]):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no chromium found (Debian: apt-get install chromium)")


def check(page: Path, chromium: str, width: int, profile: Path) -> dict:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # as root, as on CI machines
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    found = REPORT.search(result.stdout)
    if not found:
        raise SystemExit(f"{page.name} at {width}px: no report from chromium\n{result.stderr[-2000:]}")
    import html

    return json.loads(html.unescape(found[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--widths", default="1280,800")
    parser.add_argument("--chromium")
    args = parser.parse_args()
    chromium = find_chromium(args.chromium)
    widths = [int(w) for w in args.widths.split(",")]
    problems = 0
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(args.html, site)
        pages = sorted(p for p in site.glob("*.html") if p.name not in ("genindex.html", "search.html"))
        for page in pages:
            text = page.read_text()
            page.write_text(text.replace("</body>", PROBE + "</body>") if "</body>" in text else text + PROBE)
        for width in widths:
            for page in pages:
                report = check(page, chromium, width, Path(tmp) / "profile")
                if not report["column"]:
                    print(f"{page.name} at {width}px: no div.body text column")
                    problems += 1
                for item in report["found"]:
                    problems += 1
                    print(
                        f"{page.name} at {width}px: {item['element']!r} "
                        f"(past the column by {item['past_column']}px, {item['hidden']}px scrolled out of view)"
                    )
    print(f"{len(pages)} pages at {', '.join(f'{w}px' for w in widths)}: {problems} elements do not fit")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
