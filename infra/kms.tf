# One customer-managed key for the whole data tier (S3, DynamoDB, Kinesis,
# Secrets Manager, MemoryDB, the flow-log group): $1/month plus requests.
resource "aws_kms_key" "data" {
  description             = "${local.name} data tier"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Lets IAM policies in this account grant use of the key (the Lambda
        # role from .chalice/policy-<stage>.json does, via kms:ViaService).
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsFlowAndWafLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/pulse/${var.stage}/*",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:aws-waf-logs-${local.name}",
            ]
          }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      {
        # EventBridge writes `qr.created` into the KMS-encrypted queue (infra/qr.tf).
        Sid       = "EventBridgeWritesQrEventsQueue"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = {
          ArnEquals    = { "aws:SourceArn" = local.qr_created_rule_arn }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      {
        # CloudWatch alarms publish to the KMS-encrypted alarm topic (alarms.tf).
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

output "kms_key_arn" {
  description = "The data tier's customer-managed KMS key, which the stage's IAM policy may use through the data services only."
  value       = aws_kms_key.data.arn
}
