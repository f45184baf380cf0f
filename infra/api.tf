# In front of the API: an AWS WAF web ACL (a rate-based rule per client address,
# AWS's managed common and known-bad-inputs rule sets). The REST API itself is
# Chalice's; its package (deploy/api_gateway.tf.json) associates this ACL with
# the API's stage by name, "<function name of the API>-api" = "${local.name}-api".

resource "aws_wafv2_web_acl" "api" {
  name        = "${local.name}-api"
  description = "Pulse API: per-IP rate limit and AWS managed rules"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # Any one address over waf_rate_limit_per_ip requests in 5 minutes is blocked
  # (API Gateway then answers WAF_FILTERED: 403 in the app's error shape).
  rule {
    name     = "rate-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_ip
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"

        # The rule set blocks bodies over 8 KB; POST /clicks takes a larger batch
        # and the app bounds and validates every body itself, so only count it.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-api"
    sampled_requests_enabled   = true
  }
}

# What the web ACL blocked and why, kept like the flow logs (WAF requires the
# "aws-waf-logs-" prefix).
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  resource_arn            = aws_wafv2_web_acl.api.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

output "api_web_acl_arn" {
  description = "The API's WAF web ACL; the Chalice package associates it with the API stage (by its name, pulse-<stage>-api)."
  value       = aws_wafv2_web_acl.api.arn
}
