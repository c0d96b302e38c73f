"""What the numerics raise when a model's answer is unusable."""


class SolverError(RuntimeError):
    """The model produced something unusable (a non-finite field, residual or correction): a
    fault of the model, not of the request."""
