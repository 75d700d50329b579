"""The fault and bad-input campaign: tests that do real damage to real runs."""
