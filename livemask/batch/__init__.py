"""``livemask batch``: many recorded videos and photos, one output folder each, on a process pool or Ray.

* :mod:`.inputs` expands the command line (files, folders, list files) into :class:`~.inputs.BatchInput` items
  with stable unique output names;
* :mod:`.worker` holds :func:`~.worker.process_input`, the whole per-file job (the one function an engine calls);
* :mod:`.outputs` the atomic output folders, the resume check and ``summary.csv`` / ``.parquet``;
* :mod:`.local_executor` and :mod:`.ray_executor` run ``process_input`` on worker processes or Ray actors that load the
  models once; :mod:`.runner` schedules, shows progress, handles Ctrl-C and writes the summary.
"""
