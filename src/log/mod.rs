//! The Kafka stand-in: topics of partitions, each an append-only sequence of segment files in
//! Kafka's RecordBatch v2 format, with consumer groups.
