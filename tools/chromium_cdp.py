"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3,
replies on fd 4, NUL-separated JSON), with the standard library only. Used by tests/test_wasm.py and
benchmarks/wasm_decode.py: real time, unlike --virtual-time-budget --dump-dom, under which a page's virtual
clock runs out while a Web Worker works.

    cdp = Cdp("/usr/bin/chromium", "/tmp/profile")
    cdp.open("http://127.0.0.1:8000/index.html")
    print(cdp.eval("document.title"))
    cdp.close()
"""
import fcntl
import json
import os
import select
import subprocess
import time


class Cdp:
    """One headless Chromium (exe) with its own profile folder; open() a page, then call() / eval()."""

    def __init__(self, exe, profile_dir):
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        # high copies for the child, so that dup2 to 3 / 4 cannot clobber one another
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100)
        hi_w = fcntl.fcntl(res_w, fcntl.F_DUPFD, 100)

        def child():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={profile_dir}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (cmd_r, res_w, hi_r, hi_w):
            os.close(fd)
        self.w = os.fdopen(cmd_w, "wb", buffering=0)
        self.r = os.fdopen(res_r, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=60.0, session=True):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            m["sessionId"] = self.session
        self.w.write(json.dumps(m).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            r = self._read_msg(deadline)
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})

    def open(self, url, timeout=60.0):
        """Opens url in a new tab and waits until its document has loaded."""
        tid = self.call("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": tid, "flatten": True}, session=False)["sessionId"]
        end = time.monotonic() + timeout
        while self.eval("location.href === 'about:blank' ? '' : document.readyState") != "complete":
            if time.monotonic() > end:
                raise TimeoutError(f"{url} did not load in {timeout} s")
            time.sleep(0.05)

    def eval(self, expr, timeout=60.0, await_promise=False):
        """Evaluates expr on the page (its main thread); the value (JSON-able), or raises the page's exception."""
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": await_promise},
                      timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError(d.get("exception", {}).get("description") or d.get("text"))
        return r["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
