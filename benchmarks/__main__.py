"""``python -m benchmarks [--json] [--quick] [--only ROW[,ROW]]``: measure every row, print the table.

Each row group runs in a fresh interpreter (``--group NAME --out FILE``, internal), so a
Dask cluster, an imported Textual or another group's garbage never weighs on the next
group, and a group that crashes becomes ``n/a`` rows instead of ending the run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import BARS, Row, describe_machine, log, machine, markdown_table, table, unavailable

# Group module → its rows, in table order.
GROUPS: dict[str, tuple[str, ...]] = {
    "engine_rows": ("step", "step_floor", "step_observed", "step_rshift", "step_breakpoints"),
    "batch_rows": ("batch_io", "batch_io_pool", "batch_seq"),
    "dask_rows": ("batch_dask",),
    "tui_rows": ("tui_start", "tui_start_vs_textual", "tui_reload", "tui_stream", "tui_keypress_p95"),
    "memory_rows": ("tui_memory", "tt_scrub"),
    "headless_rows": ("headless_step",),
    "async_rows": (
        "async_batch_1k",
        "async_batch_1k_pocketflow",
        "async_batch_10k",
        "async_batch_bounded",
        "async_step",
    ),
    "timeline_rows": ("tt_overhead", "tt_step_observed", "tt_memory", "tt_memory_list", "tt_seek", "fork_latency"),
    "recording_rows": ("record_overhead", "record_size", "reopen"),
}
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--json", action="store_true", help='print {"row": {"value", "unit", "baseline", "ratio"}}')
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as the README's (Markdown), then each row's note"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller inputs (a smoke test)")
    parser.add_argument("--only", metavar="ROW[,ROW]", help="run only these rows: " + ", ".join(BARS))
    parser.add_argument("--in-process", action="store_true", help="run every group in this interpreter")
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in names if name not in BARS]
        if unknown:
            parser.error(f"unknown row(s): {', '.join(unknown)} (known: {', '.join(BARS)})")
        args.wanted = set(names)
    else:
        args.wanted = set(BARS)
    return args


def run_group_here(group: str, wanted: set[str], quick: bool) -> list[Row]:
    module = importlib.import_module(f"benchmarks.{group}")
    return module.run_rows(wanted & set(GROUPS[group]), quick)


def run_group_in_child(group: str, wanted: set[str], quick: bool) -> list[Row]:
    mine = wanted & set(GROUPS[group])
    with tempfile.TemporaryDirectory(prefix="flyt-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks",
            "--group",
            group,
            "--out",
            str(out),
            "--only",
            ",".join(sorted(mine)),
        ]
        if quick:
            cmd.append("--quick")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return [unavailable(name, f"{group} crashed: {last[:120]}") for name in GROUPS[group] if name in mine]
        data = json.loads(out.read_text(encoding="utf-8"))
    return [Row(**entry) for entry in data]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.group:  # internal: one group, rows written to --out
        rows = run_group_here(args.group, args.wanted, args.quick)
        Path(args.out).write_text(json.dumps([row.to_wire() for row in rows]), encoding="utf-8")
        return 0

    rows: list[Row] = []
    for group, names in GROUPS.items():
        if not args.wanted & set(names):
            continue
        log(f"benchmarks: {group} ({', '.join(n for n in names if n in args.wanted)}) ...")
        runner = run_group_here if args.in_process else run_group_in_child
        rows.extend(runner(group, args.wanted, args.quick))
    order = list(BARS)
    rows.sort(key=lambda row: order.index(row.name))

    info = machine()
    if args.json:
        for row in rows:
            if row.value is None:
                log(f"{row.name}: {row.note}")
        print(json.dumps({row.name: row.as_json() for row in rows}, indent=2))
    elif args.markdown:
        print(markdown_table(rows))
        print(f"\nMachine: {describe_machine(info)}\n")
        print("\n".join(f"- `{row.name}`: {row.note}" for row in rows if row.note))
    else:
        print(f"Machine: {describe_machine(info)}")
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
