"""One module per revision of the evidence store's schema."""
