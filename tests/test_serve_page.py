"""The page in a real browser: Debian's Chromium driven by Playwright (never `playwright install`).

Screenshots of each page state are saved under out/test-screenshots/ when a check fails
(every state with LIVEMASK_SCREENSHOT_ALWAYS=1).
"""

from __future__ import annotations

import base64
import json
import re

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
            return {w: c.width, h: c.height, data: c.toDataURL('image/png'), labels: c.dataset.labels}; }""")
        assert (info["w"], info["h"]) == (800, 800)  # a 512 px photo is drawn at 800 px (small photos up)
        assert info["labels"] == "full"  # one face: its label in words on the photo
        drawn = cv2.imdecode(np.frombuffer(base64.b64decode(info["data"].split(",")[1]), np.uint8), cv2.IMREAD_COLOR)
        shown = cv2.resize(cv2.imdecode(np.frombuffer(photo.read_bytes(), np.uint8), 1), (800, 800))
        diff = np.abs(drawn.astype(int) - shown.astype(int))
        changed = diff.sum(axis=2) > 60
        assert 0.002 < changed.mean() < 0.2  # a box and a label, not a blank or replaced image
        red = (drawn[..., 2] > 200) & (drawn[..., 1] < 80) & (drawn[..., 0] < 80) & changed
        assert red.sum() > 200
    with page_state(page, "photo-explained"):
        faces.first.click()
        page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
        assert card.locator(".explain-face[open]").count() == 1  # the face asked for opens
        maps = card.locator("img.heatmap")
        assert sorted(maps.nth(i).get_attribute("data-method") for i in range(maps.count())) == ["gradcam", "occlusion"]
        for i in range(maps.count()):  # decoded by the browser, at the tile size
            assert page.evaluate("(img) => img.complete && img.naturalWidth", maps.nth(i).element_handle()) >= 48
        assert card.locator(".legend img").count() == 1
    with page_state(page, "photo-explained-words"):
        # each map: at least 256 px on screen, a sentence in words, a trust verdict, the numbers folded away
        figures = card.locator("figure.map")
        assert figures.count() == 2
        for i in range(2):
            fig = figures.nth(i)
            assert fig.locator("img.heatmap").bounding_box()["width"] >= 256
            assert re.match(r"The (model looked mostly at|map is spread over) the .+ \(\d+% of the map\)\.$",
                            fig.locator(".looked-at").inner_text())
            verdict = fig.locator(".verdict").inner_text()
            assert re.match(r"Explains the decision (well|only in part|poorly): .*random", verdict)
            assert fig.locator(".warning").count() == (1 if fig.get_attribute("data-trust") == "poor" else 0)
            assert not fig.locator("details p").first.is_visible()  # the figures wait under "details"
            fig.locator("details summary").click()
            assert "deletion area" in fig.locator("details p").first.inner_text()
        img = figures.first.locator("img.heatmap")
        img.click()  # zoom: the map fills most of the viewport, a second click puts it back
        assert img.bounding_box()["width"] >= 600
        img.click()
        assert img.bounding_box()["width"] < 400
    with page_state(page, "photo-downloads"):
        with page.expect_download() as dl:
            card.locator(".download-json").click()
        data = json.loads(open(dl.value.path()).read())
        assert data["faces"][0]["label"] == "no_mask" and data["explanations"][0]["index"] == 0
        with page.expect_download() as dl:
            card.locator(".download-image").click()
        annotated = cv2.imread(dl.value.path())
        assert annotated.shape == (800, 800, 3)  # what the page shows


def test_a_map_worse_than_random_carries_a_visible_warning(server, page, classifier, astronaut_bgr, tmp_path):
    """The server's words for a real map turned upside down (its least important pixels first, which does
    worse than random when deleted with a flat skin fill; see tests/test_explain_words.py) replace the first
    map's summary in the real answer: the page shows the warning."""
    from livemask.explain.base import Explanations
    from livemask.explain.suite import ExplainSuite
    from livemask.explain.words import summarise

    crops = classifier.crops(astronaut_bgr, __import__("face_detector").CenterFaceDetector().detect(astronaut_bgr))
    occ = ExplainSuite(classifier, fill="skin").explainers["occlusion"]
    real = occ.explain(crops)
    inverted = (1.0 - real.maps).astype(np.float32)
    scored = occ.score(classifier.prepare(crops), inverted, real.targets)
    bad = summarise(Explanations("occlusion", inverted, real.raw, real.targets, real.probabilities, real.log_odds,
                                 real.class_names, 1.0, scored), 0).record()
    assert bad["trust"] == "poor"

    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(encode(astronaut_bgr))

    def swap(route):  # the browser's upload body is a blob Playwright cannot pass on: the same file, sent again
        import httpx

        answer = httpx.post(server.url + "/v1/explain?method=all&face=0", timeout=120,
                            files={"file": ("astronaut.jpg", photo.read_bytes(), "image/jpeg")}).json()
        answer["faces"][0]["explanations"][0]["summary"] = bad
        route.fulfill(json=answer)

    page.route("**/v1/explain**", swap)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.set_input_files("#files", str(photo))
    page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
    page.locator(".card .face").first.click()
    with page_state(page, "photo-explained-warning"):
        page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
        warning = page.locator("figure.map .warning")
        assert warning.count() == 1 and warning.is_visible()
        assert "worse than a random one" in warning.inner_text()
        colour = page.evaluate("(e) => getComputedStyle(e).backgroundColor", warning.element_handle())
        assert colour != "rgba(0, 0, 0, 0)"  # a coloured box, not plain text
        assert "slower than removing random regions" in page.locator("figure.map .verdict").first.inner_text()


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
@pytest.fixture(scope="module")
def crowd_photo(data_dir, detector):
    """A small crowd photo as the issue saw one: the scenes image with the most annotated faces whose copy
    256 px wide still shows at least 20 faces to the detector, as JPEG bytes."""
    import re

    scenes = data_dir / "scenes"
    ranked = sorted(scenes.glob("annotations/*.xml"), key=lambda p: -len(re.findall("<object>", p.read_text())))
    for xml in ranked[:10]:
        image = cv2.imread(str(scenes / "images" / (xml.stem + ".jpg")))
        if image is None:
            continue
        small = cv2.resize(image, (256, round(image.shape[0] * 256 / image.shape[1])), interpolation=cv2.INTER_AREA)
        data = encode(small)
        n = len(detector.detect(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)))  # what the server gets
        if n >= 20:
            return data, n
    pytest.skip("no scenes photo with 20 faces at 256 px")


def test_a_crowd_on_a_phone_numbered_labels_paged_explanations_no_sideways_scroll(server, browser, crowd_photo,
                                                                                   tmp_path):
    data, faces = crowd_photo
    photo = tmp_path / "crowd.jpg"
    photo.write_bytes(data)
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        page.set_input_files("#files", str(photo))
        card = page.locator(".card").first
        with page_state(page, "phone-crowd-labelled"):
            page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
            assert card.locator(".face").count() == faces
            scroll = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert scroll[0] <= scroll[1], scroll  # nothing scrolls sideways at 390 px
            status = page.locator("#status").bounding_box()
            assert status["height"] < 60 and status["width"] > 250, status  # a line, not one word per line
            canvas = card.locator("canvas.photo")
            box, side = canvas.bounding_box(), card.locator(".card-body").bounding_box()
            assert box["width"] >= 0.95 * side["width"] and box["width"] > 256  # the card's width: the photo scaled up
            assert canvas.get_attribute("data-labels") == "numbers"  # a crowd: numbers on the photo, words in the list
            assert page.evaluate("() => document.querySelector('canvas.photo').width") >= 800
        with page_state(page, "phone-crowd-explained"):
            button = card.locator(".explain-all")
            assert button.inner_text() == f"Explain faces 1-8 of {faces}"
            height = page.evaluate("() => document.documentElement.scrollHeight")
            button.click()
            page.wait_for_selector(".card[data-state='explained']", timeout=240_000)
            folds = card.locator(".explain-face")
            assert folds.count() == 8 and card.locator(".explain-face[open]").count() == 1
            assert button.inner_text() == f"Explain faces 9-16 of {faces}"
            grown = page.evaluate("() => document.documentElement.scrollHeight") - height
            assert grown < 2600, grown  # eight folded faces and one open, not 8 x 3 maps
            second = folds.nth(1).locator("> summary").inner_text()
            assert re.match(r"face 2: .+ \u2014 The (model looked|map is spread)", second), second
            scroll = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert scroll[0] <= scroll[1], scroll
        icon = page.request.get(server.url + "/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
        assert not missing, missing  # no 404 (the favicon included)
    finally:
        context.close()
