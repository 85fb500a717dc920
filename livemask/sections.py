"""Which class each config.yaml section configures."""

from face_detector import DETECTORS
from livemask.classifier import MaskClassifier
from livemask.config import register
from livemask.explain import ExplainSuite
from livemask.pipeline import PipelineOptions
from livemask.run import RunOptions
from livemask.stream import SourceOptions
from livemask.tracker import Tracker

register("detector", DETECTORS)
register("classifier", MaskClassifier)
register("explain", ExplainSuite)

register("source", SourceOptions)
register("pipeline", PipelineOptions)
register("tracker", Tracker)
register("run", RunOptions)
