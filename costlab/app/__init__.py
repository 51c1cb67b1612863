"""costlab's app layer (docs/architecture.md)."""
