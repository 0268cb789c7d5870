"""--otel: a run (live or recorded) as OpenTelemetry spans: one for the run, one per node
step under its flow's, phases and retries as events, batch items summed on the batch's
span; nothing of OpenTelemetry imported without --otel; a clear word without the extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("opentelemetry.sdk.trace")

from conftest import flow_path

from flyt_tui.cli import main

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def spans_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_name(spans: list[dict], name: str) -> list[dict]:
    return [span for span in spans if span["name"] == name]


def test_a_headless_run_exports_a_span_per_step_under_its_flow(tmp_path):
    out = tmp_path / "spans.jsonl"
    result = invoke("--headless", flow_path("nested"), "--otel", out)
    assert result.exit_code == 0, result.output
    assert "spans exported" in result.stderr and "dropped" not in result.stderr
    spans = spans_of(out)
    runs = [span for span in spans if span["name"].startswith("run ")]
    assert len(runs) == 1
    run = runs[0]
    ids = {span["context"]["span_id"]: span for span in spans}
    steps = [span for span in spans if span is not run]
    assert steps, "no step spans"
    for span in steps:
        parent = span["parent_id"]
        assert parent in ids, f"{span['name']} has no parent span"
        assert span["context"]["trace_id"] == run["context"]["trace_id"]
        # a step's parent is the step of its enclosing flow (the run span for the root flow)
        path = span["attributes"]["flyt.path"].split("/")
        parent_span = ids[parent]
        if parent_span is not run:
            assert parent_span["attributes"]["flyt.path"].split("/") == path[:-1]
        names = [event["name"] for event in span["events"]]
        assert "prep started" in names and "post finished" in names
    assert all(span["start_time"] <= span["end_time"] for span in spans)


def test_retries_are_events_and_batch_items_are_summed(tmp_path):
    out = tmp_path / "spans.jsonl"
    invoke("--headless", flow_path("retries"), "--otel", out)
    spans = spans_of(out)
    events = [event for span in spans for event in span["events"]]
    failed = [event for event in events if event["name"] == "attempt failed"]
    assert failed and all("exception.message" in event["attributes"] for event in failed)
    out2 = tmp_path / "batch.jsonl"
    invoke("--headless", flow_path("batches"), "--otel", out2)
    batch_spans = [span for span in spans_of(out2) if "flyt.batch.items" in span["attributes"]]
    assert batch_spans
    for span in batch_spans:
        assert not span["name"].startswith("run ")  # on the batch node's own span
        assert span["attributes"]["flyt.batch.items"] >= 1
        assert "flyt.batch.duration_max_s" in span["attributes"]


def test_a_recording_exports_the_same_spans_timed_as_recorded(tmp_path):
    bundle = tmp_path / "run.flyt.jsonl"
    live = tmp_path / "live.jsonl"
    assert invoke("--headless", flow_path("nested"), "--record", bundle, "--otel", live).exit_code == 0
    replayed = tmp_path / "replayed.jsonl"
    result = invoke("--headless", bundle, "--otel", replayed)
    assert result.exit_code == 0, result.output
    first, second = spans_of(live), spans_of(replayed)
    assert sorted(span["name"] for span in first) == sorted(span["name"] for span in second)
    assert {span["attributes"].get("flyt.path") for span in first} == {
        span["attributes"].get("flyt.path") for span in second
    }


def test_a_failed_node_marks_its_span_as_an_error(tmp_path):
    out = tmp_path / "spans.jsonl"
    invoke("--headless", flow_path("failing"), "--otel", out)
    errors = [span for span in spans_of(out) if span["status"]["status_code"] == "ERROR"]
    assert errors
    assert any(event["name"] == "exception" for span in errors for event in span["events"])


def test_bad_targets_are_usage_errors(tmp_path):
    result = invoke("--headless", flow_path("basic"), "--otel", tmp_path / "spans.txt")
    assert result.exit_code == 2 and "console, otlp or a FILE.jsonl" in result.stderr
    result = invoke("--headless", flow_path("basic"), "--otel", tmp_path / "absent" / "s.jsonl")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_without_the_extra_otel_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("opentelemetry") else real(name, *a)
    )
    result = invoke("--headless", flow_path("basic"), "--otel", "console")
    assert result.exit_code == 2
    assert "flyt-python[otel]" in result.stderr


def test_nothing_of_opentelemetry_is_imported_without_otel(tmp_path):
    code = (
        "import sys\n"
        "from flyt_tui.cli import main\n"
        "from click.testing import CliRunner\n"
        f"CliRunner().invoke(main, ['--headless', {str(flow_path('basic'))!r}, '--record', {str(tmp_path / 'r.flyt.jsonl')!r}])\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


async def test_the_workbench_exports_each_run(tmp_path):
    from conftest import SIZE, wait_for, wait_loaded, wait_state

    from flyt_tui.app import FlytApp

    first, second = tmp_path / "spans.jsonl", tmp_path / "spans.2.jsonl"
    app = FlytApp(flow_path("nested"), watch=False, stable_output=True, otel=str(first))
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        for _ in range(2):
            await pilot.press("r")
            await wait_state(pilot, "done")
            await wait_for(pilot, lambda: not app.outputs.active)
        # each run's spans are exported when it ends (off the UI thread): run 2 into spans.2.jsonl
        await wait_for(pilot, lambda: any(n.message.startswith("OpenTelemetry") for n in app._notifications))
        await wait_for(pilot, lambda: second.exists() and bool(second.read_text().strip()))
    assert any(span["name"].startswith("run ") for span in spans_of(first))
    assert len(spans_of(second)) == len(spans_of(first))
