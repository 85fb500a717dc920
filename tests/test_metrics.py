"""Prometheus metrics: a real run's counts, scraped over HTTP and parsed with prometheus-client's parser, equal
the run's summary; ``run --metrics-port`` refuses a busy port; ``serve``'s ``/metrics`` needs the token."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
from fastapi.testclient import TestClient
from livehelpers import MODEL, run_cli, write_clip

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from livemask.sinks.metrics import Metrics  # noqa: E402


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("metrics") / "face.mp4", 90, fps=30.0)


def test_a_runs_metrics_over_http_equal_its_summary(clip, tmp_path):
    from livemask.apps import compose

    config = compose.apply_overrides(compose.load_config(), {
        "classifier.model_path": str(MODEL), "source.source": str(clip), "run.headless": True,
        "run.snapshot_dir": str(tmp_path / "snaps"), "alerts.after_s": 0.5}, "test")
    metrics = Metrics()
    port = metrics.serve(0)
    try:
        engine = compose.run_engine(config, threading.Event(), metrics=metrics)
        summary = engine.run()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert answer.status == 200
            text = answer.read().decode()
    finally:
        metrics.close()
    got = samples(text)
    cam = (("camera", "default"),)
    assert got[("livemask_frames_read_total", cam)] == summary["frames_read"] == 90
    assert got[("livemask_frames_processed_total", cam)] == summary["frames_processed"]
    assert got[("livemask_frames_dropped_total", cam)] == summary["dropped"]
    assert got[("livemask_source_reconnects_total", cam)] == summary["reconnects"]
    for label, n in summary["faces"].items():
        assert got[("livemask_faces_total", (("camera", "default"), ("class", label)))] == n
    assert sum(v for (name, _), v in got.items() if name == "livemask_faces_total") == sum(summary["faces"].values())
    assert got[("livemask_capture_to_result_seconds_count", cam)] == summary["frames_written"]
    assert got[("livemask_people_counted", cam)] == summary["people"]["counted"] >= 1
    assert got[("livemask_people_masked", cam)] == summary["people"]["masked"]
    assert got[("livemask_masked_share", cam)] == pytest.approx(summary["people"]["share_masked"], abs=1e-4)
    assert got[("livemask_alerts_fired_total", cam)] == summary["alerts"]["fired"] == summary["people"]["alerts"] >= 1
    assert got[("livemask_sink_dropped_total", (("camera", "default"), ("sink", "metrics")))] == 0
    assert got[("livemask_model_load_seconds", ())] > 0


def test_metrics_port_busy_is_a_usage_error(clip):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = run_cli("--source", str(clip), "--headless", "--metrics-port", str(port), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("livemask: error: --metrics-port") and "Traceback" not in proc.stderr


def test_serve_metrics_need_the_token(detector, classifier):
    from livemask.web.app import create_app
    from livemask.web.metrics_route import add_metrics_route

    token = "metrics-token-0123456789"
    metrics = Metrics()
    metrics.model_load.set(1.5)
    app = create_app(detector, classifier, None, token=token)
    add_metrics_route(app, metrics)
    with TestClient(app, base_url="http://127.0.0.1") as client:  # the Host check answers only our names
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert samples(answer.text)[("livemask_model_load_seconds", ())] == 1.5
