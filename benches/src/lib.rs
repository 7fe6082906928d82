//! Shared fixtures for the criterion benches: frame builders and synthetic route tables.
