//! streamcache: an event-driven order pipeline in one process.
//!
//! The classic fix for a slow monolith sends order events through Kafka, reshapes them in Apache
//! NiFi with JOLT, caches them in Redis, stores them in a MongoDB replica set and pushes a
//! `NewOrder` event to a dashboard over Pusher. streamcache ships every one of those parts as a
//! module of one crate, with embedded storage and APIs that speak the real systems' wire formats:
//!
//! | module | stands in for |
//! |---|---|
//! | [`log`] | Kafka: partitioned append-only log of RecordBatch v2 segments, consumer groups |
//! | [`cache`] | Redis: sharded in-memory keyspace with TTL and eviction, RESP server |
//! | [`history`] | MongoDB: BSON documents on fjall, indexes, resumable change feed |
//! | [`transform`] | JOLT: NiFi's `JoltTransformJSON` |
//! | [`pipeline`] | NiFi flows: source → transform → routes → sinks |
//! | [`realtime`] | Pusher Channels: channel hub, watchers, signing |
//! | [`api`] | the HTTP surfaces (REST Proxy, Upstash, Data API, Pusher, SSE, dashboard, ops) |
//!
//! [`engine::Engine`] opens and owns the engines; [`server`] binds the listeners and runs them
//! until shutdown. Start reading at `ARCHITECTURE.md`.

pub mod api;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod files;
pub mod history;
pub mod loadgen;
pub mod log;
pub mod metrics;
pub mod pipeline;
pub mod realtime;
pub mod server;
pub mod shutdown;
pub mod transform;
