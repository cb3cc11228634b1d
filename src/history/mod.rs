//! The MongoDB stand-in: BSON documents on fjall with indexes and a resumable change feed.
