# QR codes (issue #7): `qr.created` events on the app's bus reach the
# `qr_created` Lambda through a rule -> SQS queue (with a dead-letter queue) ->
# the SQS event source mapping that `chalice package` generates for
# @app.on_sqs_message. Chalice subscribes @app.on_cw_event handlers on the
# default bus only (aws/chalice#1755); a queue keeps the custom bus, buffers
# bursts, and retries a failed batch, the same locally (local/provision.py
# creates this wiring in moto) and in AWS.
#
# The queue's name must be known when Chalice packages the handler: export
# QR_EVENTS_QUEUE from the output qr_events_queue_name before `chalice package`.

locals {
  qr_events_queue_name = "${local.name}-qr-events"
  qr_created_rule_name = "${local.name}-qr-created"
  # Built from names, not resource attributes, so the KMS key policy can name
  # the rule without a dependency cycle.
  qr_created_rule_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${aws_cloudwatch_event_bus.app.name}/${local.qr_created_rule_name}"
  # Lambda's guidance: a visibility timeout of at least 6 x the function
  # timeout (30 s in .chalice/config.json), so a slow batch is not redelivered
  # while it still runs.
  qr_events_visibility_seconds = 180
  # Receives before a message that keeps failing moves to the DLQ (as local/provision.py).
  qr_events_max_receives = 5
}

resource "aws_sqs_queue" "qr_events_dlq" {
  name                      = "${local.qr_events_queue_name}-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's maximum: time to look and redrive
  kms_master_key_id         = aws_kms_key.data.arn
}

resource "aws_sqs_queue" "qr_events" {
  name                       = local.qr_events_queue_name
  visibility_timeout_seconds = local.qr_events_visibility_seconds
  message_retention_seconds  = 345600 # 4 days
  kms_master_key_id          = aws_kms_key.data.arn
  # One data key per 5 minutes, not per message: fewer KMS calls.
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.qr_events_dlq.arn
    maxReceiveCount     = local.qr_events_max_receives
  })
}

resource "aws_cloudwatch_event_rule" "qr_created" {
  name           = local.qr_created_rule_name
  description    = "QR code created: count it per domain and list it on /ui/qr"
  event_bus_name = aws_cloudwatch_event_bus.app.name
  event_pattern = jsonencode({
    source        = ["pulse.qr"]
    "detail-type" = ["qr.created"]
  })
}

resource "aws_cloudwatch_event_target" "qr_created_to_queue" {
  rule           = aws_cloudwatch_event_rule.qr_created.name
  event_bus_name = aws_cloudwatch_event_bus.app.name
  target_id      = "qr-events-queue"
  arn            = aws_sqs_queue.qr_events.arn
}

# Only this rule may send to the queue.
resource "aws_sqs_queue_policy" "qr_events" {
  queue_url = aws_sqs_queue.qr_events.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "QrCreatedRuleSends"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.qr_events.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.qr_created.arn } }
    }]
  })
}
