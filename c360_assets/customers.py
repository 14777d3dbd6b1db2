"""customers domain models (see c360_assets/models.py for how a model becomes an asset)."""

MODELS: tuple = ()
