"""Serve a trained generator: a local web page and an HTTP API (`facegan serve RUN`)."""

from facegan.serve.app import create_app

__all__ = ["create_app"]
