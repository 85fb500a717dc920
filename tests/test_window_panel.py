"""The explanation panel's layout: how many faces fit a space, and one page of them (no display)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from livemask.explain.panel import FaceView, PanelRenderer


def faces_and_results(n: int, methods=("gradcam",)):
    rng = np.random.default_rng(0)
    faces = [FaceView(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "mask", 0.9) for _ in range(n)]
    results = [SimpleNamespace(method=m, maps=rng.random((n, 8, 8)), class_names=("mask", "no_mask"),
                               targets=np.zeros(n, int), ms_per_face=12.0, faithfulness=None) for m in methods]
    return faces, results


def test_fit_counts_rows_and_columns_in_the_space():
    r = PanelRenderer(tile=160)
    row_w, row_h = r.row_size(1)
    assert r.fit(1, row_w * 2 + 10, r.TITLE_H + row_h * 3 + 5) == (3, 2)
    assert r.fit(1, 10, 10) == (1, 1)  # never less than one face
    assert r.fit(2, 10_000, 10_000)[0] == r.rows_per_column  # at most rows_per_column per column


def test_a_page_holds_only_its_faces_and_fits():
    r = PanelRenderer(tile=160)
    faces, results = faces_and_results(9)
    height = r.TITLE_H + 3 * r.row_size(1)[1] + 20  # room for 3 rows (the captions hold the map in words)
    rows, cols = r.fit(1, 504, height)
    assert (rows, cols) == (3, 1)
    pages = [r.panel(faces, results, "t", start=k, count=3, rows=rows) for k in (0, 3, 6)]
    for page in pages:
        assert page.shape[0] <= height and page.shape[1] <= 504
        assert page.shape[0] == r.TITLE_H + 3 * r.row_size(1)[1]
    assert not np.array_equal(pages[0], pages[1])  # other faces
    whole = r.panel(faces, results, "t")
    assert whole.shape[1] > pages[0].shape[1]  # all 9 faces need 3 columns

