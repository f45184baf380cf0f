# One customer-managed key for the whole data tier (S3, DynamoDB, Kinesis,
# Secrets Manager, MemoryDB, the flow-log group): $1/month plus requests.
resource "aws_kms_key" "data" {
  description             = "${local.name} data tier"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        # Lets IAM policies in this account grant use of the key (the Lambda
        # role from .chalice/policy-<stage>.json does, via kms:ViaService).
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      }],
      # AWS services that use the key for this account only, each limited further by its condition.
      [for s in local.kms_service_grants : {
        Sid       = s.sid
        Effect    = "Allow"
        Principal = { Service = s.service }
        Action    = s.actions
        Resource  = "*"
        Condition = merge(s.condition, { StringEquals = { "aws:SourceAccount" = local.account_id } })
      }],
    )
  })
}

locals {
  kms_service_grants = [
    {
      # CloudWatch Logs encrypts the flow-log and WAF log groups (network.tf, api.tf).
      sid     = "CloudWatchLogsEncryptsFlowAndWafLogs"
      service = "logs.${local.region}.amazonaws.com"
      actions = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      condition = {
        ArnLike = {
          "kms:EncryptionContext:aws:logs:arn" = [
            "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/pulse/${var.stage}/*",
            "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:aws-waf-logs-${local.name}",
          ]
        }
      }
    },
    {
      # EventBridge writes `qr.created` into the KMS-encrypted queue (infra/qr.tf).
      sid       = "EventBridgeWritesQrEventsQueue"
      service   = "events.amazonaws.com"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      condition = { ArnEquals = { "aws:SourceArn" = local.qr_created_rule_arn } }
    },
    {
      # CloudWatch alarms publish to the KMS-encrypted alarm topic (alarms.tf).
      sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
      service   = "cloudwatch.amazonaws.com"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      condition = {}
    },
  ]
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

output "kms_key_arn" {
  description = "The data tier's customer-managed KMS key, which the stage's IAM policy may use through the data services only."
  value       = aws_kms_key.data.arn
}
