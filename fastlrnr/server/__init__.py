"""The FastLRNR solve service: FastAPI app, solver glue and Python client (no torch).

Entry points: ``python -m fastlrnr.server.serve`` (the server with its limits), ``fastlrnr.server.app.create_app``
/ ``fastlrnr.server.app:app`` (the ASGI app) and ``fastlrnr.client.clients.SolveClient`` / ``AsyncSolveClient``.
Layout: ``routes`` (handlers) → ``bodies`` (parsing off the event loop) → ``checks`` (request
checks) → ``state`` (models, queue) → ``solver`` (the solve) → ``responses`` / ``encoding``;
``errors``, ``middleware``, ``auth``, ``openapi``, ``metrics``, ``logs``, ``settings`` around them.
"""
