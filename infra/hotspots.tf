# Click hotspots: the canvas page's clicks go to a Kinesis stream, which the
# click consumer reads; the batches it gives up on are described on a queue.

resource "aws_kinesis_stream" "clicks" {
  name             = "${local.name}-clicks"
  shard_count      = var.kinesis_stream_mode == "PROVISIONED" ? var.kinesis_shard_count : null
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.data.arn

  stream_mode_details {
    stream_mode = var.kinesis_stream_mode
  }
}

# Where the Kinesis consumer's failed batches go. The packaged event source
# mapping (deploy/hotspots_override.tf.json) retries a failing batch
# maximum_retry_attempts times, bisecting it to isolate a bad record, then sends
# a description of what it gave up on (shard, sequence range; not the records
# themselves) here instead of blocking the shard until the records expire.
resource "aws_sqs_queue" "clicks_failed" {
  name                              = "${local.name}-clicks-failed"
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
  # Kinesis keeps the records for kinesis_retention_hours: a failure notice kept
  # 14 days (the maximum) leaves time to replay the range from the stream.
  message_retention_seconds = 1209600
}

output "click_stream_name" {
  description = "Kinesis stream of the clicks (CLICK_STREAM_NAME)."
  value       = aws_kinesis_stream.clicks.name
}

output "click_stream_arn" {
  description = "ARN of the click stream, for the stage's IAM policy."
  value       = aws_kinesis_stream.clicks.arn
}

# Also in lambda_environment (CLICK_FAILURE_QUEUE_ARN): the packaged mapping reads it
# from the function's environment, and configure.py grants sqs:SendMessage on it.
output "click_failure_queue_arn" {
  description = "On-failure destination of the click consumer's event source mapping."
  value       = aws_sqs_queue.clicks_failed.arn
}
