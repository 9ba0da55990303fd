"""target-twenty: a Singer target that batch-upserts any stream into Twenty CRM."""
