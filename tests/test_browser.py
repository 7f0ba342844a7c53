"""The HTML preview in a real headless Chromium: DOM as the browser builds it, and a screenshot.

Needs ``/usr/bin/chromium`` (Debian ``chromium``; CI installs it). The page is
served over HTTP from 127.0.0.1, as a user would open it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import pstdev
from typing import Any

import pytest
from htmldom import Node, parse

from storefront_sdk import (
    Catalog,
    Page,
    Placement,
    Product,
    ScoredProduct,
    Storefront,
    Theme,
)
from storefront_sdk.demo import demo_user
from storefront_sdk.render import render_page_html

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium not installed (apt-get install chromium)", allow_module_level=True)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

PWN_SCRIPT = "<script>document.body.setAttribute('data-pwned','script')</script>"
PWN_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
PWN_ATTR = "\" onmouseover=\"document.body.setAttribute('data-pwned','attr')"


def _build_page(catalog: Catalog) -> Page:
    """demo-1's page from the baseline cascade, plus a placement made of hostile strings."""
    page = Storefront(catalog, llm=None).build(demo_user("demo-1"))
    hostile = [
        Product(id=f"evil-{i}{s}", title=s, aisle=s, department="snacks")
        for i, s in enumerate((PWN_SCRIPT, PWN_IMG, PWN_ATTR))
    ]
    page.placements.append(
        Placement(
            theme=Theme(title=PWN_SCRIPT, description=PWN_IMG, kind="seasonal"),
            keywords=[PWN_ATTR, PWN_IMG],
            products=[ScoredProduct(product=p, score=0.5) for p in hostile],
            source="fallback",
        )
    )
    return page


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served on 127.0.0.1 and its base URL."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def _dump_dom(tmp_path: Path, url: str) -> Node:
    return parse(_chromium(tmp_path, "--dump-dom", url).stdout)


def _body(dom: Node) -> Node:
    return dom.find("body")


def test_browser_runs_scripts_on_an_ordinary_page(served: tuple[Path, str], tmp_path: Path) -> None:
    """Control: this Chromium executes inline scripts, so 'nothing ran' below means something."""
    root, base = served
    (root / "control.html").write_text(
        "<!DOCTYPE html><html><body><p>x</p>"
        "<script>document.body.setAttribute('data-js','ran')</script></body></html>",
        encoding="utf-8",
    )
    assert _body(_dump_dom(tmp_path, f"{base}/control.html")).attrs.get("data-js") == "ran"


def test_page_dom_in_chromium(
    demo_catalog: Catalog, served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    page = _build_page(demo_catalog)
    (root / "page.html").write_text(render_page_html(page), encoding="utf-8")

    dom = _dump_dom(tmp_path, f"{base}/page.html")

    sections = dom.find_all("section", "placement")
    assert len(sections) == len(page.placements) >= 2
    for section, pl in zip(sections, page.placements, strict=True):
        assert section.find("h2", "placement-title").text == pl.theme.title
        cards = section.find_all("article", "product-card")
        assert [c.attrs["data-product-id"] for c in cards] == pl.product_ids
    # Hostile strings are text in the live DOM, not elements or attributes.
    evil = sections[-1]
    assert evil.find("h2", "placement-title").text == PWN_SCRIPT
    assert evil.find("p", "placement-description").text == PWN_IMG
    assert [li.text for li in evil.find_all("li", "keyword")] == [PWN_ATTR, PWN_IMG]
    assert [c.find("h3", "product-title").text for c in evil.find_all("article")] == [
        PWN_SCRIPT,
        PWN_IMG,
        PWN_ATTR,
    ]
    assert dom.find_all("script") == []
    assert dom.find_all("img") == []
    for node in dom.iter():
        assert not [a for a in node.attrs if a.startswith("on")], (node.tag, node.attrs)
    assert "data-pwned" not in _body(dom).attrs


def _read_png(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(idat), width * bpp
    prev, pixels = bytearray(stride), []
    for y in range(height):
        ftype, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        if y % 8 == 0:  # a sample of rows is plenty for variance
            pixels += [tuple(line[i : i + 3]) for i in range(0, stride, bpp * 4)]  # type: ignore[misc]
        prev = line
    return width, height, pixels  # type: ignore[return-value]


def test_page_screenshot_is_not_blank(
    demo_catalog: Catalog, served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    (root / "page.html").write_text(render_page_html(_build_page(demo_catalog)), encoding="utf-8")
    shot = tmp_path / "page.png"

    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", f"{base}/page.html")

    width, height, pixels = _read_png(shot)
    assert (width, height) == (1280, 1600)
    luminance = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in pixels]
    assert pstdev(luminance) > 10  # text, cards and coloured placeholders, not a blank page
    assert len(set(pixels)) > 100
