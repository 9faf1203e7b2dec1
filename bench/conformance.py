"""The conformance kit's full run on our server and on upstream (toolkit 1.10.1 + MMS 1.1.11), side by side.

    python bench/conformance.py [--quick] [--stacks ours,mms] [--modes single,multi] [--soak 60] [--out DIR]

Each stack is started by the kit itself (``sagemaker-inference check --serve``) on the bundled example model, as
SageMaker starts a container: ours with ``python -m sagemaker_inference serve``, upstream with the toolkit's
``model_server.start_model_server()`` under the upstream venv's Python (which writes MMS's config and runs
``multi-model-server``, as in bench/stacks.py). ``multi`` runs the multi-model checks (lifecycle, path safety) on a
multi-model server of each stack. One stack at a time; the JSON reports go to DIR (default bench/results) and a
Markdown table of every check, ours beside upstream, is printed (docs/conformance.md shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "src" / "sagemaker_inference" / "example_model"
UPSTREAM_PYTHON = "/work/upstream-venv/bin/python"
UPSTREAM_COMMAND = f'{UPSTREAM_PYTHON} -c "from sagemaker_inference import model_server; ' \
                   f'model_server.start_model_server()"'


def run_kit(stack: str, mode: str, quick: bool, soak: float, out: Path) -> dict:
    report = out / f"conformance-{stack}-{mode}{'-quick' if quick else ''}.json"
    argv = [sys.executable, "-m", "sagemaker_inference", "check", "--serve", str(EXAMPLE), "--json", str(report),
            "--keep-dir"]
    argv += ["--quick"] if quick else []
    argv += ["--multi-model"] if mode == "multi" else []
    argv += ["--soak", str(soak)] if soak and mode == "single" else []
    env = dict(os.environ)
    if stack == "mms":
        argv += ["--serve-command", UPSTREAM_COMMAND]
        env["PATH"] = f"{Path(UPSTREAM_PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"  # multi-model-server
    started = time.monotonic()
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    kept = [line for line in completed.stderr.splitlines() if line.startswith("kept ")]
    print(f"# {stack} {mode}: exit {completed.returncode} in {time.monotonic() - started:.0f} s; {' '.join(kept)}",
          file=sys.stderr)
    if not report.exists():
        print(completed.stdout + completed.stderr, file=sys.stderr)
        return {"checks": [], "failed": 0, "passed": 0}
    return json.loads(report.read_text())


def _cell(check: dict | None) -> str:
    if check is None:
        return "n/a"
    figure = check.get("figure")
    text = "" if figure is None else f" {figure:.4g} {check.get('unit', '')}".rstrip()
    return ("pass" if check["passed"] else "**FAIL**") + text


def side_by_side(reports: dict[str, dict]) -> str:
    stacks = list(reports)
    names: list[str] = []
    for document in reports.values():
        names += [c["name"] for c in document["checks"] if c["name"] not in names]
    by_stack = {s: {c["name"]: c for c in reports[s]["checks"]} for s in stacks}
    lines = ["| check | " + " | ".join(stacks) + " | upstream's detail where it fails |",
             "|---|" + "---|" * len(stacks) + "---|"]
    for name in names:
        cells = [_cell(by_stack[s].get(name)) for s in stacks]
        upstream = by_stack.get(stacks[-1], {}).get(name)
        detail = upstream["detail"] if upstream and not upstream["passed"] else ""
        detail = " ".join(detail.split()).replace("|", "\\|")[:220]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {detail} |")
    totals = [f"{reports[s]['passed']} pass, {reports[s]['failed']} fail" for s in stacks]
    lines.append("| **total** | " + " | ".join(totals) + " | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the kit's quick mode (about a minute per stack)")
    parser.add_argument("--stacks", default="ours,mms")
    parser.add_argument("--modes", default="single,multi")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of soak in the single-model run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    if "mms" in stacks and not Path(UPSTREAM_PYTHON).exists():
        print(f"upstream venv not found ({UPSTREAM_PYTHON}): running ours only", file=sys.stderr)
        stacks.remove("mms")
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    for mode in (m.strip() for m in args.modes.split(",") if m.strip()):
        reports = {"ours" if s == "ours" else "upstream (MMS)": run_kit(s, mode, args.quick, args.soak, args.out)
                   for s in stacks}
        print(f"\n### {mode}-model server ({'quick' if args.quick else 'full'} mode)\n")
        print(side_by_side(reports))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
