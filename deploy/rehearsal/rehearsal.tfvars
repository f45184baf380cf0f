# The deploy rehearsal (`make rehearse`: deploy/infra.py) applies infra/ to a
# moto 5.2.5 server with these values, emulator_override.tf and emulator.tf
# beside it; emulator_endpoint is given on the command line.
stage = "rehearsal"

# A throwaway stage: let `terraform destroy` remove data and secrets at once.
deletion_protection = false
