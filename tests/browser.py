"""Open a page in headless Chromium (Debian's ``chromium``) over the DevTools protocol, with no network.

Used by the report's browser test: console messages, every request the page makes, whether its images
loaded, whether the page scrolls sideways at a given width, and a screenshot.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    width: int
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: int = 0
    page_width: int = 0
    screenshot: Path | None = None


class Browser:
    """One headless Chromium; ``check(url, width)`` loads the page in a fresh tab at that viewport width."""

    def __init__(self) -> None:
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed (Debian package 'chromium')")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="engagement-chromium-")
        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
             "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("chromium did not start") from None
                time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def check(self, url: str, width: int, screenshot: Path) -> PageCheck:
        import websocket

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        target = json.loads(urllib.request.urlopen(req, timeout=10).read())
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=60)
        result = PageCheck(width=width)
        counter = iter(range(1, 10**6))

        def call(method: str, **params: Any) -> dict:
            n = next(counter)
            ws.send(json.dumps({"id": n, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == n:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
                note(msg)

        loaded = {"done": False}

        def note(msg: dict) -> None:
            method, p = msg.get("method"), msg.get("params", {})
            if method == "Runtime.consoleAPICalled":
                result.console.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                          for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                result.console.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded":
                entry = p["entry"]
                if entry["level"] in ("error", "warning"):
                    result.console.append(f"{entry['level']}: {entry.get('text', '')}")
            elif method == "Network.requestWillBeSent":
                result.requests.append(p["request"]["url"])
            elif method == "Page.loadEventFired":
                loaded["done"] = True

        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                call(f"{domain}.enable")
            call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                 uploadThroughput=-1)
            call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                 mobile=width < 600)
            call("Page.navigate", url=url)
            deadline = time.monotonic() + 60
            while not loaded["done"] and time.monotonic() < deadline:
                note(json.loads(ws.recv()))
            if not loaded["done"]:
                raise RuntimeError(f"{url} did not load within 60 s")
            state = call("Runtime.evaluate", returnByValue=True, expression="""({
                images: document.images.length,
                broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
                width: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
            })""")["result"]["value"]
            result.images, result.broken_images, result.page_width = state["images"], state["broken"], state["width"]
            shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
        finally:
            ws.close()
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{target['id']}", timeout=10).read()
        return result
