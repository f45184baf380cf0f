"""Click hotspots: clicks to Kinesis, an idempotent consumer, HOTSPOTS in Python."""
