"""``serve`` labels with the exported classifier from start-up; the Keras model (and TensorFlow) load apart.

A real ``livemask serve`` process with the default config answers ``/healthz`` and labels photos
without TensorFlow in its memory; the first explain request loads it and is answered. A request
that comes while the model is still loading past the bound is a 503 with Retry-After; a model that
cannot load is a 503 whose one line says what to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from servehelpers import ROOT, ServerThread, encode

from livemask.web.explaining import ExplainerLoader


def _tensorflow_mapped(pid: int) -> bool:
    """True when the process has TensorFlow's shared library in memory (imported)."""
    maps = open(f"/proc/{pid}/maps").read()
    return "libtensorflow" in maps or "_pywrap_tensorflow" in maps


def _post(url: str, data: bytes, timeout: float = 120):
    boundary = "livemaskboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, dict(res.headers), json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as res:
        return json.loads(res.read())


@pytest.fixture(scope="module")
def served():
    """``livemask serve --port 0`` with the default config, as a real process."""
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert "serving on http://127.0.0.1:" in line, (line, proc.poll())
        url = line.split("serving on ")[1].split()[0].rstrip("/")
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_labels_without_tensorflow_and_loads_it_on_the_first_explain(served, astronaut_bgr):
    proc, url = served
    assert _get(url + "/healthz")["status"] == "ok"
    summary = _get(url + "/v1/summary")
    assert summary["explain_model"] == "not loaded" and summary["explain"] is True
    status, _, labels = _post(url + "/v1/image", encode(astronaut_bgr))
    assert status == 200 and [f["label"] for f in labels["faces"]] == ["no_mask"]
    assert not _tensorflow_mapped(proc.pid), "TensorFlow was loaded before any explanation"
    for _ in range(30):  # as the page does: a 503 with Retry-After (still loading on a busy machine) is retried
        status, headers, explained = _post(url + "/v1/explain?method=gradcam", encode(astronaut_bgr))
        if status != 503:
            break
        time.sleep(float(headers.get("retry-after", headers.get("Retry-After"))))
    assert status == 200, explained
    assert [e["method"] for e in explained["faces"][0]["explanations"]] == ["gradcam"]
    assert explained["faces"][0]["label"] == "no_mask"
    assert _tensorflow_mapped(proc.pid)
    assert _get(url + "/v1/summary")["explain_model"] == "ready"


def _app(detector, classifier, loader):
    from livemask.web.app import create_app

    return create_app(detector, classifier, loader)


def test_explain_while_the_model_still_loads_is_503_with_retry_after_then_answered(detector, classifier,
                                                                                  astronaut_bgr):
    from livemask.explain.suite import ExplainSuite

    release = threading.Event()

    def slow_suite():
        release.wait(60)
        return ExplainSuite(classifier)

    loader = ExplainerLoader(slow_suite, wait_s=0.2)
    with ServerThread(_app(detector, classifier, loader)) as srv:
        status, headers, body = _post(srv.url + "/v1/explain?method=gradcam", encode(astronaut_bgr))
        assert status == 503 and headers.get("retry-after", headers.get("Retry-After")) == "2"
        assert "still loading" in body["error"]
        assert _get(srv.url + "/v1/summary")["explain_model"] == "loading"
        release.set()
        loader.join(60)
        status, _, body = _post(srv.url + "/v1/explain?method=gradcam", encode(astronaut_bgr))
        assert status == 200 and len(body["faces"]) == 1


def test_a_model_that_cannot_load_is_a_one_line_503_naming_the_extra(detector, classifier, astronaut_bgr):
    from livemask.models.backends.exported import ExplanationsNeedKeras

    def no_tensorflow():
        raise ExplanationsNeedKeras("explanations need TensorFlow, which this install lacks: "
                                    "pip install 'livemask[tf]'")

    loader = ExplainerLoader(no_tensorflow)
    with ServerThread(_app(detector, classifier, loader)) as srv:
        status, headers, body = _post(srv.url + "/v1/explain", encode(astronaut_bgr))
        assert status == 503 and "retry-after" not in {k.lower() for k in headers}
        assert body["error"] == ("explanations are not available: explanations need TensorFlow, which this "
                                 "install lacks: pip install 'livemask[tf]'")
        summary = _get(srv.url + "/v1/summary")
        assert summary["explain"] is False and summary["explain_model"] == "unavailable"
        status, _, labels = _post(srv.url + "/v1/image", encode(astronaut_bgr))
        assert status == 200 and len(labels["faces"]) == 1  # labels still work


def test_background_load_starts_without_a_request_and_only_once(classifier):
    """``serve --explain-load background`` calls ``start`` after start-up: the suite is made once, warmed up."""
    from livemask.explain.suite import ExplainSuite

    made = []

    def make():
        made.append(1)
        return ExplainSuite(classifier)

    loader = ExplainerLoader(make)
    assert loader.state == "not loaded"
    loader.start()
    loader.start()
    loader.join(120)
    assert loader.state == "ready" and made == [1]
    assert loader.explainer is not None and loader.explainer.suite.classifier is classifier
