"""Hashtag leaderboard: X API v2 tweets -> hashtag counts in Redis sorted sets."""
