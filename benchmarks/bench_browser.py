"""Browser benchmark: tokens of browser_snapshot against Playwright's own aria_snapshot()
and against a screenshot, on three local pages (a form, a long list, an article).

Starts a headless Chromium through the browser family's own route 2 (deskloop's profile,
`--remote-debugging-port=0`, DevToolsActivePort) and a loopback HTTP server for the pages.
Tokens are cl100k_base (deskloop.screen.tokens); a screenshot costs width × height / 750
after the downscale. Prints figures and ratios; asserts nothing. Target (issue 12):
browser_snapshot ≤ 0.5× the aria snapshot, median of the three pages.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.server
import io
import shutil
import statistics
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from deskloop.screen.observation import DEFAULT_BUDGET
from deskloop.screen.screenshot import make_screenshot
from deskloop.screen.tokens import count_tokens, tokenizer_name
from deskloop.screen.tree import Box
from deskloop.settings import BrowserSettings, Paths
from deskloop.tools.browser.attach import start_own_browser
from deskloop.tools.browser.connection import BrowserConnection

CHROMIUM = "/usr/bin/chromium"
# Quiet and self-contained: no sandbox (runs as root here), no traffic of its own.
HEADLESS_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,800",
]
WORDS = ["the", "agent", "reads", "each", "page", "through", "its", "accessibility", "tree", "and", "acts", "on", "elements", "by", "reference", "while", "a", "person", "watches", "what", "it", "does", "and", "why", "the", "budget", "keeps", "prompts", "small", "enough", "for", "a", "local", "model", "that", "runs", "on", "an", "ordinary", "laptop", "without", "a", "graphics", "card"]


def _sentence(seed: int, length: int) -> str:
    words = [WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(length)]
    return " ".join(words).capitalize() + "."


def form_page() -> str:
    countries = "".join(
        f"<option{' selected' if name == 'Portugal' else ''}>{name}</option>"
        for name in (
            "Austria", "Belgium", "Canada", "Denmark", "Estonia", "Finland", "France",
            "Germany", "Ireland", "Italy", "Japan", "Portugal", "Spain", "Sweden",
        )
    )
    nav = "".join(f'<li><a href="/{n.lower()}">{n}</a></li>' for n in
                  ("Home", "Shop", "Orders", "Help", "Account"))
    return f"""<!doctype html><title>Checkout</title>
<header><nav aria-label="Main"><ul>{nav}</ul></nav></header>
<main><h1>Checkout</h1>
<form action="/done">
<fieldset><legend>Contact</legend>
<div><label for=name>Full name</label><input id=name autocomplete=name>
<small>As printed on your card</small></div>
<div><label for=mail>Email</label><input id=mail type=email placeholder="you@example.org"></div>
<div><label for=phone>Phone</label><input id=phone type=tel></div></fieldset>
<fieldset><legend>Delivery</legend>
<div><label for=street>Street</label><input id=street></div>
<div><label for=city>City</label><input id=city></div>
<div><label for=zip>Postcode</label><input id=zip></div>
<div><label for=country>Country</label><select id=country>{countries}</select></div>
<div role=radiogroup aria-label="Speed">
<label><input type=radio name=speed checked> Standard (3–5 days)</label>
<label><input type=radio name=speed> Express (1 day)</label>
<label><input type=radio name=speed> Pick up in store</label></div></fieldset>
<fieldset><legend>Extras</legend>
<label><input type=checkbox> Gift wrap</label>
<label><input type=checkbox checked> Email me the receipt</label>
<div><label for=notes>Notes for the courier</label><textarea id=notes></textarea></div>
</fieldset>
<p>By placing the order you accept the <a href="/terms">terms of sale</a>.</p>
<button type=button>Back to cart</button> <button type=submit>Place order</button>
</form></main>
<footer><a href="/privacy">Privacy</a> · <a href="/contact">Contact</a></footer>"""


def list_page(count: int = 200) -> str:
    items = "".join(
        f'<li><a href="/item/{i}">Item {i}: {html.escape(_sentence(i, 4))}</a> '
        f"<span>€{(i * 37) % 90 + 10}.00</span></li>"
        for i in range(1, count + 1)
    )
    return f"""<!doctype html><title>Catalogue</title>
<main><h1>Catalogue</h1>
<form role=search><label>Search <input type=search></label><button>Go</button></form>
<ul aria-label="Products">{items}</ul>
<nav aria-label="Pages"><a href="?p=1">Previous</a> <a href="?p=3">Next</a></nav></main>"""


def article_page(paragraphs: int = 24) -> str:
    body = []
    for i in range(paragraphs):
        if i % 6 == 0:
            body.append(f"<h2>Part {i // 6 + 1}</h2>")
        link = f' See <a href="/ref/{i}">note {i}</a>.' if i % 4 == 1 else ""
        body.append(f"<p>{_sentence(i, 60)}{link}</p>")
    return f"""<!doctype html><title>An article</title>
<header><a href="/">The Local Review</a></header>
<main><article><h1>How small models drive desktops</h1>
<p><em>By A. Writer, 30 November 2026</em></p>{"".join(body)}</article></main>
<footer><a href="/about">About</a></footer>"""


PAGES = {"form": form_page, "list": list_page, "article": article_page}


@contextmanager
def serve(pages: dict[str, str]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.strip("/").split("?")[0], "<title>404</title>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class PageFigures:
    page: str
    ours: int
    aria: int
    aria_ai: int
    screenshot: int
    controls: int
    controls_shown: int


async def measure(base: str, home: Path, budget: int, show: bool) -> list[PageFigures]:
    # Chromium ends with this script even if it is killed (deskloop's own browser is
    # started to outlive deskloop; a benchmark's must not).
    wrapper = home / "chromium-for-bench"
    die_with_parent = "setpriv --pdeathsig TERM " if shutil.which("setpriv") else ""
    wrapper.write_text(f'#!/bin/sh\nexec {die_with_parent}{CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    settings = BrowserSettings(executable=str(wrapper), arguments=HEADLESS_ARGS)
    where = Paths(home / "config", home / "data", home / "cache")
    endpoint, process = await start_own_browser(settings, where)
    connection = await BrowserConnection.connect(endpoint, started=process, budget=budget)
    figures = []
    try:
        page = await connection.current()
        for name in PAGES:
            await page.goto(f"{base}/{name}", wait_until="load")
            snapshot = await connection.snapshot(page)
            ours = snapshot.render(budget)
            png = await page.screenshot(type="png")
            image = Image.open(io.BytesIO(png)).convert("RGB")
            shot = make_screenshot(image, Box(0, 0, image.width, image.height))
            controls = [line for line in snapshot.lines if line.ref]
            figures.append(PageFigures(
                page=name,
                ours=count_tokens(ours),
                aria=count_tokens(await page.aria_snapshot()),
                aria_ai=count_tokens(await page.aria_snapshot(mode="ai")),
                screenshot=shot.tokens,
                controls=len(controls),
                controls_shown=sum(1 for line in controls if f"[ref={line.ref}]" in ours),
            ))
            if show:
                print(f"--- {name}: browser_snapshot ---\n{ours}\n")
    finally:
        await connection.close()
        process.terminate()
        process.wait(timeout=10)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--quiet", action="store_true", help="figures only, no snapshots")
    args = parser.parse_args()
    pages = {name: build() for name, build in PAGES.items()}
    with (
        tempfile.TemporaryDirectory(prefix="deskloop-bench-browser-") as home,
        serve(pages) as base,
    ):
        figures = asyncio.run(measure(base, Path(home), args.budget, not args.quiet))
    print(f"tokens: {tokenizer_name()}; budget {args.budget}; screenshot of the 1280x800 viewport")
    print(f"{'page':8} {'ours':>5} {'aria':>6} {'aria ai':>8} {'shot':>5} {'ours/aria':>10} "
          f"{'ours/aria ai':>13} {'ours/shot':>10}  controls with a ref on view")
    for row in figures:
        print(
            f"{row.page:8} {row.ours:5} {row.aria:6} {row.aria_ai:8} {row.screenshot:5} "
            f"{row.ours / row.aria:10.2f} {row.ours / row.aria_ai:13.2f} "
            f"{row.ours / row.screenshot:10.2f}  {row.controls_shown} of {row.controls} "
            "(the rest by query)"
        )
    to_aria = statistics.median(row.ours / row.aria for row in figures)
    to_ai = statistics.median(row.ours / row.aria_ai for row in figures)
    to_shot = statistics.median(row.ours / row.screenshot for row in figures)
    print(f"browser_snapshot / aria_snapshot tokens, median of three: {to_aria:.2f} "
          "(target <= 0.5)")
    print(f"browser_snapshot / aria_snapshot(mode='ai') tokens, median of three: {to_ai:.2f}")
    print(f"browser_snapshot / screenshot tokens, median of three: {to_shot:.2f}")


if __name__ == "__main__":
    main()
