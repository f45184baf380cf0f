# Secret VALUES never appear in outputs or the Chalice config: the app gets
# the ARNs (X_BEARER_TOKEN_SECRET_ARN, REDIS_PASSWORD_SECRET_ARN) and calls
# secretsmanager:GetSecretValue. Both are plain SecretStrings.

# X API v2 app-only bearer token. Created empty: set the value after apply
# with `aws secretsmanager put-secret-value` (DEPLOY.md), never in tfvars.
resource "aws_secretsmanager_secret" "x_bearer_token" {
  # checkov:skip=CKV2_AWS_57:The token is issued by the X developer portal; Secrets Manager cannot rotate it. Rotate by regenerating it there and calling put-secret-value.
  name                    = "pulse/${var.stage}/x-bearer-token"
  description             = "X API v2 bearer token (plain string) for the Pulse hashtag ingest"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

# Password of the MemoryDB ACL user (memorydb.tf), generated at first apply.
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
