"""The browser page and HTTP API (``livemask serve``): FastAPI app, limits, live frame hub.

Nothing here reads the config: the composition root (:mod:`livemask.apps.serve_cmd`)
builds the detector, classifier and explainers and hands them to :func:`create_app`.
"""
