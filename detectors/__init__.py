"""burnguard: detectors."""
