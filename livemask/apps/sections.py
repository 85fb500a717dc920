"""Which class each config.yaml section configures."""

from face_detector import DETECTORS
from livemask.apps.run import RunOptions
from livemask.config import register
from livemask.engine.pipeline import PipelineOptions
from livemask.engine.stream import SourceOptions
from livemask.engine.tracker import Tracker
from livemask.explain.methods import ExplainSuite
from livemask.models.backends import open_classifier

register("detector", DETECTORS)
register("classifier", open_classifier)  # .keras, .onnx or .tflite, by suffix
register("explain", ExplainSuite)

register("source", SourceOptions)
register("pipeline", PipelineOptions)
register("tracker", Tracker)
register("run", RunOptions)
