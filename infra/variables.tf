variable "stage" {
  description = "Chalice stage this data tier serves (prod, dev, rehearsal). Prefixes every resource name."
  type        = string
  default     = "prod"

  # The app's stages (PULSE_STAGE in chalicelib/settings.py) but the local one;
  # deploy/configure.py --stage accepts the same set.
  validation {
    condition     = contains(["dev", "prod", "rehearsal"], var.stage)
    error_message = "stage: one of dev, prod, rehearsal."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "deletion_protection" {
  description = "Protect data from `terraform destroy`: DynamoDB deletion protection, no force-destroy of a non-empty bucket, 30-day secret recovery window. Set false before tearing a stage down."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network (network.tf) ---

variable "vpc_cidr" {
  description = "VPC CIDR; split into 2 public and 2 private /20 subnets."
  type        = string
  default     = "10.20.0.0/16"
}

variable "availability_zones" {
  description = "The two AZs to use, in order: the first holds the resources keyed \"a\", the second those keyed \"b\". null means <region>a and <region>b."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null ? true : length(var.availability_zones) == 2
    error_message = "availability_zones: exactly two zone names."
  }
}

variable "enable_flow_logs" {
  description = "Record the VPC's traffic (ALL) as flow logs in a KMS-encrypted CloudWatch Logs group."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow-log group."
  type        = number
  default     = 365
}

variable "enable_interface_endpoints" {
  description = "Create the interface VPC endpoints listed in interface_endpoint_services."
  type        = bool
  default     = true
}

variable "interface_endpoint_services" {
  description = "Interface endpoints (service short names) that carry enough traffic to beat NAT data processing. Each costs about $14.60/month across 2 AZs."
  type        = list(string)
  default     = ["kinesis-streams"]
}

# --- leaderboard: MemoryDB (leaderboard.tf) ---

variable "memorydb_node_type" {
  description = "MemoryDB node type."
  type        = string
  default     = "db.t4g.small"
}

variable "memorydb_engine_version" {
  description = "MemoryDB Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "memorydb_parameter_group_family" {
  description = "Parameter group family matching memorydb_engine_version."
  type        = string
  default     = "memorydb_redis7"
}

variable "memorydb_replicas_per_shard" {
  description = "Replicas per shard (1 puts a replica in the other AZ for failover)."
  type        = number
  default     = 1
}

variable "memorydb_snapshot_retention_days" {
  description = "Days of automatic MemoryDB snapshots."
  type        = number
  default     = 7
}

variable "memorydb_username" {
  description = "MemoryDB ACL user the app authenticates as (REDIS_USERNAME); null means pulse-<stage>-app. MemoryDB user names are per account and region, so each stage needs its own."
  type        = string
  default     = null
}

variable "memorydb_access_string" {
  description = "Redis ACL rules of the app user: every key and channel, every command but the @dangerous ones."
  type        = string
  default     = "on ~* &* +@all -@dangerous"
}

# --- cache: memcached (cache.tf) ---

variable "memcached_node_type" {
  description = "ElastiCache memcached node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "memcached_engine_version" {
  description = "Memcached version; 1.6.12 or later supports in-transit encryption."
  type        = string
  default     = "1.6.22"
}

variable "memcached_transit_encryption" {
  description = "TLS between the Lambdas and memcached (the client must then connect with TLS)."
  type        = bool
  default     = true
}

# --- hotspots: Kinesis (hotspots.tf) ---

variable "kinesis_stream_mode" {
  description = "PROVISIONED (1 shard: $10.95/month at rest, 1 MB/s or 1,000 records/s in) or ON_DEMAND (scales by itself, $29.20/month at rest)."
  type        = string
  default     = "PROVISIONED"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "kinesis_shard_count" {
  description = "Shards when kinesis_stream_mode is PROVISIONED (ignored for ON_DEMAND)."
  type        = number
  default     = 1
}

variable "kinesis_retention_hours" {
  description = "Kinesis record retention (24 is the included minimum)."
  type        = number
  default     = 24
}

# --- alarms (alarms.tf) ---

variable "memorydb_memory_alarm_percent" {
  description = "MemoryDB DatabaseMemoryUsagePercentage that raises the alarm (writes fail at 100: noeviction)."
  type        = number
  default     = 75
}

variable "alarm_email" {
  description = "An email address subscribed to the alarm topic (confirm the subscription mail); null for none."
  type        = string
  default     = null
}

# --- API protection (api.tf) ---

variable "waf_rate_limit_per_ip" {
  description = "Requests one client address may make in any 5 minutes before the WAF blocks it (AWS WAF's minimum is 10)."
  type        = number
  default     = 2000
}

variable "api_5xx_alarm_percent" {
  description = "Share of the API's answers (percent, over 5 minutes) that are 5xx above which the alarm fires."
  type        = number
  default     = 1
}

variable "x_rate_limit_alarm_remaining" {
  description = "XRateLimitRemaining (requests left in the X API's window) below which the alarm fires."
  type        = number
  default     = 5
}
