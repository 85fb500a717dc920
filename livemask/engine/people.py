"""The people stage, after the tracker: people counted by track, static faces (pictures), the alert rule.

:class:`People` turns each tracked :class:`FrameResult` into one carrying
:class:`~livemask.core.types.Analytics`; the engine applies it to every result before the
sinks see it (so no alert is lost when a live display skips results). All times are frame
times (:attr:`FrameResult.time_s`: the position in a file, else the capture time), never the
wall time of processing, so a file gives the same alerts however fast it is processed.

*People.* A track is one person once it has lasted ``min_track_s`` and has shown life
(see below); people are counted once per track. A person is "masked" when the label they
carried most often (the tracker's voted label, frame by frame) is one of ``masked_classes``.

*Static faces.* Each face is compared with a reference sample of its own track: the box
centre and size (relative to the face size), and the pixels inside the reference box (a 24x24
grey crop, normalised to zero mean and unit contrast so a change of light alone is not a
change) cut from the reference frame and from this frame at the same place, so the
detector's jitter of a few pixels does not look like life. When the box moved by more than
``static_motion`` of the face size, or those pixels changed by more than ``static_change``
(mean absolute difference of the normalised crops), the face has shown life and this sample
becomes the new reference. A face that has not changed for ``static_s`` seconds is static
(a picture on the wall): it is marked, not counted and never alerted on. A face that has
not yet shown life at all is not counted or alerted on either. Limits: a person who keeps
perfectly still for ``static_s`` (asleep in front of the camera) is marked static until they
move; a picture that moves (held in a hand, on a screen playing video) is a person.

*A camera that moves a little* (hand-held, on a swaying pole) moves a picture on the wall with it.
With ``follow_camera`` the face is also compared with its reference where the scene has it now: the
camera's own motion since the reference sample (:class:`SceneSample`: corners of the frame in grey,
:data:`SCENE_WIDTH` pixels wide, followed by optical flow, a shift + rotation fitted with RANSAC, so
that what moves on its own is an outlier while most corners lie on the scene) takes the reference box
there, and the pixels are compared there and one pixel around it (the estimate's own error). A face
is unchanged when it matches its reference either in the frame (a still camera, as without the
option) or in the scene (a camera that moved). When the motion cannot be told (a blank wall, a cut)
only the frame is used. It copes with jitter of a few pixels, slow
drift and a degree or two of rotation; a fast pan (more than a few tens of pixels between frames),
a zoom (the picture grows) or a scene without corners still make a picture look alive; a person who
stands very still is still static, and so may be one who fills most of a frame whose background has
no corners, if they keep the same look for ``static_s`` (their motion is then taken for the camera's;
docs/first-hour.md).

*How often.* A face is compared with its reference at most every ``check_every_s`` seconds of video (all
faces on the same frames, so the camera's motion is measured once per reference frame for all of them), not
on every frame: a change shows as well over a fifth of a second as over one frame, the verdict comes at most
that much later (static after ``static_s`` + ``check_every_s``), and the stage costs a fraction of what it
did on every frame at 15-25 fps (``benchmarks/bench_people.py``). Counts, labels and alerts are kept on every
frame.

*Alerts.* A track that carries a label of ``rule.classes`` continuously for ``rule.after_s``
fires one :class:`Alert`, and again at the earliest ``rule.cooldown_s`` after its last one
while it stays so. A compliant label ends the stretch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

import cv2
import numpy as np

from livemask.core.clock import wall_offset
from livemask.core.params import Range, check_fields
from livemask.core.types import Alert, Analytics, FrameResult, PeopleStats

PATCH = 24  # side of the grey crop compared over time
SCENE_WIDTH = 320  # width of the grey frame the camera's own motion is estimated on
NUDGES = tuple((dx, dy) for dx in (-1.0, 0.0, 1.0) for dy in (-1.0, 0.0, 1.0) if dx or dy)
MAX_CORNERS, MIN_CORNERS, MIN_AGREE = 60, 12, 0.3  # corners followed; fewer found, or agreeing: motion unknown
MIN_SPREAD = 0.4  # the agreeing corners span at least this share of the frame's width and of its height


@dataclass
class PeopleOptions:
    """The ``people`` section of config.yaml (see there for the meaning of each key)."""

    min_track_s: Annotated[float, Range(0, 3600)] = 0.5
    static_s: Annotated[float, Range(0, 3600, lo_open=True)] = 3.0
    static_motion: Annotated[float, Range(0, 10)] = 0.12
    static_change: Annotated[float, Range(0, 10)] = 0.08
    masked_classes: list[str] = field(default_factory=lambda: ["mask"])
    forget_s: Annotated[float, Range(0, 86_400, lo_open=True)] = 10.0
    follow_camera: bool = True
    check_every_s: Annotated[float, Range(0, 10)] = 0.2

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class AlertRule:
    """When a track fires an alert (built from the ``alerts`` section, whose defaults are
    :class:`~livemask.sinks.alerts.AlertOptions`')."""

    classes: tuple[str, ...]
    after_s: Annotated[float, Range(0, 86_400)]
    cooldown_s: Annotated[float, Range(0, 86_400)]

    def __post_init__(self) -> None:
        check_fields(self)
        self.classes = tuple(self.classes)


@dataclass
class _Person:
    """What the stage remembers of one track."""

    first_t: float
    last_t: float
    ref_t: float  # time of the reference sample (the last change)
    ref_box: np.ndarray
    ref_patch: np.ndarray
    ref_scene: SceneSample | None = None  # the reference frame, for the camera's motion (follow_camera)
    changed: bool = False  # has shown life at least once
    static: bool = False
    counted: bool = False
    labels: Counter = field(default_factory=Counter)
    bad_since: float | None = None
    last_alert: float | None = None

    @property
    def live(self) -> bool:
        return self.changed and not self.static

    def dominant(self) -> str | None:
        return self.labels.most_common(1)[0][0] if self.labels else None


def face_patch(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face's grey crop at PATCH x PATCH, normalised to zero mean and unit contrast; None when empty."""
    h, w = image.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    patch = cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (patch - patch.mean()) / max(float(patch.std()), 8.0)


def box_motion(ref: np.ndarray, box: np.ndarray) -> float:
    """How far ``box`` is from ``ref``: the larger of the centre shift and the size change, per face size."""
    size = max(float(min(ref[2] - ref[0], ref[3] - ref[1])), 1.0)
    shift = np.abs((box[:2] + box[2:]) / 2 - (ref[:2] + ref[2:]) / 2).max() / size
    grow = abs(float(min(box[2] - box[0], box[3] - box[1])) / size - 1.0)
    return float(max(shift, grow))


def scene_thumbnail(image: np.ndarray) -> np.ndarray:
    """The frame in grey, :data:`SCENE_WIDTH` pixels wide: what the camera's motion is measured on."""
    h, w = image.shape[:2]
    size = (SCENE_WIDTH, max(8, round(h * SCENE_WIDTH / w)))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class SceneSample:
    """A frame kept as the reference of the camera's motion: its thumbnail and the corners on it, in thumbnail
    pixels (None: too few to follow)."""

    thumbnail: np.ndarray
    corners: np.ndarray | None
    frame_width: int

    @classmethod
    def of(cls, image: np.ndarray, thumbnail: np.ndarray | None = None) -> SceneSample:
        thumbnail = scene_thumbnail(image) if thumbnail is None else thumbnail
        corners = cv2.goodFeaturesToTrack(thumbnail, MAX_CORNERS, 0.01, 5)
        return cls(thumbnail, corners if corners is not None and len(corners) >= MIN_CORNERS else None,
                   int(image.shape[1]))

    def motion_to(self, now: np.ndarray) -> np.ndarray | None:
        """A 2x3 matrix (frame pixels) taking a point of this frame to where the scene has it in the thumbnail
        ``now``: the corners followed by pyramidal Lucas-Kanade, a shift + rotation + scale fitted with
        RANSAC. None when unsure (too few corners found, too few agreeing, or the agreeing ones within less
        than :data:`MIN_SPREAD` of the frame's width or height: one thing moving in front of a blank wall,
        a person or a picture carried, is not the camera): then the camera is taken as still."""
        if self.corners is None or now.shape != self.thumbnail.shape:
            return None
        moved, found, _err = cv2.calcOpticalFlowPyrLK(self.thumbnail, now, self.corners, None, winSize=(11, 11),
                                                      maxLevel=2)
        found = found.ravel() == 1
        if found.sum() < MIN_CORNERS:
            return None
        followed = self.corners[found]
        matrix, inliers = cv2.estimateAffinePartial2D(followed, moved[found], method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0)
        if matrix is None or int(inliers.sum()) < max(MIN_CORNERS, MIN_AGREE * int(found.sum())):
            return None
        agreeing = followed[inliers.ravel() == 1].reshape(-1, 2)
        span = np.ptp(agreeing, axis=0) / (self.thumbnail.shape[1], self.thumbnail.shape[0])
        if span.min() < MIN_SPREAD:  # a camera's motion moves the whole frame; one moving thing does not
            return None
        matrix[:, 2] *= self.frame_width / self.thumbnail.shape[1]  # thumbnail pixels -> frame pixels
        return matrix


def moved_box(box: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """``box`` with its centre taken where the 2x3 ``matrix`` takes it (its size kept); ``box`` for None."""
    if matrix is None:
        return box
    centre = (box[:2] + box[2:]) / 2
    shift = matrix[:, :2] @ centre + matrix[:, 2] - centre
    return box + np.tile(shift, 2).astype(box.dtype)


class People:
    """The people stage: :meth:`update` adds :class:`Analytics` to each tracked result (needs track ids).

    ``rule``: the alert rule (None: no alerts). ``snapshots``: writes the alert's face crop as the
    alert fires, ``snapshots.save(image, box, frame_id, track_id, wall_time) -> path | None``
    (:class:`livemask.sinks.alerts.AlertSnapshots`); the alert names the path it returns, None
    when the write failed. None: alerts carry no snapshot.
    """

    def __init__(self, options: PeopleOptions | None = None, rule: AlertRule | None = None, snapshots=None):
        self.options = options or PeopleOptions()
        self.rule = rule
        self.snapshots = snapshots
        self.masked = set(self.options.masked_classes)
        self.people: dict[int, _Person] = {}
        self.fired = 0
        self.too_short = 0  # tracks forgotten before they counted
        self.static_tracks: set[int] = set()  # tracks ever marked static
        self._done = Counter()  # forgotten tracks that were people, by their most frequent label
        self._wall_offset = wall_offset()
        self._checked_t: float | None = None  # time of the last frame whose faces were compared (check_every_s)

    def update(self, result: FrameResult) -> FrameResult:
        from dataclasses import replace

        n = len(result.detections)
        if result.track_ids is None:
            return replace(result, analytics=Analytics.empty(n))
        t = result.time_s
        opts = self.options
        labels = result.predictions.labels
        static = np.zeros((n,), np.bool_)
        alerts: list[Alert] = []
        in_view = 0
        image = result.frame.image
        check = self._checked_t is None or not t - opts.check_every_s < self._checked_t <= t  # (a rewind checks)
        if check and n:
            self._checked_t = t
        follow = bool(n) and opts.follow_camera
        thumbnail: list[np.ndarray] = []  # this frame's scene thumbnail, made once when first needed
        sample: list[SceneSample] = []  # this frame as a reference, made once when a face first needs it
        motions: dict[int, np.ndarray | None] = {}  # camera motion by reference frame (faces often share one)

        def now() -> np.ndarray:
            if not thumbnail:
                thumbnail.append(scene_thumbnail(image))
            return thumbnail[0]

        def this_frame() -> SceneSample | None:
            if not follow:
                return None
            if not sample:
                sample.append(SceneSample.of(image, now()))
            return sample[0]

        for i in range(n):
            tid = int(result.track_ids[i])
            box = result.detections.boxes[i]
            person = self.people.get(tid)
            if person is None:
                patch = face_patch(image, box)
                if patch is None:
                    continue
                person = self.people[tid] = _Person(t, t, t, box.copy(), patch, this_frame())
            elif check:  # the face's own crop is cut only when it becomes the new reference (half the work per face)
                # unchanged where it was in the frame (a still camera), or else where the scene has it now
                changed = self._changed(image, person, person.ref_box, box)
                if changed and follow and person.ref_scene is not None:
                    key = id(person.ref_scene)
                    if key not in motions:  # measured only when needed, once per reference frame
                        motions[key] = person.ref_scene.motion_to(now())
                    if motions[key] is not None:
                        changed = self._changed(image, person, moved_box(person.ref_box, motions[key]), box, True)
                if changed:
                    patch = face_patch(image, box)
                    if patch is not None:
                        person.changed, person.ref_t, person.ref_box, person.ref_patch = True, t, box.copy(), patch
                        person.ref_scene = this_frame()
            person.last_t = t
            person.static = t - person.ref_t >= opts.static_s
            if person.static:
                static[i] = True
                self.static_tracks.add(tid)
            person.labels[labels[i]] += 1
            if not person.counted and person.live and t - person.first_t >= opts.min_track_s:
                person.counted = True
            in_view += person.counted and not person.static
            alert = self._rule(person, tid, labels[i], box, t, result)
            if alert is not None:
                alerts.append(alert)
        self._forget(t)
        counted, masked = self._totals()
        stats = PeopleStats(in_view, counted, masked, int(static.sum()))
        return replace(result, analytics=Analytics(stats, static, tuple(alerts)))

    def _changed(self, image: np.ndarray, person: _Person, place: np.ndarray, box: np.ndarray,
                 estimated: bool = False) -> bool:
        """The face ``box`` differs from its reference sample seen at ``place``: the box moved or grew, or the
        pixels at ``place`` changed. ``estimated``: ``place`` comes from the camera's estimated motion, so the
        pixels are also compared one pixel around it (the estimate's own error)."""
        opts = self.options
        if box_motion(place, box) > opts.static_motion:
            return True
        steps = ((0.0, 0.0), *NUDGES) if estimated else ((0.0, 0.0),)
        for dx, dy in steps:
            same_place = face_patch(image, place + np.float32([dx, dy, dx, dy]))
            if same_place is not None and float(np.abs(same_place - person.ref_patch).mean()) <= opts.static_change:
                return False
        return True

    def _rule(self, person: _Person, tid: int, label: str, box: np.ndarray, t: float,
              result: FrameResult) -> Alert | None:
        rule = self.rule
        if rule is None:
            return None
        if label not in rule.classes:
            person.bad_since = None
            return None
        if person.bad_since is None:
            person.bad_since = t
        duration = t - person.bad_since
        if not person.live or duration < rule.after_s:
            return None
        if person.last_alert is not None and t - person.last_alert < rule.cooldown_s:
            return None
        person.last_alert = t
        self.fired += 1
        frame = result.frame
        wall = frame.timestamp + self._wall_offset
        snapshot = None
        if self.snapshots is not None:
            snapshot = self.snapshots.save(frame.image, tuple(float(v) for v in box), frame.frame_id, tid, wall)
        return Alert(wall, tid, label, duration, tuple(float(v) for v in box), frame.frame_id,
                     None if frame.position_ms is None else frame.position_ms / 1000.0, snapshot)

    def _forget(self, t: float) -> None:
        """Fold tracks unseen for ``forget_s`` into the totals (bounded memory over a long run)."""
        for tid in [k for k, p in self.people.items() if t - p.last_t > self.options.forget_s]:
            p = self.people.pop(tid)
            if p.counted:
                self._done[p.dominant()] += 1
            elif not p.static:
                self.too_short += 1

    def by_label(self) -> dict[str, int]:
        """People counted so far by their most frequent label (pictures and short tracks left out)."""
        out = Counter(self._done)
        out.update(p.dominant() for p in self.people.values() if p.counted)
        return dict(out)

    def _totals(self) -> tuple[int, int]:
        by_label = self.by_label()
        return sum(by_label.values()), sum(n for label, n in by_label.items() if label in self.masked)

    def summary(self) -> dict:
        """People over the whole run (for the run's summary)."""
        counted, masked = self._totals()
        not_counted = self.too_short + sum(not p.counted and not p.static for p in self.people.values())
        return {"counted": counted, "masked": masked,
                "share_masked": round(masked / counted, 4) if counted else None,
                "static_tracks": len(self.static_tracks), "not_counted": not_counted,
                "alerts": self.fired}
