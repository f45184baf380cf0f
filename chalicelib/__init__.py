"""Pulse: the logic behind app.py's handlers (one folder per feature)."""
