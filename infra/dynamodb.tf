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
}
