# Read by deploy/configure.py (`terraform -chdir=infra output -json`).
# Nothing here is a secret value: secrets are referenced by ARN only.

output "stage" {
  value = var.stage
}

output "aws_region" {
  value = local.region
}

output "aws_account_id" {
  value = local.account_id
}

output "aws_partition" {
  value = local.partition
}

output "vpc_id" {
  value = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "Chalice subnet_ids."
  value       = aws_subnet.private[*].id
}

output "lambda_security_group_ids" {
  description = "Chalice security_group_ids."
  value       = [aws_security_group.lambda.id]
}

output "kms_key_arn" {
  value = aws_kms_key.data.arn
}

output "memorydb_endpoint" {
  value = {
    address = aws_memorydb_cluster.main.cluster_endpoint[0].address
    port    = aws_memorydb_cluster.main.cluster_endpoint[0].port
  }
}

output "memorydb_username" {
  value = aws_memorydb_user.app.user_name
}

output "memorydb_password_secret_arn" {
  value = aws_secretsmanager_secret.memorydb_password.arn
}

output "memcached_nodes" {
  description = "host:port of each memcached node."
  value       = [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"]
}

output "memcached_transit_encryption" {
  description = "Written to the stage as MEMCACHED_TLS: the client must then connect with TLS."
  value       = var.memcached_transit_encryption
}

output "memcached_configuration_endpoint" {
  description = "host:port for ElastiCache auto discovery, written to the stage as MEMCACHED_CONFIG_ENDPOINT."
  value       = aws_elasticache_cluster.memcached.configuration_endpoint
}

output "qr_bucket_name" {
  value = aws_s3_bucket.qr.id
}

output "qr_bucket_arn" {
  value = aws_s3_bucket.qr.arn
}

output "qr_table_name" {
  value = aws_dynamodb_table.qr_cache.name
}

output "qr_table_arn" {
  value = aws_dynamodb_table.qr_cache.arn
}

output "event_bus_name" {
  value = aws_cloudwatch_event_bus.app.name
}

output "event_bus_arn" {
  value = aws_cloudwatch_event_bus.app.arn
}

output "click_stream_name" {
  value = aws_kinesis_stream.clicks.name
}

output "click_stream_arn" {
  value = aws_kinesis_stream.clicks.arn
}

output "qr_events_queue_name" {
  description = "QR_EVENTS_QUEUE: the qr_created handler's SQS trigger; make configure writes it, make deploy/package use it."
  value       = aws_sqs_queue.qr_events.name
}

output "qr_events_queue_arn" {
  value = aws_sqs_queue.qr_events.arn
}

output "qr_events_dlq_arn" {
  value = aws_sqs_queue.qr_events_dlq.arn
}

output "qr_created_rule_arn" {
  value = aws_cloudwatch_event_rule.qr_created.arn
}

output "x_bearer_token_secret_arn" {
  value = aws_secretsmanager_secret.x_bearer_token.arn
}

# The app's environment for this stage, as the app contract names it
# (PULSE_STAGE is added by deploy/configure.py from its STAGE argument).
output "lambda_environment" {
  value = {
    REDIS_URL                 = "rediss://${aws_memorydb_cluster.main.cluster_endpoint[0].address}:${aws_memorydb_cluster.main.cluster_endpoint[0].port}"
    REDIS_CLUSTER             = "true"
    REDIS_USERNAME            = aws_memorydb_user.app.user_name
    REDIS_PASSWORD_SECRET_ARN = aws_secretsmanager_secret.memorydb_password.arn
    MEMCACHED_SERVERS         = join(",", [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"])
    QR_BUCKET                 = aws_s3_bucket.qr.id
    QR_TABLE                  = aws_dynamodb_table.qr_cache.name
    EVENT_BUS_NAME            = aws_cloudwatch_event_bus.app.name
    QR_EVENTS_QUEUE           = aws_sqs_queue.qr_events.name
    CLICK_STREAM_NAME         = aws_kinesis_stream.clicks.name
    CLICK_FAILURE_QUEUE_ARN   = aws_sqs_queue.clicks_failed.arn
    X_BEARER_TOKEN_SECRET_ARN = aws_secretsmanager_secret.x_bearer_token.arn
  }
}

output "alarm_topic_arn" {
  description = "SNS topic of the data tier's alarms."
  value       = aws_sns_topic.alarms.arn
}
