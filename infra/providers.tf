# Real AWS only: the deploy rehearsal points this provider at moto's server with
# its own override file (deploy/rehearsal/), which Terraform merges over this block.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project = "pulse"
      Stage   = var.stage
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "pulse-${var.stage}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
}
