//! Cross-replica invalidation by keyspace versioning (filled in below).
