# The deploy rehearsal (`make rehearse`: deploy/infra.py) applies infra/ to a
# moto 5.2.5 server with these values; aws_endpoint_url is given on the
# command line. Only what moto cannot emulate is turned off here.
stage = "rehearsal"

# moto has no MemoryDB CreateACL/DescribeACLs: the provider would retry until
# its timeout. The cluster uses the built-in open-access ACL instead (the
# aws_memorydb_user itself is still created).
enable_memorydb_acl = false

# moto has no MemoryDB CreateParameterGroup/DescribeParameterGroups; the
# cluster uses the engine's default group.
enable_memorydb_parameter_group = false

# A throwaway stage: let `terraform destroy` remove data and secrets at once.
deletion_protection = false
