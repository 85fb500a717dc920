"""The page in a real browser: Debian's Chromium driven by Playwright (never `playwright install`).

Screenshots of each page state are saved under out/test-screenshots/ when a check fails
(every state with LIVEMASK_SCREENSHOT_ALWAYS=1).
"""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
from servehelpers import ServerThread, chromium_or_skip, encode, masked_photos, page_state

pytest.importorskip("playwright")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server(detector, classifier):
    from livemask.explain.suite import ExplainSuite
    from livemask.web.app import create_app

    with ServerThread(create_app(detector, classifier, ExplainSuite(classifier))) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda err: errors.append(str(err)))
    yield pg
    context.close()
    assert not errors, errors


def test_upload_a_photo_see_the_labelled_face_then_explain(server, page, astronaut_bgr, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(encode(astronaut_bgr))
    page.goto(server.url + "/")
    with page_state(page, "photo-empty"):
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        assert "Photo" in page.inner_text("#tabs")
        assert "No mask" in page.inner_text("#status")  # class names from the model, in words
    page.set_input_files("#files", str(photo))
    card = page.locator(".card").first
    with page_state(page, "photo-labelled"):
        page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
        faces = card.locator(".face")
        assert faces.count() == 1
        assert faces.first.get_attribute("data-label") == "no_mask"
        text = faces.first.inner_text()
        assert text.startswith("1: No mask") and text.strip().endswith("%")
        # the box is drawn on the canvas: the pixel on the box edge is the no-mask red, not the photo
        info = page.evaluate("""() => { const c = document.querySelector('.card canvas.photo');
            return {w: c.width, h: c.height, data: c.toDataURL('image/png')}; }""")
        assert (info["w"], info["h"]) == (512, 512)
        drawn = cv2.imdecode(np.frombuffer(base64.b64decode(info["data"].split(",")[1]), np.uint8), cv2.IMREAD_COLOR)
        diff = np.abs(drawn.astype(int) - cv2.imdecode(np.frombuffer(photo.read_bytes(), np.uint8), 1).astype(int))
        changed = diff.sum(axis=2) > 60
        assert 0.002 < changed.mean() < 0.2  # a box and a label, not a blank or replaced image
        red = (drawn[..., 2] > 200) & (drawn[..., 1] < 80) & (drawn[..., 0] < 80) & changed
        assert red.sum() > 200
    with page_state(page, "photo-explained"):
        faces.first.click()
        page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
        maps = card.locator("img.heatmap")
        assert sorted(maps.nth(i).get_attribute("data-method") for i in range(maps.count())) == ["gradcam", "occlusion"]
        for i in range(maps.count()):  # decoded by the browser, at the tile size
            assert page.evaluate("(img) => img.complete && img.naturalWidth", maps.nth(i).element_handle()) >= 48
        assert "faithfulness: deletion AUC" in card.locator(".explain-row").inner_text()
        assert card.locator(".legend img").count() == 1
    with page_state(page, "photo-downloads"):
        with page.expect_download() as dl:
            card.locator(".download-json").click()
        data = json.loads(open(dl.value.path()).read())
        assert data["faces"][0]["label"] == "no_mask" and data["explanations"][0]["index"] == 0
        with page.expect_download() as dl:
            card.locator(".download-image").click()
        annotated = cv2.imread(dl.value.path())
        assert annotated.shape == (512, 512, 3)


def test_several_photos_and_explain_all(server, page, detector, data_dir, tmp_path):
    paths = []
    for name, data in masked_photos(data_dir, detector, limit=2):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.set_input_files("#files", paths)
    with page_state(page, "photos-masked"):
        page.wait_for_function("document.querySelectorAll(\".card[data-state='labelled']\").length == 2",
                               timeout=60_000)
        labels = page.eval_on_selector_all(".face", "els => els.map(e => e.dataset.label)")
        assert labels and labels.count("mask") >= len(labels) - 1, labels
        assert "Mask" in page.inner_text("#results")
    with page_state(page, "photos-explain-all"):
        page.locator(".card").first.locator(".explain-all").click()
        page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
        assert page.locator(".card").first.locator("img.heatmap").count() >= 2


def test_an_upload_error_is_shown_not_thrown(server, page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.set_input_files("#files", str(bad))
    with page_state(page, "photo-error"):
        page.wait_for_selector(".card[data-state='error']", timeout=30_000)
        assert "415: not an image" in page.locator(".card .message").inner_text()


def test_page_waits_for_the_explanation_model_then_shows_the_maps(browser, detector, classifier, astronaut_bgr,
                                                                  tmp_path):
    """While the Keras model loads the server answers 503 + Retry-After; the page says so, asks again after
    that many seconds and shows the maps once the model is there."""
    import threading

    from livemask.explain.suite import ExplainSuite
    from livemask.web.app import create_app
    from livemask.web.explaining import ExplainerLoader

    release = threading.Event()

    def slow_suite():
        release.wait(60)
        return ExplainSuite(classifier)

    loader = ExplainerLoader(slow_suite, wait_s=0.1)
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(encode(astronaut_bgr))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    answers = []
    page.on("response", lambda r: answers.append(r.status) if "/v1/explain" in r.url else None)
    with ServerThread(create_app(detector, classifier, loader)) as srv:
        page.goto(srv.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        page.set_input_files("#files", str(photo))
        card = page.locator(".card").first
        page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
        with page_state(page, "photo-explain-loading"):
            card.locator(".face").first.click()
            page.wait_for_function("() => document.querySelector('.card .message')?.textContent"
                                   ".includes('loading the explanation model')", timeout=30_000)
            assert card.get_attribute("data-state") == "explaining"
        release.set()
        with page_state(page, "photo-explained-after-loading"):
            page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
            assert card.locator("img.heatmap").count() == 2
    context.close()
    assert answers[0] == 503 and answers[-1] == 200, answers


def test_page_shows_in_words_why_explanations_are_unavailable(browser, detector, classifier, astronaut_bgr,
                                                              tmp_path):
    from livemask.models.backends.exported import ExplanationsNeedKeras
    from livemask.web.app import create_app
    from livemask.web.explaining import ExplainerLoader

    def no_tensorflow():
        raise ExplanationsNeedKeras("explanations need TensorFlow, which this install lacks: "
                                    "pip install 'livemask[tf]'")

    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(encode(astronaut_bgr))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    with ServerThread(create_app(detector, classifier, ExplainerLoader(no_tensorflow))) as srv:
        page.goto(srv.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        page.set_input_files("#files", str(photo))
        card = page.locator(".card").first
        page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
        with page_state(page, "photo-explain-unavailable"):
            card.locator(".face").first.click()
            page.wait_for_selector(".card[data-state='error']", timeout=30_000)
            assert "pip install 'livemask[tf]'" in card.inner_text()
    context.close()
