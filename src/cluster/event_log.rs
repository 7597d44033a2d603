//! An account's events in a Redis Stream, so that every replica serves the events
//! one replica received: the lease holder appends, every replica reads.
//!
//! - Appends are fenced by the lease in the same script: a holder that hung past
//!   its lease and wakes up cannot append after the new holder, so no event is
//!   written twice by two holders.
//! - The stream is capped at the history (`subscriptions.history` entries, and
//!   nothing older than the history's age), so Redis holds a bounded amount per
//!   account.
//! - The entry id (`<ms>-<seq>`, given by Redis, increasing) is where an event
//!   sits: what a client's cursor carries, valid on every replica.
//! - A generation (random, created with the stream) names the stream: after Redis
//!   lost its data the stream starts again under another generation, and cursors
//!   of the old one are told to resync instead of being matched against new ids.
//! - The broker's own sequence number of the last appended event is kept beside
//!   it, so a new holder asks the broker to replay from there.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::Script;

use super::lease::Lease;
use super::{Redis, RedisError};

static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'e', ARGV[3], 'r', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XTRIM', KEYS[2], 'MINID', now - tonumber(ARGV[6]))
return id
",
    )
});

/// Entries read per round trip: a replica that was behind catches up in batches.
const BATCH: usize = 256;

/// Where an entry sits in the stream; ordered as the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    fn render(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// One appended event, as every replica reads it.
#[derive(Debug)]
pub(crate) struct LogEntry {
    pub id: EntryId,
    /// The event, serialized by the writer.
    pub payload: String,
    /// The writer could not tell subscribers everything before this one.
    pub resync: bool,
}

/// Which stream the entries belong to, and since when it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation {
    pub id: u64,
    pub started_ms: u64,
}

pub(crate) struct EventLog {
    redis: Arc<Redis>,
    stream: String,
    generation: String,
    broker_seq: String,
    cap: usize,
    max_age: Duration,
}

impl EventLog {
    /// `name` must not be a secret (keys are visible to anyone with access to Redis).
    pub(crate) fn new(redis: Arc<Redis>, name: &str, cap: usize, max_age: Duration) -> EventLog {
        EventLog {
            stream: redis.key(&["events", name]),
            generation: redis.key(&["events", name, "generation"]),
            broker_seq: redis.key(&["events", name, "broker_seq"]),
            redis,
            cap: cap.max(1),
            max_age,
        }
    }

    /// The stream's generation, created with this call when there is none.
    pub(crate) async fn generation(&self) -> Result<Generation, RedisError> {
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let ours = format!("{}:{now}", rand::random::<u64>() >> 11);
        let mut conn = self.redis.conn();
        let key = self.generation.clone();
        let set = ours.clone();
        let before: Option<String> = self
            .redis
            .call("generation", async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&set)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let value = before.unwrap_or(ours);
        let parsed = value
            .split_once(':')
            .and_then(|(id, ms)| Some((id.parse().ok()?, ms.parse().ok()?)));
        match parsed {
            Some((id, started_ms)) => Ok(Generation { id, started_ms }),
            None => Err(RedisError::Failed {
                what: "generation",
                reason: "unreadable value".to_string(),
            }),
        }
    }

    /// Appends while `lease` is ours; `None` when it is not (another replica took
    /// over, and this one must stop writing).
    pub(crate) async fn append(
        &self,
        lease: &Lease,
        payload: &str,
        resync: bool,
        broker_seq: Option<u64>,
    ) -> Result<Option<EntryId>, RedisError> {
        let mut call = APPEND.key(lease.key());
        call.key(&self.stream)
            .key(&self.broker_seq)
            .arg(lease.holder())
            .arg(self.cap)
            .arg(payload)
            .arg(if resync { "1" } else { "0" })
            .arg(broker_seq.map(|s| s.to_string()).unwrap_or_default())
            .arg(self.max_age.as_millis() as u64);
        let mut conn = self.redis.conn();
        let id: Option<String> = self
            .redis
            .call("stream append", call.invoke_async(&mut conn))
            .await?;
        Ok(id.as_deref().and_then(EntryId::parse))
    }

    /// The broker's sequence number of the last event appended with one.
    pub(crate) async fn broker_seq(&self) -> Result<Option<u64>, RedisError> {
        let mut conn = self.redis.conn();
        let key = self.broker_seq.clone();
        let seq: Option<u64> = self
            .redis
            .call("broker seq", async move {
                redis::cmd("GET").arg(&key).query_async(&mut conn).await
            })
            .await?;
        Ok(seq)
    }

    /// Everything the stream holds, oldest first.
    pub(crate) async fn load(&self) -> Result<Vec<LogEntry>, RedisError> {
        let mut conn = self.redis.conn();
        let key = self.stream.clone();
        let cap = self.cap;
        let reply: StreamRangeReply = self
            .redis
            .call("stream load", async move {
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(cap)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(reply.ids.iter().filter_map(entry).collect())
    }

    /// A reader of the entries after `after`, on a connection of its own.
    pub(crate) fn reader(&self, after: EntryId) -> Reader {
        Reader {
            redis: self.redis.clone(),
            stream: self.stream.clone(),
            conn: None,
            after,
        }
    }
}

/// Follows the stream from a position; one per replica and account.
pub(crate) struct Reader {
    redis: Arc<Redis>,
    stream: String,
    conn: Option<redis::aio::MultiplexedConnection>,
    after: EntryId,
}

impl Reader {
    /// The next entries, waiting up to `block` for one. An error drops the
    /// connection; the next call opens another and reads on from the same place.
    pub(crate) async fn next(&mut self, block: Duration) -> Result<Vec<LogEntry>, RedisError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.redis.dedicated().await?,
        };
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(self.after.render());
        let read = command.query_async::<Option<StreamReadReply>>(&mut conn);
        let reply = match tokio::time::timeout(block + self.redis.timeout(), read).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                return Err(RedisError::Failed {
                    what: "stream read",
                    reason: super::describe(&e),
                })
            }
            Err(_) => {
                return Err(RedisError::Timeout {
                    what: "stream read",
                    ms: (block + self.redis.timeout()).as_millis() as u64,
                })
            }
        };
        self.conn = Some(conn);
        let entries: Vec<LogEntry> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .filter_map(|id| entry(&id))
            .collect();
        if let Some(last) = entries.last() {
            self.after = last.id;
        }
        Ok(entries)
    }
}

fn entry(id: &StreamId) -> Option<LogEntry> {
    Some(LogEntry {
        id: EntryId::parse(&id.id)?,
        payload: id.get("e")?,
        resync: id.get::<String>("r").is_some_and(|r| r == "1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_order_as_the_stream_does() {
        let a = EntryId::parse("1700000000000-9").unwrap();
        let b = EntryId::parse("1700000000001-0").unwrap();
        assert!(a < b);
        assert_eq!(b.render(), "1700000000001-0");
        assert_eq!(EntryId::parse("garbage"), None);
    }
}
