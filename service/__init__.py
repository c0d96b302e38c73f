"""The FastLRNR solve service: FastAPI app, solver glue and Python client (no torch).

Entry points: ``service.app.create_app`` / ``service.app:app`` (uvicorn) and
``service.client.SolveClient`` / ``AsyncSolveClient``. Nothing is imported here so
that ``service.app`` can fix thread counts before numpy loads.
"""
