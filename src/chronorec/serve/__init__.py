"""Serving trained runs over HTTP, and exporting their scoring path.

- :mod:`~chronorec.serve.runs` reads a run folder (config, checkpoint, metrics) for serving;
- :mod:`~chronorec.serve.features` replays the training preprocessing on a request with lookups
  only (vocabularies, item side values, activity groups, gaps, calendar, history cap);
- :mod:`~chronorec.serve.schemas` holds the request / response bodies and the time-order checks;
- :mod:`~chronorec.serve.service` is the loaded run (:class:`ServedModel`: ``score``, ``recommend``,
  ``group_of``);
- :mod:`~chronorec.serve.app` is the FastAPI application (``chronorec serve``);
- :mod:`~chronorec.serve.export` exports TorchScript / ONNX with a parity check (``chronorec export``).
"""
