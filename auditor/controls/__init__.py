"""Controls as data: the catalog in controls.yaml, the checks, exceptions and the engine."""
