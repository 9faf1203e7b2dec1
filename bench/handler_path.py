"""Microseconds per ``DefaultHandlerService.handle()`` call, in process, for two handlers.

* echo: ``input_fn=json.loads``, identity ``predict_fn``, ``output_fn=json.dumps``;
* numeric: 64 floats as JSON, default ``input_fn``/``output_fn`` (numpy codecs), ``predict_fn``
  is ``np.dot`` with a 64x16 matrix.

The "payload only" column times the handler's own json/numpy work without any toolkit, so the
toolkit's overhead is the difference. Each handler lives in a temporary
``<model_dir>/code/inference.py``; a batch of one request goes through
``handle(data, context)`` with a reused context, as a worker does. Run with our venv; when
/work/upstream-venv exists the same script is re-run there for upstream 1.10.1 (on MMS's
Context).

    python bench/handler_path.py [--upstream-python PATH] [--number N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit

HANDLERS = {
    "echo": """
import json

def model_fn(model_dir):
    return None

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return json.dumps(prediction), accept
""",
    "numeric": """
import numpy as np

def model_fn(model_dir):
    return np.random.default_rng(0).random((64, 16))

def predict_fn(data, model):
    return np.dot(data, model)
""",
}


def _make_context(model_dir: str, upstream: bool):
    if upstream:
        from mms.context import Context, RequestProcessor
    else:
        from sagemaker_inference.context import Context, RequestProcessor
    context = Context("model", model_dir, None, 1, None, "bench")
    context.request_ids = {0: "request-0"}
    headers = {"body": {"content-type": "application/json"}, "Content-Type": "application/json"}
    headers["Accept"] = "application/json"
    context.request_processor = [RequestProcessor(headers)]
    return context


def run_one(name: str, number: int, upstream: bool) -> float:
    """Time one handler in this interpreter; returns microseconds per handle() call."""
    model_dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
    os.makedirs(os.path.join(model_dir, "code"))
    module = f"bench_{name}_inference"
    with open(os.path.join(model_dir, "code", module + ".py"), "w") as f:
        f.write(HANDLERS[name])
    sys.path.insert(0, os.path.join(model_dir, "code"))
    os.environ["SAGEMAKER_PROGRAM"] = module + ".py"

    from sagemaker_inference.default_handler_service import DefaultHandlerService

    service = DefaultHandlerService()
    context = _make_context(model_dir, upstream)
    service.initialize(context)
    body = json.dumps([round(i * 0.01, 2) for i in range(64)]).encode()
    data = [{"body": body}]
    result = service.handle(data, context)
    assert context.get_response_status(0)[0] == 200, (result, context.get_response_status(0))
    best = min(timeit.repeat(lambda: service.handle(data, context), number=number, repeat=7))
    return best / number * 1e6


def floor(name: str, number: int) -> float:
    """The handler's own work without any toolkit around it, in microseconds per request."""
    import numpy as np

    body = json.dumps([round(i * 0.01, 2) for i in range(64)]).encode()
    matrix = np.random.default_rng(0).random((64, 16))
    if name == "echo":

        def work() -> object:
            return json.dumps(json.loads(body.decode("utf-8")))
    else:

        def work() -> object:
            return json.dumps(np.dot(np.array(json.loads(body.decode("utf-8"))), matrix).tolist())

    return min(timeit.repeat(work, number=number, repeat=7)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--upstream-python", default="/work/upstream-venv/bin/python")
    parser.add_argument("--child", choices=sorted(HANDLERS), help=argparse.SUPPRESS)
    parser.add_argument("--child-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one handler per process: user modules and environment stay separate
        # The floor is measured in the same process, right after, so both see the same machine load.
        handle = run_one(args.child, args.number, args.child_upstream)
        print(f"{handle:.2f} {floor(args.child, args.number):.2f}")
        return
    rows = []
    for name in HANDLERS:
        ours = _child(sys.executable, name, args.number, upstream=False)
        theirs = None
        if os.path.exists(args.upstream_python):
            theirs = _child(args.upstream_python, name, args.number, upstream=True)
        rows.append((name, ours[1] if ours else None, ours[0] if ours else None, theirs[0] if theirs else None))
    print("µs per handle() call, one request per batch (best of 7 runs)")
    print(f"{'handler':<10}{'payload only':>14}{'ours':>10}{'upstream':>10}")
    for name, work, ours, theirs in rows:
        cells = [f"{v:.2f}" if v is not None else "n/a" for v in (work, ours, theirs)]
        print(f"{name:<10}{cells[0]:>14}{cells[1]:>10}{cells[2]:>10}")
    print("payload only = json/numpy work of the handler itself, without the toolkit (this machine's floor)")


def _child(python: str, name: str, number: int, upstream: bool) -> tuple[float, float] | None:
    """(µs per handle() call, µs of payload-only work) measured in a fresh interpreter."""
    cmd = [python, os.path.abspath(__file__), "--child", name, "--number", str(number)]
    if upstream:
        cmd.append("--child-upstream")
        # Run from a neutral directory so the upstream interpreter cannot import our src/.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    else:
        env = dict(os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        print(f"{name} ({python}) failed:\n{proc.stderr}", file=sys.stderr)
        return None
    handle, work = proc.stdout.strip().splitlines()[-1].split()
    return float(handle), float(work)


if __name__ == "__main__":
    main()
