"""``livemask report``: numbers equal hand counts (across a day boundary and a DST change), the page in a real
Chromium (every chart drawn, the tables, no request leaves), malformed / truncated / empty inputs, and a 1 GB
log aggregated in a subprocess whose peak RSS stays under 500 MB."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import cv2
import pytest
from eventsmaker import Hour, write_big, write_plan
from livehelpers import start_serve

from livemask.apps.cli import main

ZONE = "Europe/Berlin"  # summer time ends 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC)
T0 = datetime(2026, 10, 24, 21, 0, tzinfo=UTC).timestamp()  # 23:00 CEST, 24 Oct
H = 3600.0
BAD = ["not json", '{"frame_id": 3, "timestam', "[1, 2]", '{"foo": 1}']  # 4 malformed lines

# hand counts, Berlin time: 23:00+02 | 00:00+02 | 01:00+02 | 02:00+02 | 02:00+01 | 03:00+01
NORTH = dict(people=[3, 2, 0, 4, 1, 2], masked=[2, 2, 0, 1, 1, 0], alerts=[1, 0, 0, 2, 0, 1])
SOUTH = dict(people=[1, 0, 5, 3], masked=[1, 0, 5, 0], alerts=[0, 0, 1, 3])  # from 01:00+02 on
STARTS = ["2026-10-24T23:00+02:00", "2026-10-25T00:00+02:00", "2026-10-25T01:00+02:00",
          "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00", "2026-10-25T03:00+01:00"]


@pytest.fixture
def logs(tmp_path, astronaut_bgr):
    snap = tmp_path / "snaps" / "alert-1.png"
    snap.parent.mkdir()
    cv2.imwrite(str(snap), cv2.GaussianBlur(astronaut_bgr[30:230, 150:330], (31, 31), 0))  # a blurred face crop
    north = [Hour(T0 + i * H, 4, p, m, a, ("mask", "no_mask"), BAD if i == 1 else [])
             for i, (p, m, a) in enumerate(zip(*NORTH.values(), strict=True))]
    south = [Hour(T0 + (i + 2) * H, 2, p, m, a, ("mask_incorrect",))
             for i, (p, m, a) in enumerate(zip(*SOUTH.values(), strict=True))]
    a = write_plan(tmp_path / "north.jsonl", north, camera="north-door", snapshot="snaps/alert-1.png")
    b = write_plan(tmp_path / "south.jsonl", south, summary=False)
    with b.open("a") as f:
        f.write('{"frame_id":99,"timestamp":17')  # a truncated last line: malformed number 5
    return [a, b]


def run_report(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["report", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_csv_and_json_equal_the_hand_counts(logs, capsys):
    code, out, err = run_report([*logs, "--tz", ZONE, "--format", "csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    got = {(r["camera"], r["start"]): r for r in rows}
    for i, start in enumerate(STARTS):
        r = got[("north-door", start)]
        assert (int(r["people"]), int(r["masked"]), int(r["alerts"])) == \
            (NORTH["people"][i], NORTH["masked"][i], NORTH["alerts"][i]), start
        assert (int(r["frames"]), int(r["faces_mask"]), int(r["faces_no_mask"])) == (4, 4, 4)
    for i, start in enumerate(STARTS[2:]):
        r = got[("south", start)]
        assert (int(r["people"]), int(r["masked"]), int(r["alerts"]), int(r["faces_mask_incorrect"])) == \
            (SOUTH["people"][i], SOUTH["masked"][i], SOUTH["alerts"][i], 2), start
    site = {r["start"]: r for r in rows if r["camera"] == "site"}
    assert [int(site[s]["people"]) for s in STARTS] == [3, 2, 1, 4, 6, 5]
    assert [int(site[s]["masked"]) for s in STARTS] == [2, 2, 1, 1, 6, 0]
    assert site[STARTS[4]]["share_masked"] == "1.0" and site[STARTS[5]]["share_masked"] == "0.0"
    assert len(rows) == 6 + 4 + 6
    assert "5 malformed skipped" in err

    code, out, err = run_report([*logs, "--tz", ZONE, "--format", "json", "--by", "day"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["malformed"] == 5 and doc["zone"] == ZONE and doc["cameras"] == ["north-door", "south"]
    by = {(r["camera"], r["start"]): r for r in doc["rows"]}
    assert {k: (r["people"], r["masked"], r["alerts"]) for k, r in by.items()} == {
        ("north-door", "2026-10-24T00:00+02:00"): (3, 2, 1), ("north-door", "2026-10-25T00:00+02:00"): (9, 4, 3),
        ("south", "2026-10-25T00:00+02:00"): (9, 6, 4),
        ("site", "2026-10-24T00:00+02:00"): (3, 2, 1), ("site", "2026-10-25T00:00+02:00"): (18, 10, 7)}
    assert len(doc["alerts"]) == 8 and sum(a["snapshot"] is not None for a in doc["alerts"]) == 4
    # each camera's totals over the whole report (the per-camera breakdown of the page)
    assert [(c["camera"], c["people"], c["masked"], c["alerts"]) for c in doc["by_camera"]] == [
        ("north-door", 12, 6, 4), ("south", 9, 6, 4)]


def test_a_run_split_over_files_by_its_run_field_is_counted_once(logs, tmp_path, capsys):
    lines = logs[0].read_text().splitlines()
    lines = [line if not line.startswith('{"frame_id"') else line[:-1] + ',"run":"r1"}' for line in lines]
    half = len(lines) // 2
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "events-20261024-1.jsonl").write_text("\n".join(lines[:half]) + "\n")
    (kept / "events-20261025-1.jsonl").write_text("\n".join(lines[half:]) + "\n")
    code, out, err = run_report([kept, "--tz", ZONE, "--format", "json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert {r["camera"] for r in rows} == {"north-door", "site"}
    assert [r["people"] for r in rows if r["camera"] == "north-door"] == NORTH["people"]
    assert [r["masked"] for r in rows if r["camera"] == "north-door"] == NORTH["masked"]


def test_from_to_counts_people_of_the_period_not_the_run_total(logs, capsys):
    code, out, err = run_report([*logs, "--tz", ZONE, "--format", "json", "--from", "2026-10-25T00:00",
                                 "--to", "2026-10-25T02:30+01:00"], capsys)
    assert code == 0, err
    site = [r for r in json.loads(out)["rows"] if r["camera"] == "site"]
    assert [(r["start"], r["people"], r["masked"]) for r in site] == [
        (STARTS[1], 2, 2), (STARTS[2], 1, 1), (STARTS[3], 4, 1), (STARTS[4], 6, 6)]


def test_the_page_in_chromium_shows_every_chart_and_table_and_asks_for_nothing(logs, tmp_path, capsys):
    from playwright.sync_api import sync_playwright
    from servehelpers import chromium_or_skip

    out = tmp_path / "report.html"
    code, _, err = run_report([*logs, "--tz", ZONE, "--out", out], capsys)
    assert code == 0, err
    text = out.read_text()
    assert "http://" not in text.replace("http://www.w3.org/", "") and "https://" not in text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
        page = browser.new_page()
        requests = []
        page.route("**/*", lambda route: (requests.append(route.request.url), route.abort()))
        page.set_content('<img src="http://127.0.0.1:9/x.png">')  # control: the interception sees requests
        page.wait_for_timeout(200)
        assert requests, "route interception saw nothing on the control page"
        requests.clear()
        page.set_content(text, wait_until="load")
        for chart in ("people", "share", "alerts", "labels", "cameras"):
            svg = page.locator(f"#chart-{chart} svg")
            assert svg.count() == 1, chart
            box = svg.bounding_box()
            assert box["width"] > 300 and box["height"] > 80, chart
            assert page.locator(f"#chart-{chart} svg path, #chart-{chart} svg use").count() > 10, chart
        site = page.locator("table.numbers").first.locator("tr")
        assert site.count() == 1 + 6
        cells = [site.nth(1 + i).locator("td").all_inner_texts() for i in range(6)]
        assert [c[0] for c in cells] == STARTS
        assert [int(c[3]) for c in cells] == [3, 2, 1, 4, 6, 5]
        by_camera = [page.locator("table.by-camera tr").nth(i).locator("td").all_inner_texts() for i in (1, 2)]
        assert [(c[0], int(c[2]), int(c[3]), int(c[5])) for c in by_camera] == [("north-door", 12, 6, 4),
                                                                              ("south", 9, 6, 4)]
        thumbs = page.locator(".thumbs img")
        assert thumbs.count() == 4
        assert thumbs.first.evaluate("img => img.complete && img.naturalWidth > 0")
        page.wait_for_timeout(200)
        browser.close()
    assert requests == []


def test_bad_inputs_are_one_line_and_the_documented_exit(tmp_path, logs, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    junk = tmp_path / "junk.jsonl"
    junk.write_text("\n".join(BAD) + "\n\n")
    folder = tmp_path / "nothing"
    folder.mkdir()
    cases = [([empty], 1, "no event line"), ([junk], 1, "4 malformed"), ([tmp_path / "nope.jsonl"], 2, "no such"),
             ([folder], 2, "no event log"), ([logs[0], "--tz", "Mars/Base"], 2, "unknown time zone"),
             ([logs[0], "--from", "yesterday"], 2, "--from"), ([logs[0], "--out", logs[0]], 2, "one of the inputs"),
             ([logs[0], "--from", "2030-01-01"], 1, "between --from and --to")]
    for args, exit_code, words in cases:
        before = logs[0].read_bytes()
        code, _, err = run_report(args, capsys)
        assert code == exit_code, (args, err)
        assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err, (args, err)
        assert logs[0].read_bytes() == before


@pytest.mark.slow
def test_a_1_gb_log_is_aggregated_with_a_bounded_peak_rss(tmp_path):
    log = tmp_path / "big.jsonl"
    truth = write_big(log, 1_000_000_000)
    code = ("import json, sys\n"
            "from livemask.report.inputs import event_files\n"
            "from livemask.report.aggregate import aggregate\n"
            "a = aggregate(event_files([sys.argv[1]]), 'hour', 'UTC')\n"
            "site = a.site()\n"
            "print(json.dumps({'lines': a.lines, 'frames': sum(r.frames for r in site), "
            "'people': sum(r.people for r in site), 'masked': sum(r.masked for r in site), "
            "'alerts': len(a.alerts), 'malformed': a.malformed, "
            "'rss_mb': next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')) / 1024}))\n")
    # VmHWM: the peak RSS since the subprocess's exec (ru_maxrss would carry the test process's own peak over)
    done = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert 50 < got["rss_mb"] <= 500, got
    assert {k: got[k] for k in ("lines", "frames", "people", "masked", "alerts")} == truth
    assert got["malformed"] == 0


@pytest.mark.slow
def test_batch_writes_the_report_beside_summary_csv_unless_no_report(data_dir, tmp_path):
    from test_batch import run_batch

    clip = data_dir / "videos" / "several_unmasked_faces.mp4"
    out = tmp_path / "batch"
    proc = run_batch(str(clip), "--out", str(out), "--workers", "1", "--no-report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "summary.csv").is_file() and not (out / "report.html").exists()
    proc = run_batch(str(clip), "--out", str(out), "--workers", "1", "--resume")  # nothing to redo: report only
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (out / "summary.csv").open(newline="") as fh:
        people = int(next(csv.DictReader(fh))["people"])
    text = (out / "report.html").read_text()
    assert people > 0 and f"<b>{people}</b>people" in text and "several_unmasked_faces" in text


@pytest.mark.slow
def test_serve_keeps_its_events_reports_them_and_the_live_page_charts_the_share(data_dir, tmp_path):

    import httpx
    from playwright.sync_api import sync_playwright
    from servehelpers import chromium_or_skip

    kept = tmp_path / "kept"
    clip = data_dir / "videos" / "several_unmasked_faces.mp4"
    proc, url = start_serve("--source", str(clip), "--set", f"report.events_dir={kept}",
                            "--set", f"run.snapshot_dir={tmp_path / 'snaps'}")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
            page = browser.new_page()
            page.goto(url + "/?mode=live")
            link = page.locator("#trend-report")
            assert link.get_attribute("href") == "/v1/report"
            deadline = time.monotonic() + 60
            live = {}
            while time.monotonic() < deadline:  # the clip plays at its own rate (about 11 s)
                live = httpx.get(url + "/v1/summary", timeout=10).json()["live"]
                if live["ended"]:
                    break
                time.sleep(0.5)
            assert live["ended"] and live["people"]["counted"] > 0, live
            page.reload()  # the chart's first sample: the run's totals
            page.wait_for_function("Number(document.getElementById('trend-canvas').dataset.points) >= 1",
                                   timeout=20_000)
            assert "%" in page.locator("#trend-now").inner_text()
            page.goto(url + "/v1/report?tz=UTC")
            assert page.locator("#chart-share svg").count() == 1 and page.locator("table.numbers").count() >= 2
            browser.close()
        doc = httpx.get(url + "/v1/report", params={"format": "json", "tz": "UTC"}, timeout=60).json()
        site = [r for r in doc["rows"] if r["camera"] == "site"]
        assert {r["camera"] for r in doc["rows"]} == {"live", "site"}  # report.camera, one run over the files
        assert sum(r["people"] for r in site) == live["people"]["counted"]
        # every processed frame is kept; the page's hub may have skipped some (a threaded sink drops when behind)
        assert live["frames"] <= sum(r["frames"] for r in site) <= 275 and doc["malformed"] == 0
        assert httpx.get(url + "/v1/report", params={"tz": "Mars/Base"}, timeout=30).status_code == 400
        gone = httpx.get(url + "/v1/report", params={"from": "2099-01-01"}, timeout=30)
        assert gone.status_code == 404 and "no event line" in gone.json()["error"]
        assert list(kept.glob("events-*.jsonl"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_kept_events_stay_under_max_mb_and_keep_days(tmp_path):
    import os

    from livemask.sinks.kept_events import KeptEvents, KeptEventsOptions, kept_files

    folder = tmp_path / "kept"
    folder.mkdir()
    now = 2_000_000_000.0
    for day, part, mb, age_days in [("20260101", 1, 1, 40), ("20260301", 1, 2, 9), ("20260301", 2, 2, 8),
                                    ("20260310", 1, 2, 1), ("20260310", 10, 1, 0)]:
        path = folder / f"events-{day}-{part}.jsonl"
        path.write_bytes(b"x" * (mb * 1024 * 1024))
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert [p.name for p in kept_files(folder)][-2:] == ["events-20260310-1.jsonl", "events-20260310-10.jsonl"]
    sink = KeptEvents(KeptEventsOptions(events_dir=str(folder), keep_days=31, max_mb=5))
    assert sink.trim(now) == 2  # the 40-day-old file, then the oldest until 5 MB fit
    assert [p.name for p in kept_files(folder)] == ["events-20260301-2.jsonl", "events-20260310-1.jsonl",
                                                     "events-20260310-10.jsonl"]
    with pytest.raises(Exception, match="keep_days"):
        KeptEventsOptions(keep_days=0)
