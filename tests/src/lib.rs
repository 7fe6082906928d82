//! Helpers for the integration tests: frame builders, capture writers, tshark decoding.
