"""Hashtag leaderboard: X API v2 tweets -> hashtag counts in Redis sorted sets."""

# The windows a board keeps, defined here only (the store, the API and the CLI import it):
# all time and three rolling windows, with their lengths in seconds.
WINDOWS = ("all", "1h", "24h", "7d")
WINDOW_SECONDS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
# Rising compares a window with the longer window before it (see store.RISING_*).
RISING_BASELINE = {"1h": "24h", "24h": "7d"}
# A rising score is shown to this many decimals; tags whose shown scores are equal share
# a rank, as tags with equal counts do in `top`.
RISING_DECIMALS = 2
