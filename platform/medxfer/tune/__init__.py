"""Ray Tune glue: searchers (``searchers.py``) and the benchmark replay (``replay.py``)."""
