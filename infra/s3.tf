# QR images: private, presigned GETs only, expired after one day.

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
