# QR codes for links: the images in S3, the cache table in DynamoDB, the app's
# event bus and the `qr.created` wiring to the `qr_created` Lambda.
#
# `qr.created` events on the bus reach the handler through a rule -> SQS queue
# (with a dead-letter queue) -> the SQS event source mapping that `chalice
# package` generates for @app.on_sqs_message. Chalice subscribes
# @app.on_cw_event handlers on the default bus only (aws/chalice#1755); a queue
# keeps the custom bus, buffers bursts, and retries a failed batch, the same
# locally (local/provision.py creates this wiring in moto) and in AWS. The
# queue's name reaches Chalice as QR_EVENTS_QUEUE (lambda_environment).

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

# Images: private, presigned GETs only, expired after one day.
resource "aws_s3_bucket" "qr" {
  # checkov:skip=CKV_AWS_18:Access logging would need a second bucket for objects that live one day and are only read through presigned URLs; CloudTrail data events can be enabled instead if ever needed.
  # checkov:skip=CKV_AWS_144:Cross-region replication makes no sense for a cache that expires after one day and is regenerated on a miss.
  # checkov:skip=CKV_AWS_21:Versioning keeps copies of regenerable QR images; every object is a regenerable cache entry that expires after one day.
  # checkov:skip=CKV2_AWS_62:No consumer for S3 event notifications; the app emits its own EventBridge event after PutObject.
  bucket_prefix = "${local.name}-qr-"
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "qr" {
  bucket                  = aws_s3_bucket.qr.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "qr" {
  bucket = aws_s3_bucket.qr.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "qr" {
  bucket = aws_s3_bucket.qr.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true # one KMS call per bucket key, not per object
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "qr" {
  bucket = aws_s3_bucket.qr.id

  rule {
    id     = "expire-qr-images-after-1-day"
    status = "Enabled"
    filter {}

    expiration {
      days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "qr" {
  bucket = aws_s3_bucket.qr.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.qr.arn, "${aws_s3_bucket.qr.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.qr]
}

# QR cache: target URL -> S3 key of its QR image, expiring after a day.
# Key schema (used by the QR feature): pk (S) = "qr#<id>", the id a hash of the
# normalised URL and the rendering options (chalicelib/qr/store.py);
# ttl (N) = epoch seconds after which DynamoDB deletes the item.
resource "aws_dynamodb_table" "qr_cache" {
  name         = "${local.name}-qr-cache"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }

  deletion_protection_enabled = var.deletion_protection

  # Each new or changed item (its new image) feeds the QR stream handler, which puts
  # the item's event on the app's bus: the event follows the write, retried by the
  # stream until it succeeds.
  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"
}

# The app's own event bus (EVENT_BUS_NAME). The QR feature puts `qr.created` on
# it; a feature that consumes an event keeps its rule with its other resources.
resource "aws_cloudwatch_event_bus" "app" {
  name = "${local.name}-events"
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

output "qr_bucket_name" {
  description = "S3 bucket of the QR images (QR_BUCKET)."
  value       = aws_s3_bucket.qr.id
}

output "qr_bucket_arn" {
  description = "ARN of the QR image bucket, for the stage's IAM policy."
  value       = aws_s3_bucket.qr.arn
}

output "qr_table_name" {
  description = "DynamoDB table of QR entries, URL and options -> image key (QR_TABLE)."
  value       = aws_dynamodb_table.qr_cache.name
}

output "qr_table_arn" {
  description = "ARN of the QR table, for the stage's IAM policy."
  value       = aws_dynamodb_table.qr_cache.arn
}

output "qr_table_stream_arn" {
  description = "The QR table's stream (QR_TABLE_STREAM_ARN), which the QR stream handler reads; make configure writes it to the stage."
  value       = aws_dynamodb_table.qr_cache.stream_arn
}

output "event_bus_name" {
  description = "The app's EventBridge bus (EVENT_BUS_NAME): the QR feature puts qr.created on it."
  value       = aws_cloudwatch_event_bus.app.name
}

output "event_bus_arn" {
  description = "ARN of the app's event bus, for the stage's IAM policy (events:PutEvents)."
  value       = aws_cloudwatch_event_bus.app.arn
}

output "qr_events_queue_name" {
  description = "QR_EVENTS_QUEUE: the qr_created handler's SQS trigger; make configure writes it, make deploy/package use it."
  value       = aws_sqs_queue.qr_events.name
}

output "qr_events_queue_arn" {
  description = "ARN of the QR events queue, which the qr_created function's role may consume."
  value       = aws_sqs_queue.qr_events.arn
}

output "qr_events_dlq_arn" {
  description = "Dead-letter queue of qr.created messages that failed qr_events_max_receives times."
  value       = aws_sqs_queue.qr_events_dlq.arn
}

output "qr_created_rule_arn" {
  description = "EventBridge rule that sends qr.created from the app's bus to the QR events queue."
  value       = aws_cloudwatch_event_rule.qr_created.arn
}
