# Custom bus for the app's events (e.g. "QR image created"). Rules and
# targets come with the feature that consumes them.
resource "aws_cloudwatch_event_bus" "app" {
  name = "${local.name}-events"
}
