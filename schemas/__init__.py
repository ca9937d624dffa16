"""burnguard: schemas."""
