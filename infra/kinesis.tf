# Click stream: the canvas page's clicks, read back for the hot-spot view.
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
