terraform {
  # 1.5+ for check blocks / import blocks; tested with 1.11.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0 (the offline mirror's version). No lock file is
      # committed (see DEPLOY.md), so the range is kept inside 5.x.
      version = ">= 5.100.0, < 6.0.0"
    }
  }

  # State: local by default (terraform.tfstate is git-ignored). For a team,
  # add an encrypted S3 backend in a backend_override.tf; the state holds the
  # generated MemoryDB password (sensitive), so keep it private.
}
