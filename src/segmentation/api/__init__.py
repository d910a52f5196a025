"""The HTTP service: a thin FastAPI layer over `segmentation.analyze` and `recommend`."""
