# Hashtag leaderboard: MemoryDB for Redis OSS holds the sorted sets (durable,
# the system of record); the app user's password and the X API token live in
# Secrets Manager. alarms.tf warns before MemoryDB's memory runs out.
#
# Secret VALUES never appear in outputs or the Chalice config: the app gets the
# ARNs (X_BEARER_TOKEN_SECRET_ARN, REDIS_PASSWORD_SECRET_ARN) and calls
# secretsmanager:GetSecretValue. Both are plain SecretStrings.

locals {
  memorydb_username = coalesce(var.memorydb_username, "${local.name}-app")
  memorydb_port     = 6379
  memorydb_endpoint = aws_memorydb_cluster.main.cluster_endpoint[0]
}

resource "aws_security_group" "memorydb" {
  name        = "${local.name}-memorydb"
  description = "MemoryDB: Redis TLS from the Lambdas only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-memorydb" }
}

resource "aws_vpc_security_group_ingress_rule" "memorydb_from_lambda" {
  security_group_id            = aws_security_group.memorydb.id
  description                  = "Redis TLS from the Lambda security group"
  ip_protocol                  = "tcp"
  from_port                    = local.memorydb_port
  to_port                      = local.memorydb_port
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_memorydb_subnet_group" "main" {
  name       = "${local.name}-memorydb"
  subnet_ids = local.private_subnet_ids
}

resource "aws_memorydb_parameter_group" "main" {
  name   = "${local.name}-memorydb"
  family = var.memorydb_parameter_group_family

  # MemoryDB is the system of record here: never evict. The leaderboard's
  # time buckets and dedupe markers carry TTLs, so any volatile-* policy could
  # drop a bucket that is then never subtracted, or a marker that lets a tweet
  # count twice. Full memory makes writes fail loudly (OOM -> 503 / a failed
  # ingest run) instead; alarms.tf warns well before that.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

# The password is generated here once, stored in Secrets Manager (below) and
# given to the MemoryDB user. ignore_changes keeps later plans from replacing
# it: rotate with put-secret-value + memorydb update-user (DEPLOY.md).
# It is in the Terraform state (sensitive): keep the state private.
data "aws_secretsmanager_random_password" "memorydb" {
  password_length     = 40
  exclude_punctuation = true # MemoryDB rejects some punctuation; 40 alnum chars is ~238 bits
}

resource "aws_memorydb_user" "app" {
  user_name     = local.memorydb_username
  access_string = var.memorydb_access_string

  authentication_mode {
    type      = "password"
    passwords = [data.aws_secretsmanager_random_password.memorydb.random_password]
  }

  lifecycle {
    ignore_changes = [authentication_mode]
  }
}

resource "aws_memorydb_acl" "app" {
  name       = "${local.name}-app"
  user_names = [aws_memorydb_user.app.user_name]
}

resource "aws_memorydb_cluster" "main" {
  name                       = "${local.name}-redis"
  description                = "Pulse hashtag leaderboard"
  engine                     = "redis"
  engine_version             = var.memorydb_engine_version
  node_type                  = var.memorydb_node_type
  num_shards                 = 1
  num_replicas_per_shard     = var.memorydb_replicas_per_shard
  port                       = local.memorydb_port
  tls_enabled                = true
  kms_key_arn                = aws_kms_key.data.arn
  acl_name                   = aws_memorydb_acl.app.name
  parameter_group_name       = aws_memorydb_parameter_group.main.name
  subnet_group_name          = aws_memorydb_subnet_group.main.name
  security_group_ids         = [aws_security_group.memorydb.id]
  snapshot_retention_limit   = var.memorydb_snapshot_retention_days
  snapshot_window            = "05:00-06:00"
  maintenance_window         = "sun:06:30-sun:07:30"
  auto_minor_version_upgrade = true
  # A last snapshot on destroy, unless the stage is unprotected.
  final_snapshot_name = var.deletion_protection ? "${local.name}-redis-final" : null
}

# X API v2 app-only bearer token. Created empty: set the value after apply
# with `aws secretsmanager put-secret-value` (DEPLOY.md), never in tfvars.
resource "aws_secretsmanager_secret" "x_bearer_token" {
  # checkov:skip=CKV2_AWS_57:The token is issued by the X developer portal; Secrets Manager cannot rotate it. Rotate by regenerating it there and calling put-secret-value.
  name                    = "pulse/${var.stage}/x-bearer-token"
  description             = "X API v2 bearer token (plain string) for the Pulse hashtag ingest"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

# Password of the MemoryDB ACL user, generated at first apply.
resource "aws_secretsmanager_secret" "memorydb_password" {
  # checkov:skip=CKV2_AWS_57:Rotation needs a rotation Lambda that also calls memorydb update-user; until then rotate by hand (DEPLOY.md: put-secret-value, then update-user).
  name                    = "pulse/${var.stage}/memorydb-password"
  description             = "Password of MemoryDB user ${local.memorydb_username} (plain string)"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "memorydb_password" {
  secret_id     = aws_secretsmanager_secret.memorydb_password.id
  secret_string = data.aws_secretsmanager_random_password.memorydb.random_password

  # Rotation happens outside Terraform (DEPLOY.md): keep its value and labels.
  lifecycle {
    ignore_changes = [secret_string, version_stages]
  }
}

output "memorydb_endpoint" {
  description = "Address and port of the MemoryDB cluster endpoint (TLS); REDIS_URL in lambda_environment is built from it."
  value       = { address = local.memorydb_endpoint.address, port = local.memorydb_endpoint.port }
}

output "memorydb_username" {
  description = "MemoryDB ACL user the app authenticates as (REDIS_USERNAME)."
  value       = aws_memorydb_user.app.user_name
}

output "memorydb_password_secret_arn" {
  description = "Secrets Manager secret holding the MemoryDB user's password (REDIS_PASSWORD_SECRET_ARN); the value itself is never an output."
  value       = aws_secretsmanager_secret.memorydb_password.arn
}

output "x_bearer_token_secret_arn" {
  description = "Secrets Manager secret for the X API bearer token (X_BEARER_TOKEN_SECRET_ARN); set its value after apply (DEPLOY.md)."
  value       = aws_secretsmanager_secret.x_bearer_token.arn
}
