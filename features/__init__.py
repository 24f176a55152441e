"""Point-in-time features: the input contract, loading, validation, the synthetic world and features."""

__version__ = "0.1.0"
