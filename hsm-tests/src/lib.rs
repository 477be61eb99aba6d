//! Shared helpers for the backend integration tests.
