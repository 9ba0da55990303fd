"""tap-okki: a Singer tap for OKKI (Xiaoman / 小满) CRM."""
