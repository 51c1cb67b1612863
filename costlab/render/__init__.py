"""costlab's render layer (docs/architecture.md)."""
