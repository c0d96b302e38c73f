"""The FastLRNR solve service: FastAPI app, solver glue and Python client (no torch).

Entry points: ``python -m service.serve`` (the server with its limits), ``service.app.create_app``
/ ``service.app:app`` (the ASGI app) and ``service.client.SolveClient`` / ``AsyncSolveClient``.
Layout: ``routes`` (handlers) → ``bodies`` (parsing off the event loop) → ``checks`` (request
checks) → ``state`` (models, queue) → ``solver`` (the solve) → ``responses`` / ``encoding``;
``errors``, ``middleware``, ``auth``, ``openapi``, ``metrics``, ``logs``, ``settings`` around them.
"""
