"""livemask: real-time face-mask detection with explanations."""

__version__ = "0.1.0"
