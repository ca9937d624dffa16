"""burnguard: sinks."""
