# Copied beside infra/'s configuration for the deploy rehearsal only
# (deploy/infra.py); never part of infra/ as it is applied to AWS.

variable "emulator_endpoint" {
  description = "URL of the moto server that receives every AWS API call of the rehearsal."
  type        = string
}
