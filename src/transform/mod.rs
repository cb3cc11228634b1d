//! The JOLT engine: specs parsed and validated once, applied to JSON many times.
