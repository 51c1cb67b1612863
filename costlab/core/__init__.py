"""costlab's core layer (docs/architecture.md)."""
