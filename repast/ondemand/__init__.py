"""On-demand feature views at run time: the transformation run online and offline (transform),
which views are stored on write (storage) and their recomputation when inputs are written (writes)."""
