"""Dashboard: Streamlit's AppTest drives each panel with the fixture files in ``test_dashboard_data/``.

The numbers on screen are checked against values computed here from the same fixture files, so a wrong
aggregation, a swapped column or a crash on a torn file fails a test.
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from api.monitoring import rolling_stats
from dashboard import aggregate, demo, loaders
from dashboard.drift_report import fmt_value, parse_report
from dashboard.sources import sources_for
from dashboard.stats_client import ServiceStats, fetch_stats
from sentiment.contract import LABELS, Label, Prediction, Reason
from sentiment.estimation import latest_labels
from sentiment.jsonl import append_records, iter_records
from sentiment.records import PredictionRecord, QueueRecord, SampleRecord, TierOpinion
from sentiment.settings import REPO_ROOT, Settings, load_settings
from tests.support.records import model_record

FIXTURES = Path(__file__).with_name("test_dashboard_data")
APP = REPO_ROOT / "dashboard" / "app.py"
UCI = "uci_amazon_cells_labelled.jsonl"  # short real reviews from the shared data folder
TORN = b'{"ts":"2026-11-20T11:00:00.000Z","request_id":"torn","label":"posi'


def fixture_records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Empty data and reports dirs of our own; no service to ask unless a test says so."""
    monkeypatch.setenv("SENTIMENT_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SENTIMENT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SENTIMENT_DASHBOARD__SERVICE_URL", "")
    s = load_settings()
    s.paths.data_dir.mkdir(parents=True)
    s.paths.reports_dir.mkdir(parents=True)
    return s


def install_fixtures(s: Settings) -> None:
    for name, dest in [
        ("predictions.jsonl", s.paths.predictions_log),
        ("human_queue.jsonl", s.paths.human_queue),
        ("human_labels.jsonl", s.paths.human_labels),
        ("drift.json", s.paths.drift_report),
    ]:
        shutil.copy(FIXTURES / name, dest)


def run_app(panel: str = "overview", **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(panel=panel, **query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def all_text(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "text")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


# --- predictions overview -------------------------------------------------------------------------------------


def test_overview_numbers_match_fixture(settings: Settings) -> None:
    install_fixtures(settings)
    recs = fixture_records("predictions.jsonl")
    at = run_app("overview")
    shown = metrics(at)
    assert shown["predictions"] == str(len(recs))
    for status in ("ok", "fallback", "rejected"):
        n = sum(r["status"] == status for r in recs)
        assert shown[status] == f"{n:,} ({n / len(recs):.1%})"
    oov = [r["oov_rate"] for r in recs if r["oov_rate"] is not None]
    assert shown["mean OOV rate"] == f"{statistics.mean(oov):.1%}"
    assert shown["p50 latency"] == f"{statistics.median(r['latency_ms'] for r in recs):.1f} ms"
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(specs) == 6  # confidence, status, reasons, OOV, labels, latency
    channels = [ch for spec in specs for ch in spec["encoding"].values() if isinstance(ch, dict)]
    axis_titles = {ch.get("title") or (ch.get("axis") or {}).get("title") for ch in channels}
    assert all(spec.get("title") for spec in specs)
    assert {
        "OOV rate (share of words)",
        "latency (ms)",
        "time (UTC)",
        "confidence (calibrated probability)",
    } <= axis_titles
    assert "0 unreadable line(s) skipped" in all_text(at)


def test_new_records_show_on_the_next_rerun(settings: Settings) -> None:
    """Reads are cached, but keyed on the file's size and mtime: what the service appends is never hidden."""
    install_fixtures(settings)
    at = run_app("overview")
    before = int(metrics(at)["predictions"])
    append_records(
        settings.paths.predictions_log, [{"ts": "2026-11-20T11:00:00Z", "status": "rejected", "label": None}]
    )
    at.run()
    assert int(metrics(at)["predictions"]) == before + 1


def test_a_replicas_root_shows_every_pods_records_once_in_time_order(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/: one data dir per pod on a shared volume. The fixture's records dealt out to two pods come back
    whole, merged by time, each tagged with its pod; the queue panel says which pod queued a review."""
    root = tmp_path / "volume"
    monkeypatch.setenv("SENTIMENT_PATHS__REPLICAS_ROOT", str(root))
    assert f"Looked in `{root}/*/predictions.jsonl`" in all_text(run_app("overview"))  # no pod has written yet
    preds, queue = fixture_records("predictions.jsonl"), fixture_records("human_queue.jsonl")
    for i, pod in enumerate(("api-0", "api-1")):
        append_records(root / pod / "predictions.jsonl", preds[i::2])
        append_records(root / pod / "human_queue.jsonl", queue[i::2])
    at = run_app("overview")
    assert metrics(at)["predictions"] == str(len(preds))
    assert f"of 2 replica(s) under `{root}` (`api-0` {len(preds[0::2])}, `api-1` {len(preds[1::2])})" in all_text(at)
    frame = loaders.load_predictions(root / "predictions.jsonl", 1000, replicas=True).frame
    assert list(frame["request_id"]) == [r["request_id"] for r in preds]  # the fixture is in time order
    assert list(frame["replica"]) == ["api-0", "api-1"] * (len(preds) // 2)
    at = run_app("queue")
    assert metrics(at)["escalated"] == str(len(queue))
    assert "replica `api-1`" in all_text(at) and "replica `api-0`" in all_text(at)


def test_torn_and_corrupt_lines_are_skipped_and_counted(settings: Settings) -> None:
    good = (FIXTURES / "predictions.jsonl").read_bytes()
    lines = good.splitlines(keepends=True)
    settings.paths.predictions_log.write_bytes(b"".join(lines[:3]) + b"not json at all\n" + b"".join(lines[3:]) + TORN)
    at = run_app("overview")
    assert metrics(at)["predictions"] == str(len(lines))
    assert "2 unreadable line(s) skipped" in all_text(at)


@pytest.mark.parametrize("content", [None, b"", b"\n\n", TORN], ids=["missing", "empty", "blank", "torn-only"])
def test_overview_empty_state(settings: Settings, content: bytes | None) -> None:
    if content is not None:
        settings.paths.predictions_log.write_bytes(content)
    at = run_app("overview")
    assert "No predictions logged yet" in at.info[0].value
    assert not at.metric


def test_records_missing_fields_still_render(settings: Settings) -> None:
    """Old or foreign log lines (no time, no OOV, no latency) give numbers and notes, not a traceback."""
    append_records(settings.paths.predictions_log, [{"status": "ok", "label": "positive"}, {"status": "rejected"}])
    at = run_app("overview")
    assert metrics(at)["predictions"] == "2" and metrics(at)["ok"] == "1 (50.0%)"
    assert {"No OOV rates logged yet.", "No timed records."} <= {c.value for c in at.caption}


def test_unreadable_log_is_a_warning_not_a_traceback(settings: Settings) -> None:
    settings.paths.predictions_log.mkdir()  # a directory where the log should be
    at = run_app("overview")
    assert "Could not read" in at.warning[0].value
    assert "No predictions logged yet" in at.info[0].value


@pytest.mark.slow  # writes and reads a 1M-line log, with wall-clock bounds
def test_large_log_loads_only_the_tail_quickly(settings: Settings) -> None:
    """A million-line log: the page aggregates the last N records and still renders in seconds."""
    line = (
        '{{"ts":"2026-11-{d:02d}T{h:02d}:{m:02d}:{s:02d}.000Z","request_id":"r{i}","text_len":100,"label":"{lab}",'
        '"confidence":0.{c:02d},"status":"ok","reason":"","tier":"model","oov_rate":0.0{o},"latency_ms":{lat}}}\n'
    )

    def block(start: int, n: int) -> str:
        # one record every 2 s, so the log is in time order like a real one (the tail is sorted by time)
        return "".join(
            line.format(
                d=1 + 2 * i // 86_400,
                h=2 * i // 3_600 % 24,
                m=2 * i // 60 % 60,
                s=2 * i % 60,
                i=i,
                lab=LABELS[i % 3],
                c=i % 100,
                o=i % 10,
                lat=10 + i % 7,
            )
            for i in range(start, start + n)
        )

    old = block(0, 10_000)  # the older 900k lines only need to exist, so one block is repeated
    with settings.paths.predictions_log.open("w") as fh:
        fh.write(old * 90 + block(900_000, 100_000))
    n = settings.dashboard.tail_records

    t0 = time.perf_counter()
    at = run_app("overview")
    page_s = time.perf_counter() - t0
    assert metrics(at)["predictions"] == f"{n:,}"
    assert f"Showing the last {n:,} records of" in all_text(at)

    loaders._predictions.clear()
    t0 = time.perf_counter()
    loaded = loaders.load_predictions(settings.paths.predictions_log, n)
    load_s = time.perf_counter() - t0
    print(f"\n1M-line log: last {n:,} records read in {load_s:.2f} s; overview page rendered in {page_s:.2f} s")
    assert loaded.frame["request_id"].iloc[-1] == "r999999"
    assert load_s < 5.0 and page_s < 15.0


def test_dashboard_reads_what_the_chain_writes(settings: Settings, shared_data: Path) -> None:
    """Real reviews and garbage through the real fallback chain (no model: tiers 2 and 3 answer), logged the way
    the service logs them; the overview and the queue must show exactly what was written."""
    from fallback.chain import Chain

    reviews = [r["text"] for r in itertools.islice(iter_records(shared_data / UCI), 60)]
    inputs: list[Any] = [*reviews, "", "ok", None, "Das Produkt ist leider schon nach zwei Tagen kaputt gegangen."]
    traced = Chain(settings).classify_many(inputs)
    append_records(settings.paths.predictions_log, [t.log_record(None, latency_ms=2.0) for t in traced])
    statuses = Counter(t.prediction.status.value for t in traced)
    queued = sum(t.prediction.reason_code is Reason.human_review for t in traced)
    print(f"\nchain over {len(inputs)} inputs: {dict(statuses)}, {queued} queued for a human")
    assert statuses["rejected"] >= 4 and queued > 0  # the mix exercises every path the panels show

    at = run_app("overview")
    shown = metrics(at)
    assert shown["predictions"] == str(len(inputs))
    for status in ("ok", "fallback", "rejected"):
        assert shown[status] == f"{statuses[status]:,} ({statuses[status] / len(inputs):.1%})"
    at.radio(key="panel").set_value("queue").run()
    assert metrics(at)["escalated"] == str(queued)
    assert metrics(at)["awaiting label"] == str(queued)


# --- human review queue ---------------------------------------------------------------------------------------


def test_queue_shows_escalations_and_labels_in_place(settings: Settings) -> None:
    install_fixtures(settings)
    queue = fixture_records("human_queue.jsonl")
    labelled = {r["request_id"] for r in fixture_records("human_labels.jsonl")}
    at = run_app("queue")
    assert metrics(at) | {
        "escalated": str(len(queue)),
        "labelled": str(len(labelled)),
        "awaiting label": str(len(queue) - len(labelled)),
    } == metrics(at)
    table = at.dataframe[0].value
    assert set(table["text"]) == {r["text"] for r in queue if r["request_id"] not in labelled}

    at.radio(key="queue_show").set_value("all").run()
    assert len(at.dataframe[0].value) == len(queue)
    at.multiselect(key="queue_reasons").set_value(["resource_pressure"]).run()
    assert list(at.dataframe[0].value["reason_code"]) == ["resource_pressure"]
    at.multiselect(key="queue_reasons").set_value(sorted({r["reason_code"] for r in queue})).run()
    at.text_input(key="queue_search").input("terrible box").run()
    assert list(at.dataframe[0].value["text"]) == [next(r["text"] for r in queue if r["request_id"] == "q02")]

    at.text_input(key="labeller").input("tester").run()
    at.button(key="label-q02-positive").click().run()
    assert not at.exception
    written = list(iter_records(settings.paths.human_labels))
    assert len(written) == len(labelled) + 1
    assert (written[-1]["request_id"], written[-1]["label"], written[-1]["labeller"]) == ("q02", "positive", "tester")
    assert written[-1]["text"] == next(r["text"] for r in queue if r["request_id"] == "q02")
    assert metrics(at)["labelled"] == str(len(labelled) + 1)
    assert "Saved **positive**" in at.success[0].value


def _sample_record(i: int, selection: str, margin: float) -> dict[str, Any]:
    return SampleRecord(
        request_id=f"s{i}",
        text=f"Sampled review {i}: the case is fine but the zip sticks",
        selection=selection,  # type: ignore[arg-type]
        weight=1.0 if selection == "margin" else 50.0,
        margin=margin,
        probs=[0.3, 0.3 + margin / 2, 0.4 - margin / 2],
        model=TierOpinion(label=Label.neutral, confidence=0.5),
    ).model_dump(mode="json")


def test_the_labelling_sample_follows_the_queue_most_uncertain_first_and_labels_count(settings: Settings) -> None:
    install_fixtures(settings)
    records = [_sample_record(0, "margin", 0.15), _sample_record(1, "margin", 0.01), _sample_record(2, "random", 0.9)]
    records += [_sample_record(3, "margin", 0.08), _sample_record(4, "margin", 0.12)]
    append_records(settings.paths.labelling_sample, records)
    order = list(aggregate.sample_frame(records)["request_id"])
    assert order[0] == "s1" and order.index("s3") < order.index("s4") < order.index("s0")
    assert order.index("s2") < len(order) - 1  # the lone random pick is not left for last
    queued_labels = len({r["request_id"] for r in fixture_records("human_labels.jsonl")})
    at = run_app("queue")
    shown = metrics(at)
    assert (shown["sampled"], shown["sample labelled"], shown["sample awaiting label"]) == ("5", "0", "5")
    assert shown["labelled reviews"] == str(queued_labels)
    at.button(key="sample-s1-negative").click().run()
    assert not at.exception
    last = list(iter_records(settings.paths.human_labels))[-1]
    assert (last["request_id"], last["label"], last["text"]) == ("s1", "negative", records[1]["text"])
    shown = metrics(at)
    assert (shown["sample labelled"], shown["labelled reviews"]) == ("1", str(queued_labels + 1))
    assert "Next `sentiment-retrain --auto`: **none**" in all_text(at)


def test_queue_relabel_latest_wins(settings: Settings) -> None:
    install_fixtures(settings)
    at = run_app("queue")
    at.radio(key="queue_show").set_value("labelled").run()
    at.button(key="label-q01-negative").click().run()
    assert latest_labels(iter_records(settings.paths.human_labels))["q01"] == "negative"
    assert list(at.dataframe[0].value["human_label"]) == ["negative"]
    assert metrics(at)["labelled"] == "1"  # a relabel is not a new review


def test_label_write_failure_is_reported_not_raised(settings: Settings) -> None:
    install_fixtures(settings)
    settings.paths.human_labels.unlink()
    settings.paths.human_labels.mkdir()  # cannot append to a directory
    at = run_app("queue")
    at.button(key="label-q02-negative").click().run()
    assert not at.exception
    assert "Could not save the label for `q02`" in at.error[0].value


@pytest.mark.parametrize("content", [None, b"", TORN], ids=["missing", "empty", "torn-only"])
def test_queue_empty_state(settings: Settings, content: bytes | None) -> None:
    if content is not None:
        settings.paths.human_queue.write_bytes(content)
    at = run_app("queue")
    assert "Nothing has been escalated" in at.info[0].value


# --- drift report ---------------------------------------------------------------------------------------------


def test_drift_panel_matches_fixture(settings: Settings) -> None:
    install_fixtures(settings)
    report = json.loads((FIXTURES / "drift.json").read_text())
    at = run_app("drift")
    assert ", ".join(report["drifted_signals"]) in at.error[0].value
    table = at.dataframe[0].value
    assert list(table["signal"]) == list(report["signals"])
    for _, row in table.iterrows():
        sig = report["signals"][row["signal"]]
        assert row["verdict"] == ("skipped" if sig["skipped"] else "DRIFTED" if sig["drifted"] else "ok")
        assert row["drifts"] == sig["fires_when"] and row["test"] == sig["statistic_name"]
        assert row["early"] == fmt_value(sig["reference"]) and row["late"] == fmt_value(sig["current"])
        assert float(row["threshold"]) == pytest.approx(sig["threshold"])
    assert "positive 34.4%" in table.set_index("signal").loc["label_distribution", "early"]
    text = all_text(at)
    assert text.count(":red-badge[") == len(report["drifted_signals"])
    assert text.count(":gray-badge[") == sum(s["skipped"] for s in report["signals"].values())
    assert "drifts below 0.05" in text  # a p-value signal fires below its threshold
    assert f"{report['windows']['reference']['n']:,}" in text and report["windows"]["current"]["label"] in text


def test_drift_report_with_missing_and_broken_fields(settings: Settings) -> None:
    settings.paths.drift_report.write_text(
        json.dumps(
            {
                "signals": {
                    "oov_rate": {"statistic": "not a number", "drifted": True},
                    "text_length": {"drifted": False, "statistic": 0.2},
                },
            }
        )
    )
    at = run_app("drift")
    assert "no overall verdict" in at.warning[0].value
    verdicts = dict(zip(at.dataframe[0].value["signal"], at.dataframe[0].value["verdict"], strict=True))
    assert verdicts == {"oov_rate": "unreadable", "text_length": "ok"}


@pytest.mark.parametrize(
    "content", [None, "", '{"drift_detected": tru', "[1, 2]"], ids=["missing", "empty", "half-written", "not-an-object"]
)
def test_drift_empty_and_bad_files(settings: Settings, content: str | None) -> None:
    if content is not None:
        settings.paths.drift_report.write_text(content)
    at = run_app("drift")
    if content is None:
        assert "No drift report yet" in at.info[0].value
    else:
        assert "not a drift report" in at.warning[0].value


def test_parse_report_keeps_good_signals_next_to_bad_ones() -> None:
    report = parse_report({"drift_detected": "yes", "windows": [], "signals": {"a": 3, "b": {"threshold": 0.1}}})
    assert report.drift_detected is None and report.windows == {}
    assert report.signals["a"].error and report.signals["b"].threshold == 0.1


# --- demo data ------------------------------------------------------------------------------------------------


def test_demo_button_writes_200_records_apart_from_real_logs(settings: Settings) -> None:
    install_fixtures(settings)
    real_before = settings.paths.predictions_log.read_bytes()
    at = run_app("overview")
    at.button(key="seed_demo").click().run()
    assert not at.exception
    demo_sources = sources_for(settings, demo=True)
    assert len(list(iter_records(demo_sources.predictions))) == demo.DEMO_RECORDS == 200
    assert settings.paths.predictions_log.read_bytes() == real_before
    assert demo_sources.predictions.parent != settings.paths.data_dir
    assert at.toggle(key="demo").value is True
    assert any("Wrote 200 demo predictions" in c.value for c in at.sidebar.caption)
    assert metrics(at)["predictions"] == "200"
    at.toggle(key="demo").set_value(False).run()
    assert metrics(at)["predictions"] == str(len(fixture_records("predictions.jsonl")))


def test_demo_records_follow_the_contract_and_queue_matches() -> None:
    preds, queue = demo.synth(0.6, 500, seed=3)
    for r in preds:
        PredictionRecord.model_validate_json(r.model_dump_json())
        Prediction(label=r.label, confidence=r.confidence, status=r.status, reason=r.reason)
    human = {r.request_id for r in preds if r.reason_code == "human_review"}
    assert human and human == {q.request_id for q in queue}
    assert all(isinstance(q, QueueRecord) and q.text for q in queue)
    statuses = {r.status.value for r in preds}
    assert statuses == {"ok", "fallback", "rejected"}


def test_demo_seed_refuses_real_sources(settings: Settings) -> None:
    with pytest.raises(ValueError):
        demo.seed(sources_for(settings, demo=False), gate=0.6)
    assert not settings.paths.predictions_log.exists()


def test_demo_dir_may_not_be_the_data_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_DASHBOARD__DEMO_DIR", str(settings.paths.data_dir))
    with pytest.raises(ValueError):
        sources_for(load_settings(), demo=True)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "misconfigured" in at.error[0].value


# --- live service /stats --------------------------------------------------------------------------------------


class _Stats(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(200 if self.path == "/stats" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stats_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """Serves what the real service's monitor computes from the fixture log, so a change of shape fails here."""
    payload = rolling_stats(fixture_records("predictions.jsonl"), total=1234, window=1000).model_dump()
    handler = type("Handler", (_Stats,), {"body": json.dumps(payload).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", payload
    server.shutdown()
    server.server_close()


def test_live_stats_shown_when_service_answers(
    settings: Settings, stats_server: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, payload = stats_server
    monkeypatch.setenv("SENTIMENT_DASHBOARD__SERVICE_URL", url)
    at = run_app("overview")
    shown = metrics(at)
    assert shown["requests (live)"] == f"{payload['total_requests']:,}"
    assert shown["rejected (live)"] == str(payload["status_breakdown"]["rejected"])
    assert shown["rolling OOV rate"] == f"{payload['rolling_oov_rate']:.1%}"
    assert shown["rolling confidence"] == f"{payload['rolling_confidence']:.3f}"
    (live,) = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert live["title"].startswith("Live model confidence")
    assert "No predictions logged yet" in at.info[0].value  # files and service are independent


def test_stats_histogram_as_dict_or_list() -> None:
    assert ServiceStats(confidence_histogram=[1, 2]).histogram() == {"0.0-0.5": 1, "0.5-1.0": 2}
    assert ServiceStats(confidence_histogram={"0.0-0.2": 3}).histogram() == {"0.0-0.2": 3}


def test_unreachable_service_is_a_quiet_note(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stats)
    port = server.server_address[1]
    server.server_close()  # a port nobody listens on
    monkeypatch.setenv("SENTIMENT_DASHBOARD__SERVICE_URL", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    at = run_app("overview")
    assert time.perf_counter() - t0 < 30
    assert any("not reachable" in c.value for c in at.caption)
    assert not at.error


@pytest.mark.parametrize("url", ["not a url", "http://127.0.0.1:1", "ftp://x"])
def test_fetch_stats_never_raises(url: str) -> None:
    result = fetch_stats(url, timeout_s=0.5)
    assert result.stats is None and result.problem


# --- pure aggregations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_model_confidence", [True, False])
def test_confidence_histogram(with_model_confidence: bool) -> None:
    """Tier 1's own confidence when logged (every review that reached the model); else labelled answers only."""
    recs = fixture_records("predictions.jsonl")
    if not with_model_confidence:
        recs = [{k: v for k, v in r.items() if k != "model_confidence"} for r in recs]
    column = "model_confidence" if with_model_confidence else "confidence"
    counted = [r[column] for r in recs if (r[column] is not None if with_model_confidence else r["label"] is not None)]
    df = aggregate.predictions_frame(recs)
    assert aggregate.confidence_column(df) == column
    expected = [0] * 10
    for c in counted:
        expected[min(int(c * 10), 9)] += 1
    assert aggregate.confidence_histogram(df, bins=10)["count"].tolist() == expected


def test_reason_counts_match_fixture() -> None:
    recs = fixture_records("predictions.jsonl")
    expected = Counter((r["reason_code"], r["status"]) for r in recs if r["status"] != "ok")
    got = aggregate.reason_counts(aggregate.predictions_frame(recs))
    assert {(r.reason_code, r.status): r.count for r in got.itertuples()} == expected
    assert got["count"].is_monotonic_decreasing


def test_status_counts_always_has_all_three() -> None:
    df = aggregate.predictions_frame([{"status": "ok"}, {"status": "ok"}, {"status": "weird"}])
    counts = aggregate.status_counts(df).set_index("status")["count"].to_dict()
    assert counts == {"ok": 2, "fallback": 0, "rejected": 0, "weird": 1}


def test_frames_tolerate_missing_and_garbled_fields() -> None:
    df = aggregate.predictions_frame([{"ts": "yesterday", "confidence": "high"}, {}])
    assert len(df) == 2 and df["ts"].isna().all() and df["confidence"].isna().all()
    q = aggregate.queue_frame([{"request_id": "x", "model": "garbage", "rules": None}])
    assert q.loc[0, "request_id"] == "x" and pd.isna(q.loc[0, "model_label"])


def test_labels_over_time_shares_sum_to_one() -> None:
    recs = fixture_records("predictions.jsonl")
    df = aggregate.predictions_frame(recs)
    out = aggregate.labels_over_time(df, "15min")
    assert out.groupby("bucket")["share"].sum().round(9).eq(1).all()
    assert out["n"].sum() == sum(r["label"] is not None for r in recs)


def test_bucket_for_grows_with_the_span() -> None:
    def frame(hours: float, n: int) -> pd.DataFrame:
        ts = pd.date_range("2026-01-01", periods=n, freq=pd.Timedelta(hours=hours) / n, tz="UTC")
        return pd.DataFrame({"ts": ts})

    assert aggregate.bucket_for(frame(1, 10_000)) == "1min"
    assert aggregate.bucket_for(frame(24 * 30, 10_000)) in {"12h", "1D"}
    assert pd.Timedelta(aggregate.bucket_for(frame(4, 200))) >= pd.Timedelta("15min")  # 200 points: few buckets


@pytest.mark.slow  # a multi-second test: the fast stage stays under a minute
def test_models_panel_shows_aliases_versions_shadow_and_history(settings: Settings, tmp_path: Path) -> None:
    from sentiment.jsonl import append_records
    from sentiment.model.aliases import AliasRegistry
    from sentiment.shadow_log import ShadowRecord
    from tests.support.models import isolated_store
    from tests.support.tiny_model import register_tiny_model

    with isolated_store(tmp_path / "home"):
        at = run_app("models")
        assert "No stored versions" in all_text(at)
        first, second = register_tiny_model(seed=0), register_tiny_model(seed=1)
        AliasRegistry("review-sentiment").promote("challenger", second, "retrained on human labels")
        append_records(
            settings.paths.shadow_log,
            [
                ShadowRecord(
                    request_id=f"r{i}",
                    champion_tag=first,
                    champion_label="positive",
                    champion_confidence=0.9,
                    challenger_tag=second,
                    challenger_label="positive" if i < 3 else "neutral",
                    challenger_confidence=0.8,
                )
                for i in range(4)
            ],
        )
        at = run_app("models")
    shown = metrics(at)
    assert shown["champion (serving)"] == first and shown["challenger (shadowed)"] == second
    assert shown["shadow agreement"] == "75.0%"
    text = all_text(at)
    assert "No gate has run" in text and "4 answers" in text
    history = at.dataframe[-1].value
    assert list(history["alias"])[:2] == ["challenger", "champion"]  # newest first: the challenger, the bootstrap
    assert set(at.dataframe[0].value["aliases"]) >= {"champion", "challenger"}


def _scored_records(n: int, tag: str, start: str, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Answers with logged probabilities over several hours, and true labels drawn from them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    t0 = pd.Timestamp(start)
    recs = [
        model_record(
            f"{tag}-{i}", p[i], tag, ts=(t0 + pd.Timedelta(minutes=3 * i)).isoformat().replace("+00:00", "Z")
        ).model_dump(mode="json")
        for i in range(n)
    ]
    return recs, [LABELS[int(k)] for k in y]


def test_overview_draws_estimated_performance_per_version_beside_realised(settings: Settings) -> None:
    from sentiment.records import HumanLabel

    old, _ = _scored_records(200, "m:1", "2026-11-20T00:00:00Z", 0)
    new, truth = _scored_records(200, "m:2", "2026-11-20T10:00:00Z", 1)
    append_records(settings.paths.predictions_log, [*old, *new])
    labelled = [HumanLabel(request_id=r["request_id"], text="t", label=y) for r, y in zip(new, truth, strict=True)]
    append_records(settings.paths.human_labels, labelled[:120])
    at = run_app("overview")
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    titles = [str(s.get("title")) for s in specs]
    perf = next(s for s, t in zip(specs, titles, strict=True) if t.startswith("Estimated macro-F1"))
    assert any(t.startswith("Estimated class mix") for t in titles)
    assert len(perf["layer"]) == 3  # the band, the estimate, the points on labelled answers
    assert "have at least 10 operator labels" in all_text(at)
    frame = aggregate.predictions_frame([*old, *new])
    labels = {r.request_id: r.label.value for r in labelled[:120]}
    f1, mix = aggregate.performance_over_time(frame, labels, aggregate.bucket_for(frame))
    assert set(f1["model_tag"]) == {"m:1", "m:2"}
    realised = f1[f1["figure"] == "realised (operator labels)"]
    assert len(realised) and set(realised["model_tag"]) == {"m:2"} and (realised["labelled"] >= 10).all()
    same = f1[f1["figure"] == "estimated on the same labelled answers"]
    assert list(same["bucket"]) == list(realised["bucket"])  # each realised point has its blind estimate beside it
    assert set(mix["label"]) == set(LABELS)
    assert np.allclose(mix.groupby(["bucket", "model_tag"])["share"].sum(), 1.0)
    blind, _ = aggregate.performance_over_time(frame, {}, "1h")
    assert (blind["figure"] == "estimated").all()


def test_drift_panel_shows_the_performance_section_and_its_verdict(settings: Settings) -> None:
    from drift.report import PerformanceReport
    from sentiment.estimation import estimate

    rng = np.random.default_rng(0)
    sharp, flat = rng.normal(0, 2.0, (600, 3)), rng.normal(0, 0.5, (600, 3))
    ref = estimate(np.exp(sharp) / np.exp(sharp).sum(1, keepdims=True))
    cur = estimate(np.exp(flat) / np.exp(flat).sum(1, keepdims=True), model_tag="m:2")
    drop = round(ref.macro_f1.value - cur.macro_f1.value, 4)
    perf = PerformanceReport(method="cbpe", window=500, threshold=0.05, reference=ref, current={"m:2": cur},
                             drop={"m:2": drop}, performance_drop=True, detail="m:2 fell")  # fmt: skip
    report = json.loads((FIXTURES / "drift.json").read_text())
    settings.paths.drift_report.write_text(json.dumps({**report, "performance": perf.model_dump(mode="json")}))
    at = run_app("drift")
    assert any("performance_drop" in e.value and "m:2 fell" in e.value for e in at.error)
    table = next(d.value for d in at.dataframe if "period" in d.value.columns)
    assert list(table["period"]) == ["early (all versions)", "late m:2"]
    assert table["macro-F1"][1].startswith(f"{cur.macro_f1.value:.3f} [")
    settings.paths.drift_report.write_text(json.dumps({**report, "performance": {"reference": "garbled"}}))
    assert "unreadable performance section" in all_text(run_app("drift"))
