"""burnguard: streams."""
