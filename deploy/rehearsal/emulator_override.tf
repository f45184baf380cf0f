# Copied beside infra/'s configuration for the deploy rehearsal only
# (deploy/infra.py). Terraform merges each block here over the block of the same
# name in infra/, so the same configuration runs against moto's server.

provider "aws" {
  # Against an emulator there are no real credentials, account or IMDS.
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  # Every service the configuration calls.
  endpoints {
    cloudwatch     = var.emulator_endpoint
    cloudwatchlogs = var.emulator_endpoint
    dynamodb       = var.emulator_endpoint
    ec2            = var.emulator_endpoint
    elasticache    = var.emulator_endpoint
    events         = var.emulator_endpoint
    iam            = var.emulator_endpoint
    kinesis        = var.emulator_endpoint
    kms            = var.emulator_endpoint
    memorydb       = var.emulator_endpoint
    s3             = var.emulator_endpoint
    secretsmanager = var.emulator_endpoint
    sns            = var.emulator_endpoint
    sqs            = var.emulator_endpoint
    sts            = var.emulator_endpoint
    wafv2          = var.emulator_endpoint
  }
}

# moto 5.2.5 has no MemoryDB ACL or parameter-group API (the provider would retry
# until its timeout): neither is created, and the cluster uses the built-in
# open-access ACL and the engine's default parameter group. The user is still
# created.
resource "aws_memorydb_acl" "app" {
  count = 0
}

resource "aws_memorydb_parameter_group" "main" {
  count = 0
}

resource "aws_memorydb_cluster" "main" {
  acl_name             = "open-access"
  parameter_group_name = null
}
