"""A small Chrome DevTools Protocol driver: headless Chromium, real pages, real input events.

Chromium picks its own debugging port (`--remote-debugging-port=0`) and writes it to DevToolsActivePort in
its profile directory; one WebSocket to the browser carries every page's session (flattened sessions).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


class CdpError(Exception):
    pass


class Browser:
    """`async with Browser() as browser: page = await browser.page()`; the process ends on exit."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._profile = Path(tempfile.mkdtemp(prefix="crisis-chromium-"))
        self._process: asyncio.subprocess.Process | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        binary = chromium_path()
        if binary is None:
            raise CdpError("chromium is not installed")
        self._process = await asyncio.create_subprocess_exec(
            binary,
            *FLAGS,
            f"--user-data-dir={self._profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its helpers (renderer, zygote) share one group: ended together below
        )
        port_file = self._profile / "DevToolsActivePort"
        async with asyncio.timeout(30):
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if self._process.returncode is not None:
                    raise CdpError(f"chromium exited with {self._process.returncode}")
                await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = await connect(f"ws://127.0.0.1:{port}{path}", max_size=None, compression=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            message = json.loads(raw)
            if "id" in message:
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                page.on_event(message["method"], message.get("params", {}))

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        assert self._ws is not None
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send(json.dumps(message))
        async with asyncio.timeout(30):
            answer = await future
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def page(self, width: int = 1280, height: int = 900) -> Page:
        """A new tab (its own sessionStorage), with a fixed viewport."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        self._pages[page.session] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.problems: list[str] = []  # uncaught exceptions, console errors, CSP violations

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.problems.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            # A WebSocket cut by the test is reported as a network error: expected, and not the page's fault.
            if entry.get("source") != "network":
                self.problems.append(entry.get("text", ""))

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails'].get('exception', result)}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """The expression's first truthy value, polled; AssertionError naming it after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > end:
                raise AssertionError(f"still false after {timeout} s: {expression}")
            await asyncio.sleep(0.05)

    async def text(self, selector: str) -> str:
        value = await self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''")
        return str(value)

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (so a hidden or covered one fails)."""
        box = await self.wait_for(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
              if (!e) return null; e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
              return r.width && r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    async def type(self, selector: str, text: str) -> None:
        """Focus a field, clear it and type into it as a keyboard would."""
        await self.evaluate(
            f"(e => {{ e.focus(); e.value = ''; }})(document.querySelector({json.dumps(selector)}))"
        )
        await self.send("Input.insertText", {"text": text})

    async def choose(self, selector: str, value: str) -> None:
        """Pick an option of a select, as a user would (the page hears `change`)."""
        await self.evaluate(
            f"""(e => {{ e.focus(); e.value = {json.dumps(value)};
              e.dispatchEvent(new Event("change", {{bubbles: true}})); }})
              (document.querySelector({json.dumps(selector)}))"""
        )

    async def press(self, key: str) -> None:
        """Enter, Escape, Tab or Space, as key events."""
        codes = {"Enter": 13, "Escape": 27, "Tab": 9, " ": 32}
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                {
                    "type": kind,
                    "key": key,
                    "windowsVirtualKeyCode": codes[key],
                    "text": "\r" if key == "Enter" and kind == "keyDown" else "",
                },
            )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
