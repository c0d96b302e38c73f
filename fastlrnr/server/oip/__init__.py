"""The Open Inference Protocol (KServe v2, as Triton speaks it over HTTP) next to the service's API:
``tensors`` (the request and response bodies, binary tensor data included) and ``routes``."""

from fastlrnr.server.oip.routes import router

__all__ = ["router"]
