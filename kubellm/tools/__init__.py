"""Set-up helpers (binaries)."""
