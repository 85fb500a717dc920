"""Which class each config.yaml section configures."""

from face_detector import DETECTORS
from livemask.apps.run import RunOptions
from livemask.config import register
from livemask.engine.pipeline import PipelineOptions
from livemask.engine.stream import SourceOptions
from livemask.engine.tracker import Tracker
from livemask.explain.suite import ExplainSuite
from livemask.models.classifier import MaskClassifier

register("detector", DETECTORS)
register("classifier", MaskClassifier)
register("explain", ExplainSuite)

register("source", SourceOptions)
register("pipeline", PipelineOptions)
register("tracker", Tracker)
register("run", RunOptions)
