"""Run wrk against a server and parse what it prints.

The body is written to a file that the Lua script reads once per thread, so no escaping rules apply to it.
With several paths, each thread preformats one request per path and picks one at random per request (wrk calls
``request()`` for every request, so the work done there is kept to a table lookup).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"

_SINGLE = """\
local f = assert(io.open({body_path!r}, "rb"))
wrk.method = "POST"
wrk.path = {path!r}
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = {content_type!r}
wrk.headers["Accept"] = {accept!r}
"""

_RANDOM_PATHS = """
local paths = {{{paths}}}
local requests = {{}}

function init(args)
   math.randomseed(42)
   for i, p in ipairs(paths) do
      requests[i] = wrk.format("POST", p)
   end
end

function request()
   return requests[math.random(#requests)]
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Load:
    """One wrk run: what to send and how hard."""

    connections: int
    duration: float
    threads: int = 1
    timeout: float = 10.0


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors

    @property
    def clean(self) -> bool:
        return self.errors == 0 and self.requests > 0


def write_script(
    directory: Path, body: bytes, content_type: str, accept: str, paths: Sequence[str] = ("/invocations",)
) -> Path:
    body_path = directory / "body.bin"
    body_path.write_bytes(body)
    script = _SINGLE.format(body_path=str(body_path), path=paths[0], content_type=content_type, accept=accept)
    if len(paths) > 1:
        script += _RANDOM_PATHS.format(paths=", ".join(_lua_string(p) for p in paths))
    script_path = directory / "load.lua"
    script_path.write_text(script)
    return script_path


def _lua_string(text: str) -> str:
    if not re.fullmatch(r"[\w/.\-]*", text):
        raise ValueError(f"path not safe to put in a Lua string: {text!r}")
    return f'"{text}"'


def run(url: str, script: Path, load: Load) -> Result:
    command = [
        WRK,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, math.ceil(load.duration))}s",  # wrk takes whole seconds only
        f"--timeout={max(1, math.ceil(load.timeout))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=load.duration + load.timeout + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)


def parse(output: str) -> Result:
    totals = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not totals or not rps:
        raise ValueError(f"unexpected wrk output:\n{output}")
    seconds = float(totals.group(2)) * _UNITS[totals.group(3)] / 1e3
    return Result(
        requests=int(totals.group(1)),
        seconds=seconds,
        rps=float(rps.group(1)),
        p50_ms=_percentile(output, "50"),
        p99_ms=_percentile(output, "99"),
        errors=_errors(output),
    )


def _percentile(output: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _errors(output: str) -> int:
    count = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        count += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        count += sum(int(n) for n in sockets.groups())
    return count
