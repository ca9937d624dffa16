"""Typed, versioned table state: the codec (no pickle), event-time windows, the "already applied" check."""
