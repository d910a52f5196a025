"""Entry point for `uvicorn main:app`, as the original setup instructions say."""

from segmentation.api.app import create_app

app = create_app()
