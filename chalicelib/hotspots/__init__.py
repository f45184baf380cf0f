"""Click hotspots (issue #8): clicks to Kinesis, an idempotent consumer, HOTSPOTS in Python."""
