# Read by deploy/configure.py (`terraform -chdir=infra output -json`), with each
# feature's outputs in its own file. Nothing here is a secret value: secrets
# are referenced by ARN only.

output "stage" {
  description = "The stage this data tier serves; configure.py refuses to write another stage from it."
  value       = var.stage
}

output "aws_region" {
  description = "Region of every resource here, for the ARNs in the stage's IAM policy."
  value       = local.region
}

output "aws_account_id" {
  description = "Account of every resource here, for the ARNs in the stage's IAM policy."
  value       = local.account_id
}

output "aws_partition" {
  description = "ARN partition (aws, aws-cn, aws-us-gov) for the stage's IAM policy."
  value       = local.partition
}

# PULSE_STAGE is added by deploy/configure.py from its STAGE argument.
output "lambda_environment" {
  description = "The app's environment for this stage, named as chalicelib/settings.py reads it (its INFRA_ENV_VARS)."
  value = {
    REDIS_URL                 = "rediss://${local.memorydb_endpoint.address}:${local.memorydb_endpoint.port}"
    REDIS_CLUSTER             = "true"
    REDIS_USERNAME            = aws_memorydb_user.app.user_name
    REDIS_PASSWORD_SECRET_ARN = aws_secretsmanager_secret.memorydb_password.arn
    MEMCACHED_SERVERS         = join(",", local.memcached_nodes)
    QR_BUCKET                 = aws_s3_bucket.qr.id
    QR_TABLE                  = aws_dynamodb_table.qr_cache.name
    EVENT_BUS_NAME            = aws_cloudwatch_event_bus.app.name
    QR_EVENTS_QUEUE           = aws_sqs_queue.qr_events.name
    CLICK_STREAM_NAME         = aws_kinesis_stream.clicks.name
    CLICK_FAILURE_QUEUE_ARN   = aws_sqs_queue.clicks_failed.arn
    X_BEARER_TOKEN_SECRET_ARN = aws_secretsmanager_secret.x_bearer_token.arn
  }
}
