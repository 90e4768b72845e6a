"""Signal-level features computed from decoded pixels."""
