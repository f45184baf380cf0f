# MemoryDB for Redis OSS: the hashtag leaderboard's sorted sets (durable).

locals {
  memorydb_username = coalesce(var.memorydb_username, "${local.name}-app")
  memorydb_port     = 6379
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
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_memorydb_parameter_group" "main" {
  count  = var.enable_memorydb_parameter_group ? 1 : 0
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

# The password is generated here once, stored in Secrets Manager (secrets.tf)
# and given to the MemoryDB user. ignore_changes keeps later plans from
# replacing it: rotate with put-secret-value + memorydb update-user (DEPLOY.md).
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
  count      = var.enable_memorydb_acl ? 1 : 0
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
  acl_name                   = var.enable_memorydb_acl ? aws_memorydb_acl.app[0].name : "open-access"
  parameter_group_name       = var.enable_memorydb_parameter_group ? aws_memorydb_parameter_group.main[0].name : null # null: the engine default
  subnet_group_name          = aws_memorydb_subnet_group.main.name
  security_group_ids         = [aws_security_group.memorydb.id]
  snapshot_retention_limit   = var.memorydb_snapshot_retention_days
  snapshot_window            = "05:00-06:00"
  maintenance_window         = "sun:06:30-sun:07:30"
  auto_minor_version_upgrade = true
  # A last snapshot on destroy, unless the stage is unprotected (rehearsal).
  final_snapshot_name = var.deletion_protection ? "${local.name}-redis-final" : null
}
