"""Serve each workload with each stack, one stack after the other, and print them side by side.

    python bench/compare.py --workload echo,numeric --connections 1,16,64 [--quick] [--stacks ours,mms]
                            [--batch-size 8 --max-batch-delay 5] [--soak 60] [--paired] [--no-json]

Run with a Python that has torch/scikit-learn when those workloads are chosen (the benchmark builds their models).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

import harness
import report
import stacks
import workloads


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="echo,numeric", help=f"comma list of: {', '.join(workloads.WORKLOADS)}")
    parser.add_argument(
        "--stacks", default="ours,mms",
        help="comma list of: ours, mms, before (before: BENCH_BEFORE_PYTHON's tree), ours-nometrics "
             "(ours with SAGEMAKER_METRICS=false: the cost of metrics); a stack may be listed twice to interleave runs",
    )
    parser.add_argument("--connections", type=_ints, default=(1, 16, 64), help="comma list (default 1,16,64)")
    parser.add_argument("--quick", action="store_true", help="3 s runs after 2 s warm-ups instead of 10 s after 5 s")
    parser.add_argument("--duration", type=float, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each measured run")
    parser.add_argument("--prewarm", type=float, default=0.0, help="seconds of load before the sweep (MMS's JIT)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for both stacks (default 2)")
    parser.add_argument("--batch-size", type=int, help="ours only: dynamic batching size (MMS cannot be told)")
    parser.add_argument("--max-batch-delay", type=int, help="ours only: dynamic batching delay in ms")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of sustained load after the sweep")
    parser.add_argument("--retries", type=int, default=1, help="re-run a failed stack/workload this often (default 1)")
    parser.add_argument("--keep-dirs", action="store_true", help="keep each run's temp dir (logs, model dir)")
    parser.add_argument("--paired", action="store_true",
                        help="all stacks up at once, each level loading them in the same seconds (steadier "
                             "comparisons on a shared machine; absolute figures are not those of one stack alone)")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/compare-*.json")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> harness.Settings:
    settings = harness.Settings.quick() if args.quick else harness.Settings()
    overrides = {
        "connections": args.connections,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "max_batch_delay_ms": args.max_batch_delay,
        "soak": args.soak,
        "prewarm": args.prewarm,
        "keep_dirs": args.keep_dirs,
    }
    if args.duration is not None:
        overrides["duration"] = args.duration
    if args.warmup is not None:
        overrides["warmup"] = args.warmup
    return dataclasses.replace(settings, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    chosen_stacks = stacks.get(args.stacks)
    chosen = workloads.get(args.workload)
    harness.stop_servers_on_sigterm()
    before = report.machine()
    print(f"load average before: {before['loadavg']}; {settings}", file=sys.stderr)
    runs = []
    for workload in chosen:
        if args.paired:
            print(f"-- {', '.join(s.name for s in chosen_stacks)} / {workload.name}, paired ...", file=sys.stderr)
            runs += harness.measure_paired(chosen_stacks, workload, settings)
            continue
        for stack in chosen_stacks:
            attempt = functools.partial(harness.measure, stack, workload, settings)
            runs.append(harness.with_retries(f"{stack.name} / {workload.name}", attempt, args.retries))
    print(report.render(runs))
    if not args.no_json:
        print(f"\nJSON: {report.write_json('compare', runs, settings, before)}")
    return 0 if all(r.error is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
