//! Consumer groups: committed offsets persisted in the metadata database, and REST consumer
//! instances (subscription or manual assignment, positions, range assignment across a group's
//! instances, idle expiry by the injected clock).
//!
//! Membership is in memory: a restart forgets instances, as the REST Proxy does, while
//! committed offsets survive. Single-member groups get their assignment at once (no rebalance
//! delay); assignments are recomputed whenever membership, subscriptions or topics change.
//! Committed-offset keys: `group 0x00 topic 0x00 partition(u32 BE)`; values: `offset(u64 BE)`
//! followed by the metadata's UTF-8 bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::error::{Error, Result, meta};
use super::{
    COMMIT_METADATA_BYTES_MAX, CONSUMER_GROUPS_MAX, CONSUMER_INSTANCES_MAX, GROUP_NAME_BYTES_MAX,
    Inner, Log, Offset, SUBSCRIPTION_TOPICS_MAX, StoredRecord, TOPIC_PATTERN_BYTES_MAX,
    TOPIC_PATTERN_COMPILED_BYTES_MAX,
};

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

/// A committed offset: the next offset the group will read, and client metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: Offset,
    /// Opaque client metadata.
    pub metadata: String,
}

/// A member of a consumer group: an instance with a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The instance id.
    pub id: String,
    /// The partitions the range assignor gave it.
    pub assigned: Vec<TopicPartition>,
}

/// A consumer group as [`Log::describe_consumer_group`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group's name.
    pub group: String,
    /// Its members, by instance id.
    pub members: Vec<GroupMember>,
    /// Its committed offsets (the next offset to consume), by topic and partition.
    pub committed: Vec<(TopicPartition, Offset)>,
}

/// What a consumer does when it has no valid position (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the log end offset (Kafka's default).
    #[default]
    Latest,
    /// Fail the fetch.
    None,
}

/// Settings of a REST consumer instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerSettings {
    /// The embedded format the instance was created with (`binary`, `json`, …); the log only
    /// stores it for the API layer.
    pub format: String,
    /// Position policy when none is committed or the position fell out of the log.
    pub offset_reset: OffsetReset,
    /// Commit delivered positions at the start of every poll.
    pub auto_commit: bool,
    /// Longest a fetch waits for records, in ms (the REST Proxy's
    /// `consumer.request.timeout.ms`); the log only stores it for the API layer.
    pub request_timeout_ms: u64,
}

/// What an instance is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// These topics.
    Topics(Vec<String>),
    /// Every topic whose whole name matches this regular expression.
    Pattern(String),
}

/// A record delivered to a consumer instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// The record.
    pub record: StoredRecord,
}

/// One REST consumer instance.
#[derive(Debug)]
struct Member {
    /// Creation settings.
    settings: ConsumerSettings,
    /// Monotonic ms of the last request.
    last_used_ms: u64,
    /// Subscription and its compiled pattern.
    subscription: Option<(Subscription, Option<Regex>)>,
    /// Manual assignment, exclusive with `subscription`.
    manual: Option<Vec<TopicPartition>>,
    /// Current assignment (manual, or computed by the range assignor).
    assigned: Vec<TopicPartition>,
    /// Next offset to fetch per partition, once known.
    positions: BTreeMap<TopicPartition, Offset>,
    /// Positions last committed by auto-commit, so an unchanged position is not committed (and
    /// fsynced) again on every poll.
    auto_committed: BTreeMap<TopicPartition, Offset>,
    /// Held by a poll from planning its reads to updating the positions, so concurrent polls
    /// of one instance take turns instead of delivering the same records each.
    polling: Arc<Mutex<()>>,
    /// Index in `assigned` of the partition the next poll reads first: the first one the last
    /// poll skipped because its byte budget ran out. A partition with more waiting than one
    /// poll's budget thus cannot keep the others waiting (Kafka's fetcher rotates likewise).
    first_read: usize,
}

impl Member {
    /// Whether the instance has been unused for `timeout_ms` or more at `now_ms`.
    fn is_idle(&self, now_ms: u64, timeout_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_used_ms) >= timeout_ms
    }

    /// The positions auto-commit has not committed yet, as commits.
    fn auto_commit_due(&self) -> Vec<(TopicPartition, CommittedOffset)> {
        self.positions
            .iter()
            .filter(|(tp, o)| self.auto_committed.get(*tp) != Some(*o))
            .map(|(tp, &offset)| plain_commit(tp.clone(), offset))
            .collect()
    }
}

/// A commit of `offset` on `tp` without metadata.
fn plain_commit(tp: TopicPartition, offset: Offset) -> (TopicPartition, CommittedOffset) {
    (
        tp,
        CommittedOffset {
            offset,
            metadata: String::new(),
        },
    )
}

/// Every group's REST consumer instances.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Group name → instance id → member.
    groups: BTreeMap<String, BTreeMap<String, Member>>,
    /// Counter for generated instance ids.
    next_id: u64,
}

impl Registry {
    /// Whether some instance has been idle for `timeout_ms` or more at `now_ms`.
    fn any_idle(&self, now_ms: u64, timeout_ms: u64) -> bool {
        self.groups
            .values()
            .flat_map(BTreeMap::values)
            .any(|m| m.is_idle(now_ms, timeout_ms))
    }

    /// Removes the instances idle for `timeout_ms` or more and returns them with their group
    /// and id.
    fn take_idle(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<(String, String, Member)> {
        let mut taken = Vec::new();
        for (group, members) in &mut self.groups {
            let idle: Vec<String> = members
                .iter()
                .filter(|(_, m)| m.is_idle(now_ms, timeout_ms))
                .map(|(id, _)| id.clone())
                .collect();
            for id in idle {
                if let Some(m) = members.remove(&id) {
                    taken.push((group.clone(), id, m));
                }
            }
        }
        self.groups.retain(|_, m| !m.is_empty());
        taken
    }

    /// Forgets every instance's positions on a deleted topic, so a topic re-created under its
    /// name is read from committed offsets or the reset policy.
    pub(crate) fn forget_topic(&mut self, topic: &str) {
        for m in self.groups.values_mut().flat_map(BTreeMap::values_mut) {
            m.positions.retain(|tp, _| tp.topic != topic);
            m.auto_committed.retain(|tp, _| tp.topic != topic);
        }
    }

    /// Instances across every group.
    pub(crate) fn count(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    fn member(&mut self, group: &str, instance: &str, now_ms: u64) -> Result<&mut Member> {
        let m = self
            .groups
            .get_mut(group)
            .and_then(|g| g.get_mut(instance))
            .ok_or_else(|| Error::InstanceNotFound {
                group: group.to_owned(),
                instance: instance.to_owned(),
            })?;
        m.last_used_ms = now_ms;
        Ok(m)
    }

    /// [`Registry::rebalance`] for a change of the topics only (before a poll or an
    /// assignment query, under the registry lock alone): the members are those of the last
    /// membership change, so no partition moves between them and nothing is left to commit.
    /// Should a delivered position be handed over anyway, a warning says so.
    fn follow_topics(&mut self, group: &str, topics: &BTreeMap<String, u32>) {
        let moved = self.rebalance(group, topics);
        if !moved.is_empty() {
            tracing::warn!(
                group,
                instances = moved.len(),
                "a rebalance for a change of the topics moved delivered positions uncommitted"
            );
        }
    }

    /// Recomputes every subscribed member's assignment in `group` with the range assignor.
    /// Returns, per auto-commit member, the delivered positions not committed yet on the
    /// partitions it lost: Kafka's consumer commits them before it rejoins
    /// (`ConsumerCoordinator.onJoinPrepare`), so the caller commits them
    /// ([`Inner::write_revoked_commits`]) before the new owners read. Partitions move between
    /// members when the membership changes (a subscription, an unsubscription, an instance
    /// deleted or expired), and each of those rebalances at once; a rebalance for a change of
    /// the topics (before a poll or an assignment query) only adds partitions or removes
    /// deleted ones, since a topic's partitions are ranged over the same members.
    #[must_use = "what auto-commit members delivered on lost partitions is committed by the caller"]
    fn rebalance(&mut self, group: &str, topics: &BTreeMap<String, u32>) -> Vec<AutoCommit> {
        let Some(members) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (id, m) in members.iter() {
            if let Some((sub, re)) = &m.subscription {
                for t in subscribed_topics(sub, re.as_ref(), topics) {
                    if let Some((name, _)) = topics.get_key_value(&t) {
                        by_topic.entry(name.as_str()).or_default().push(id.clone());
                    }
                }
            }
        }
        let mut assigned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (topic, ids) in by_topic {
            let n = topics.get(topic).copied().unwrap_or(0);
            for (id, range) in ids.iter().zip(range_assign(n, ids.len())) {
                let list = assigned.entry(id.clone()).or_default();
                list.extend(range.map(|p| TopicPartition {
                    topic: topic.to_owned(),
                    partition: p,
                }));
            }
        }
        let mut revoked = Vec::new();
        for (id, m) in members.iter_mut() {
            if m.manual.is_none() {
                m.assigned = assigned.remove(id).unwrap_or_default();
                let keep: BTreeSet<&TopicPartition> = m.assigned.iter().collect();
                if m.settings.auto_commit {
                    let due: Vec<_> = m
                        .auto_commit_due()
                        .into_iter()
                        .filter(|(tp, _)| !keep.contains(tp))
                        .collect();
                    if !due.is_empty() {
                        revoked.push((id.clone(), due));
                    }
                }
                m.positions.retain(|tp, _| keep.contains(tp));
            }
        }
        revoked
    }
}

/// An instance's id and the positions its auto-commit commits.
type AutoCommit = (String, Vec<(TopicPartition, CommittedOffset)>);

/// Kafka's range assignor for one topic: `members` consecutive ranges over `partitions`, the
/// first `partitions % members` one longer.
#[must_use]
pub(crate) fn range_assign(partitions: u32, members: usize) -> Vec<std::ops::Range<u32>> {
    let m = u32::try_from(members).unwrap_or(u32::MAX).max(1);
    let per = partitions / m;
    let extra = partitions % m;
    (0..m)
        .take(members)
        .map(|i| {
            let start = i * per + i.min(extra);
            let len = per + u32::from(i < extra);
            start..start + len
        })
        .collect()
}

/// Topics a subscription covers among `topics`, sorted.
fn subscribed_topics(
    sub: &Subscription,
    re: Option<&Regex>,
    topics: &BTreeMap<String, u32>,
) -> Vec<String> {
    match (sub, re) {
        (Subscription::Topics(list), _) => list.clone(),
        (Subscription::Pattern(_), Some(re)) => {
            topics.keys().filter(|t| re.is_match(t)).cloned().collect()
        }
        (Subscription::Pattern(_), None) => Vec::new(),
    }
}

/// Checks a group name.
fn check_group(group: &str) -> Result<()> {
    if group.is_empty() {
        return Err(Error::GroupNameInvalid { reason: "empty" });
    }
    if group.len() > GROUP_NAME_BYTES_MAX {
        return Err(Error::GroupNameInvalid {
            reason: "longer than 255 bytes",
        });
    }
    if group.contains('\0') {
        return Err(Error::GroupNameInvalid {
            reason: "contains NUL",
        });
    }
    Ok(())
}

/// Checks a consumer instance name: a group name's rules, and no `/`, so the instance's
/// `base_uri` is one URL segment longer than its group's.
fn check_instance_name(name: &str) -> Result<()> {
    let invalid = |reason| Err(Error::InstanceNameInvalid { reason });
    match check_group(name) {
        Err(Error::GroupNameInvalid { reason }) => invalid(reason),
        Err(e) => Err(e),
        Ok(()) if name.contains('/') => invalid("contains `/`"),
        Ok(()) => Ok(()),
    }
}

/// The topic a committed-offset key names, if the key is well formed.
fn offset_key_topic(key: &[u8]) -> Option<&[u8]> {
    // Group names hold no NUL, so the first one ends the group; the partition is the last 4
    // bytes, after the NUL that ends the topic.
    let (_, rest) = key.split_at(key.iter().position(|&b| b == 0)? + 1);
    let (topic, tail) = rest.split_at_checked(rest.len().checked_sub(5)?)?;
    (tail.first() == Some(&0)).then_some(topic)
}

/// Every committed-offset key on `topic`, across groups.
///
/// Keys start with the group, so this scans every committed offset; topic deletion is rare
/// and the keyspace holds one key per group and partition.
pub(super) fn offset_keys_of_topic(
    offsets: &fjall::Keyspace,
    topic: &str,
) -> Result<Vec<fjall::UserKey>> {
    let mut keys = Vec::new();
    for guard in offsets.iter() {
        let key = guard.key().map_err(meta("list offsets"))?;
        if offset_key_topic(&key) == Some(topic.as_bytes()) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The group of a committed-offset key (the bytes before its first NUL).
fn offset_key_group(key: &[u8]) -> Result<&[u8]> {
    key.iter()
        .position(|&b| b == 0)
        .and_then(|end| key.get(..end))
        .ok_or_else(|| Error::MetaCorrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "no group".to_owned(),
        })
}

/// The groups with a committed offset, read from the keys of `offsets` (one pass, at open).
pub(super) fn groups_with_offsets(offsets: &fjall::Keyspace) -> Result<BTreeSet<String>> {
    let mut groups = BTreeSet::new();
    for guard in offsets.iter() {
        let key = guard.key().map_err(meta("list offsets"))?;
        let group = String::from_utf8_lossy(offset_key_group(&key)?);
        if !groups.contains(group.as_ref()) {
            groups.insert(group.into_owned());
        }
    }
    Ok(groups)
}

/// A group with `members` and no committed offsets yet.
fn described(group: &str, members: Vec<GroupMember>) -> GroupDescription {
    GroupDescription {
        group: group.to_owned(),
        members,
        committed: Vec::new(),
    }
}

/// The instances of a group that joined it (have a subscription), by id.
fn subscribed_members(members: &BTreeMap<String, Member>) -> Vec<GroupMember> {
    members
        .iter()
        .filter(|(_, m)| m.subscription.is_some())
        .map(|(id, m)| GroupMember {
            id: id.clone(),
            assigned: m.assigned.clone(),
        })
        .collect()
}

/// The group, partition and offset of one committed-offset record.
///
/// # Errors
/// [`Error::MetaCorrupt`] for a key or value not in the committed-offset layout.
fn committed_entry(key: &[u8], value: &[u8]) -> Result<(String, TopicPartition, Offset)> {
    let corrupt = |reason: &str| Error::MetaCorrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_owned(),
    };
    let group = offset_key_group(key)?;
    let topic = offset_key_topic(key).ok_or_else(|| corrupt("not a committed-offset key"))?;
    let partition = key
        .len()
        .checked_sub(4)
        .and_then(|at| key.get(at..))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| corrupt("no partition"))?;
    let offset = value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("shorter than 8 bytes"))?;
    let tp = TopicPartition {
        topic: String::from_utf8_lossy(topic).into_owned(),
        partition,
    };
    Ok((String::from_utf8_lossy(group).into_owned(), tp, offset))
}

/// Encodes a committed-offset key.
fn offset_key(group: &str, tp: &TopicPartition) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + tp.topic.len() + 6);
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(tp.topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&tp.partition.to_be_bytes());
    k
}

impl Log {
    fn now_mono_ms(&self) -> u64 {
        self.inner.now_mono_ms()
    }

    /// Locks the registry after expiring idle instances. When none is idle (the usual case)
    /// the registry is locked once, the check and the caller's work under the same guard.
    fn registry(&self) -> Result<std::sync::MutexGuard<'_, Registry>> {
        let now = self.now_mono_ms();
        let reg = self.inner.groups.lock()?;
        if !reg.any_idle(now, self.inner.config.consumer_instance_timeout_ms) {
            return Ok(reg);
        }
        // IMPORTANT: released first, since the expiry takes topic_admin before the registry
        // (the order topic deletion takes them in); locked again once it is done.
        drop(reg);
        self.inner.expire_idle_consumers()?;
        Ok(self.inner.groups.lock()?)
    }

    fn partition_counts(&self) -> Result<BTreeMap<String, u32>> {
        self.inner.partition_counts()
    }

    /// Commits offsets for `group` atomically (all or none) and durably.
    ///
    /// # Errors
    /// [`Error::GroupNameInvalid`], [`Error::TooManyTopicsInSubscription`] for more than
    /// [`SUBSCRIPTION_TOPICS_MAX`] entries, [`Error::MetadataTooLarge`] for metadata over
    /// [`COMMIT_METADATA_BYTES_MAX`], topic/partition errors, or [`Error::Meta`].
    pub fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<()> {
        check_group(group)?;
        if offsets.len() > SUBSCRIPTION_TOPICS_MAX {
            return Err(Error::TooManyTopicsInSubscription {
                len: offsets.len(),
                max: SUBSCRIPTION_TOPICS_MAX,
            });
        }
        self.inner.commit(group, offsets)
    }

    /// The committed offset of `group` on a partition, if any.
    ///
    /// # Errors
    /// [`Error::GroupNameInvalid`], [`Error::Meta`], [`Error::MetaCorrupt`].
    pub fn committed_offset(
        &self,
        group: &str,
        tp: &TopicPartition,
    ) -> Result<Option<CommittedOffset>> {
        check_group(group)?;
        let Some(v) = self
            .inner
            .offsets_ks
            .get(offset_key(group, tp))
            .map_err(meta("read offset"))?
        else {
            return Ok(None);
        };
        let (head, rest) = v.split_at_checked(8).ok_or_else(|| Error::MetaCorrupt {
            key: format!("{group}/{}/{}", tp.topic, tp.partition),
            reason: "shorter than 8 bytes".into(),
        })?;
        let offset = u64::from_be_bytes(head.try_into().map_err(|_| Error::LockPoisoned)?);
        Ok(Some(CommittedOffset {
            offset,
            metadata: String::from_utf8_lossy(rest).into_owned(),
        }))
    }

    /// Every consumer group that exists in Kafka's sense — with a member (an instance with a
    /// subscription) or a committed offset — described as [`Log::describe_consumer_group`]
    /// describes one, by name; one pass over the committed offsets.
    ///
    /// # Errors
    /// [`Error::Meta`], [`Error::MetaCorrupt`].
    pub fn consumer_groups(&self) -> Result<Vec<GroupDescription>> {
        let mut groups: BTreeMap<String, GroupDescription> = BTreeMap::new();
        for (name, members) in &self.registry()?.groups {
            let members = subscribed_members(members);
            if !members.is_empty() {
                groups.insert(name.clone(), described(name, members));
            }
        }
        for guard in self.inner.offsets_ks.iter() {
            let (key, value) = guard.into_inner().map_err(meta("read offsets"))?;
            let (group, tp, offset) = committed_entry(&key, &value)?;
            groups
                .entry(group.clone())
                .or_insert_with(|| described(&group, Vec::new()))
                .committed
                .push((tp, offset));
        }
        Ok(groups.into_values().collect())
    }

    /// `group`'s members and committed offsets; `None` when it has neither (a group Kafka
    /// describes as dead, and the REST Proxy as not found).
    ///
    /// Members are the instances with a subscription, as in Kafka, where a consumer that
    /// assigns itself partitions commits under the group without joining it.
    ///
    /// # Errors
    /// [`Error::GroupNameInvalid`], [`Error::Meta`], [`Error::MetaCorrupt`].
    pub fn describe_consumer_group(&self, group: &str) -> Result<Option<GroupDescription>> {
        check_group(group)?;
        let members = self
            .registry()?
            .groups
            .get(group)
            .map(subscribed_members)
            .unwrap_or_default();
        let mut d = described(group, members);
        let mut prefix = group.as_bytes().to_vec();
        prefix.push(0);
        for guard in self.inner.offsets_ks.prefix(&prefix) {
            let (key, value) = guard.into_inner().map_err(meta("read offsets"))?;
            let (_, tp, offset) = committed_entry(&key, &value)?;
            d.committed.push((tp, offset));
        }
        Ok((!d.members.is_empty() || !d.committed.is_empty()).then_some(d))
    }

    /// Creates a REST consumer instance; returns its id (`name`, or a generated
    /// `rest-consumer-…`).
    ///
    /// # Errors
    /// [`Error::GroupNameInvalid`], [`Error::InstanceNameInvalid`], [`Error::InstanceExists`],
    /// [`Error::TooManyInstances`].
    pub fn create_consumer(
        &self,
        group: &str,
        name: Option<&str>,
        settings: ConsumerSettings,
    ) -> Result<String> {
        check_group(group)?;
        if let Some(n) = name {
            check_instance_name(n)?;
        }
        let now = self.now_mono_ms();
        let mut reg = self.registry()?;
        let len = reg.count() + 1;
        if len > CONSUMER_INSTANCES_MAX {
            return Err(Error::TooManyInstances {
                len,
                max: CONSUMER_INSTANCES_MAX,
            });
        }
        reg.next_id += 1;
        let id = match name {
            Some(n) => n.to_owned(),
            None => format!(
                "rest-consumer-{:012x}-{}",
                self.inner.clock.now_ms(),
                reg.next_id
            ),
        };
        let members = reg.groups.entry(group.to_owned()).or_default();
        if members.contains_key(&id) {
            return Err(Error::InstanceExists {
                group: group.to_owned(),
                instance: id,
            });
        }
        members.insert(
            id.clone(),
            Member {
                settings,
                last_used_ms: now,
                subscription: None,
                manual: None,
                assigned: Vec::new(),
                positions: BTreeMap::new(),
                auto_committed: BTreeMap::new(),
                polling: Arc::default(),
                first_read: 0,
            },
        );
        Ok(id)
    }

    /// The settings an instance was created with.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn consumer_settings(&self, group: &str, instance: &str) -> Result<ConsumerSettings> {
        let now = self.now_mono_ms();
        Ok(self
            .registry()?
            .member(group, instance, now)?
            .settings
            .clone())
    }

    /// The lock a poll of `instance` holds from planning its reads to updating its positions.
    fn poll_lock(&self, group: &str, instance: &str, now: u64) -> Result<Arc<Mutex<()>>> {
        Ok(self
            .registry()?
            .member(group, instance, now)?
            .polling
            .clone())
    }

    /// Deletes an instance (after a poll in flight); its partitions go to the rest of the
    /// group. With `auto_commit`, its delivered positions are committed first, as a Kafka
    /// consumer commits on close.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn delete_consumer(&self, group: &str, instance: &str) -> Result<()> {
        let now = self.now_mono_ms();
        let polling = self.poll_lock(group, instance, now)?;
        // A poll in flight finishes first, so its positions are the ones committed below.
        let _polling = polling.lock()?;
        self.inner.expire_idle_consumers()?;
        // IMPORTANT: as in expiry, the registry stays locked until the commit is written, so
        // the members that take the partitions over start from it. The partition counts are
        // read under topic_admin, so no topic changes between them and the rebalance.
        let admin = self.inner.topic_admin.lock()?;
        let counts = self.partition_counts()?;
        let mut reg = self.inner.groups.lock()?;
        let removed = reg.groups.get_mut(group).and_then(|g| g.remove(instance));
        let revoked = reg.rebalance(group, &counts);
        let removed = removed.ok_or_else(|| Error::InstanceNotFound {
            group: group.to_owned(),
            instance: instance.to_owned(),
        })?;
        let closed = [(group.to_owned(), instance.to_owned(), removed)];
        let written = self.inner.write_closing_commits(&closed)?;
        let written = self.inner.write_revoked_commits(group, revoked)? || written;
        drop(reg);
        drop(admin);
        self.inner.persist_auto_commits(written);
        Ok(())
    }

    /// Subscribes an instance (replacing an earlier subscription); named topics are
    /// auto-created when allowed.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], [`Error::IllegalState`] when manually assigned,
    /// [`Error::PatternInvalid`], [`Error::TooManyTopicsInSubscription`], topic errors.
    pub fn subscribe_consumer(&self, group: &str, instance: &str, sub: Subscription) -> Result<()> {
        let re = match &sub {
            Subscription::Topics(list) => {
                if list.len() > SUBSCRIPTION_TOPICS_MAX {
                    return Err(Error::TooManyTopicsInSubscription {
                        len: list.len(),
                        max: SUBSCRIPTION_TOPICS_MAX,
                    });
                }
                for t in list {
                    self.ensure_topic(t)?;
                }
                None
            }
            Subscription::Pattern(p) => Some(topic_pattern(p)?),
        };
        let now = self.now_mono_ms();
        self.inner.expire_idle_consumers()?;
        // IMPORTANT: topic_admin before the registry, as in `delete_consumer`; the registry
        // stays locked until the revoked positions are committed, so the members that take the
        // partitions over start from them.
        let admin = self.inner.topic_admin.lock()?;
        let counts = self.partition_counts()?;
        let mut reg = self.inner.groups.lock()?;
        let m = reg.member(group, instance, now)?;
        if m.manual.is_some() {
            return Err(Error::IllegalState {
                reason: "subscription and manual assignment are mutually exclusive",
            });
        }
        m.subscription = Some((sub, re));
        let revoked = reg.rebalance(group, &counts);
        let written = self.inner.write_revoked_commits(group, revoked)?;
        drop(reg);
        drop(admin);
        self.inner.persist_auto_commits(written);
        Ok(())
    }

    /// The topics an instance is subscribed to (a pattern lists the topics it matches now).
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn consumer_subscription(&self, group: &str, instance: &str) -> Result<Vec<String>> {
        let counts = self.partition_counts()?;
        let now = self.now_mono_ms();
        let mut reg = self.registry()?;
        let m = reg.member(group, instance, now)?;
        Ok(match &m.subscription {
            Some((sub, re)) => subscribed_topics(sub, re.as_ref(), &counts),
            None => Vec::new(),
        })
    }

    /// Drops an instance's subscription or manual assignment, as `KafkaConsumer::unsubscribe`
    /// clears both; the instance may then subscribe or assign again.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn unsubscribe_consumer(&self, group: &str, instance: &str) -> Result<()> {
        let now = self.now_mono_ms();
        self.inner.expire_idle_consumers()?;
        // IMPORTANT: topic_admin before the registry, as in `subscribe_consumer`.
        let admin = self.inner.topic_admin.lock()?;
        let counts = self.partition_counts()?;
        let mut reg = self.inner.groups.lock()?;
        let m = reg.member(group, instance, now)?;
        m.subscription = None;
        m.manual = None;
        m.assigned.clear();
        m.positions.clear();
        let revoked = reg.rebalance(group, &counts);
        let written = self.inner.write_revoked_commits(group, revoked)?;
        drop(reg);
        drop(admin);
        self.inner.persist_auto_commits(written);
        Ok(())
    }

    /// Assigns partitions manually (replacing an earlier manual assignment). No partitions is
    /// [`Log::unsubscribe_consumer`], as `KafkaConsumer::assign` of an empty list is.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], [`Error::IllegalState`] when subscribed, partition errors,
    /// [`Error::TooManyTopicsInSubscription`].
    pub fn assign_consumer(
        &self,
        group: &str,
        instance: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<()> {
        if partitions.is_empty() {
            return self.unsubscribe_consumer(group, instance);
        }
        if partitions.len() > SUBSCRIPTION_TOPICS_MAX {
            return Err(Error::TooManyTopicsInSubscription {
                len: partitions.len(),
                max: SUBSCRIPTION_TOPICS_MAX,
            });
        }
        for tp in &partitions {
            self.partition(&tp.topic, tp.partition)?;
        }
        let now = self.now_mono_ms();
        let mut reg = self.registry()?;
        let m = reg.member(group, instance, now)?;
        if m.subscription.is_some() {
            return Err(Error::IllegalState {
                reason: "subscription and manual assignment are mutually exclusive",
            });
        }
        let keep: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        m.positions.retain(|tp, _| keep.contains(tp));
        m.assigned = keep.into_iter().collect();
        m.manual = Some(partitions);
        Ok(())
    }

    /// An instance's current assignment, sorted.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn consumer_assignment(&self, group: &str, instance: &str) -> Result<Vec<TopicPartition>> {
        let counts = self.partition_counts()?;
        let now = self.now_mono_ms();
        let mut reg = self.registry()?;
        reg.member(group, instance, now)?;
        reg.follow_topics(group, &counts);
        Ok(reg.member(group, instance, now)?.assigned.clone())
    }

    /// Sets explicit positions (the next offset to fetch).
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], [`Error::IllegalState`] for a partition not assigned.
    pub fn seek_consumer(
        &self,
        group: &str,
        instance: &str,
        positions: &[(TopicPartition, Offset)],
    ) -> Result<()> {
        let now = self.now_mono_ms();
        let mut reg = self.registry()?;
        let m = reg.member(group, instance, now)?;
        for (tp, _) in positions {
            if !m.assigned.contains(tp) {
                return Err(Error::IllegalState {
                    reason: "seek on a partition not assigned to this instance",
                });
            }
        }
        for (tp, o) in positions {
            m.positions.insert(tp.clone(), *o);
        }
        Ok(())
    }

    /// Moves positions to the log start (`beginning`) or end of each partition.
    ///
    /// # Errors
    /// As [`Log::seek_consumer`], plus partition errors.
    pub fn seek_consumer_to(
        &self,
        group: &str,
        instance: &str,
        partitions: &[TopicPartition],
        beginning: bool,
    ) -> Result<()> {
        let mut positions = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let p = self.partition(&tp.topic, tp.partition)?;
            let o = if beginning {
                p.earliest_offset()?
            } else {
                p.latest_offset()
            };
            positions.push((tp.clone(), o));
        }
        self.seek_consumer(group, instance, &positions)
    }

    /// Receivers that wake when any partition assigned to the instance gets records.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`].
    pub fn consumer_watch(
        &self,
        group: &str,
        instance: &str,
    ) -> Result<Vec<tokio::sync::watch::Receiver<Offset>>> {
        let assigned = self.consumer_assignment(group, instance)?;
        let mut receivers = Vec::with_capacity(assigned.len());
        for tp in &assigned {
            match self.subscribe(&tp.topic, tp.partition) {
                Ok(r) => receivers.push(r),
                // A manually assigned partition whose topic is gone: nothing to wait for.
                Err(Error::TopicNotFound { .. } | Error::PartitionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(receivers)
    }

    /// Fetches records from the instance's assigned partitions while their bytes (as
    /// [`StoredRecord::bytes_len`] counts them) fit in `max_bytes`, at least one record,
    /// advancing its positions past the records returned. With `auto_commit`, the positions
    /// reached by earlier polls are committed first.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], [`Error::NoResetPolicy`], read and commit errors.
    pub fn poll_consumer(
        &self,
        group: &str,
        instance: &str,
        max_bytes: usize,
    ) -> Result<Vec<ConsumedRecord>> {
        let now = self.now_mono_ms();
        let polling = self.poll_lock(group, instance, now)?;
        // IMPORTANT: held until the positions are updated: a second poll planned from the
        // same positions would deliver the same records again. A poll waits for the one
        // before it, as the REST Proxy synchronises every use of one instance's consumer.
        let _polling = polling.lock()?;
        let counts = self.partition_counts()?;
        let (plan, settings, previous) = {
            let mut reg = self.registry()?;
            reg.member(group, instance, now)?;
            reg.follow_topics(group, &counts);
            let m = reg.member(group, instance, now)?;
            let n = m.assigned.len();
            let first = if n == 0 { 0 } else { m.first_read % n };
            let plan: Vec<(usize, TopicPartition, Option<Offset>)> = (first..n)
                .chain(0..first)
                .filter_map(|i| {
                    let tp = m.assigned.get(i)?;
                    Some((i, tp.clone(), m.positions.get(tp).copied()))
                })
                .collect();
            (plan, m.settings.clone(), m.auto_commit_due())
        };
        if settings.auto_commit && !previous.is_empty() {
            // The instance's own positions, one per assigned partition: bounded by the topics
            // and partitions that exist, not by a request, so not by SUBSCRIPTION_TOPICS_MAX
            // (an instance assigned more partitions than that would fail every later poll).
            self.inner.commit_auto(group, &previous)?;
            let mut reg = self.registry()?;
            if let Ok(m) = reg.member(group, instance, now) {
                m.auto_committed
                    .extend(previous.into_iter().map(|(tp, c)| (tp, c.offset)));
            }
        }
        let mut out = Vec::new();
        let mut budget = max_bytes.min(super::READ_BYTES_MAX);
        let mut reached = Vec::new();
        let mut first_skipped = None;
        for (index, tp, planned) in plan {
            let partition = match self.partition(&tp.topic, tp.partition) {
                Ok(p) => p,
                // A manually assigned partition whose topic was deleted: read nothing from it,
                // as a Kafka consumer logs the unknown partition and fetches the rest.
                Err(Error::TopicNotFound { .. } | Error::PartitionNotFound { .. }) => {
                    tracing::debug!(group, instance, topic = %tp.topic, partition = tp.partition,
                        "assigned partition does not exist; skipped");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut pos = match planned {
                Some(p) => p,
                None => match self.committed_offset(group, &tp)? {
                    Some(c) => c.offset,
                    None => self.reset_position(&tp, settings.offset_reset, 0)?,
                },
            };
            if budget == 0 {
                first_skipped.get_or_insert(index);
                reached.push((tp, planned, pos));
                continue;
            }
            let records = match partition.read(pos, budget) {
                Ok(r) => r,
                Err(Error::OffsetOutOfRange { .. }) => {
                    pos = self.reset_position(&tp, settings.offset_reset, pos)?;
                    partition.read(pos, budget)?
                }
                Err(e) => return Err(e),
            };
            for r in records {
                let size = usize::try_from(r.bytes_len()).unwrap_or(usize::MAX).max(1);
                // A read returns whole batches; the budget ends inside one at the first record
                // that does not fit (the first record of a poll always comes). The position
                // stays on it, so the next poll starts there.
                if size > budget && !out.is_empty() {
                    budget = 0;
                    break;
                }
                budget = budget.saturating_sub(size);
                pos = r.offset + 1;
                out.push(ConsumedRecord {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    record: r,
                });
            }
            reached.push((tp, planned, pos));
        }
        let mut reg = self.registry()?;
        if let Ok(m) = reg.member(group, instance, now) {
            if let Some(index) = first_skipped {
                m.first_read = index;
            }
            for (tp, planned, pos) in reached {
                // A seek or rebalance during the reads wins over the position they reached.
                if m.assigned.contains(&tp) && m.positions.get(&tp).copied() == planned {
                    m.positions.insert(tp, pos);
                }
            }
        }
        Ok(out)
    }

    /// Where a consumer without a valid position starts.
    fn reset_position(
        &self,
        tp: &TopicPartition,
        reset: OffsetReset,
        offset: Offset,
    ) -> Result<Offset> {
        let p = self.partition(&tp.topic, tp.partition)?;
        match reset {
            OffsetReset::Earliest => p.earliest_offset(),
            OffsetReset::Latest => Ok(p.latest_offset()),
            OffsetReset::None => Err(Error::NoResetPolicy {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
            }),
        }
    }

    /// Commits the instance's positions: `explicit` entries are the next offsets to read (the
    /// REST Proxy's API layer sends a request's last-processed offset + 1); `None` commits every
    /// fetched position.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], commit errors.
    pub fn commit_consumer(
        &self,
        group: &str,
        instance: &str,
        explicit: Option<Vec<(TopicPartition, Offset, String)>>,
    ) -> Result<()> {
        let now = self.now_mono_ms();
        let offsets: Vec<(TopicPartition, CommittedOffset)> = match explicit {
            Some(list) => {
                self.registry()?.member(group, instance, now)?;
                list.into_iter()
                    .map(|(tp, o, metadata)| {
                        (
                            tp,
                            CommittedOffset {
                                offset: o,
                                metadata,
                            },
                        )
                    })
                    .collect()
            }
            None => self
                .registry()?
                .member(group, instance, now)?
                .positions
                .iter()
                .map(|(tp, &offset)| plain_commit(tp.clone(), offset))
                .collect(),
        };
        self.commit_offsets(group, &offsets)
    }

    /// Committed offsets of the instance's group for `partitions`.
    ///
    /// # Errors
    /// [`Error::InstanceNotFound`], [`Error::Meta`].
    pub fn consumer_committed(
        &self,
        group: &str,
        instance: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>> {
        let now = self.now_mono_ms();
        self.registry()?.member(group, instance, now)?;
        partitions
            .iter()
            .map(|tp| Ok((tp.clone(), self.committed_offset(group, tp)?)))
            .collect()
    }

    /// Closes the instances idle for `consumer_instance_timeout_ms` or more by the clock, as
    /// [`Log::delete_consumer`] does (committing their delivered positions under
    /// `auto_commit`); returns how many. Every consumer call also does this first.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only; a failed commit is logged.
    pub fn expire_idle_consumers(&self) -> Result<usize> {
        self.inner.expire_idle_consumers()
    }

    /// Closes every consumer instance as [`Log::delete_consumer`] does (committing their
    /// delivered positions under `auto_commit`), as the REST Proxy closes its Kafka consumers
    /// when it shuts down; returns how many. Called at shutdown.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only; a failed commit is logged.
    pub fn close_consumers(&self) -> Result<usize> {
        self.inner.close_all_consumers()
    }
}

impl Inner {
    /// Closes the instances idle for `consumer_instance_timeout_ms` or more by the monotonic
    /// clock, as the REST Proxy's expiration thread closes their Kafka consumers: under
    /// `auto_commit` their delivered positions are committed, as `KafkaConsumer.close()` does
    /// with `enable.auto.commit`. Returns how many.
    pub(super) fn expire_idle_consumers(&self) -> Result<usize> {
        self.close_consumers_idle_for(self.config.consumer_instance_timeout_ms, "idle")
    }

    /// Closes every consumer instance (idle for 0 ms or more), as the REST Proxy closes its
    /// Kafka consumers when it shuts down. Returns how many.
    pub(super) fn close_all_consumers(&self) -> Result<usize> {
        self.close_consumers_idle_for(0, "shutdown")
    }

    /// Closes the instances idle for `timeout` ms or more, committing as
    /// [`Log::delete_consumer`] does; `why` names the occasion in the log line.
    fn close_consumers_idle_for(&self, timeout: u64, why: &str) -> Result<usize> {
        let now = self.now_mono_ms();
        if !self.groups.lock()?.any_idle(now, timeout) {
            return Ok(0);
        }
        // IMPORTANT: topic_admin before the registry, the order topic deletion takes them in.
        // The registry stays locked until the commits are written, so another member of the
        // group cannot take the partitions over and read the committed offsets before them.
        let admin = self.topic_admin.lock()?;
        let mut reg = self.groups.lock()?;
        let expired = reg.take_idle(now, timeout);
        let mut written = self.write_closing_commits(&expired)?;
        // The rest of each group takes the closed instances' partitions over now, so that
        // what the members losing partitions to the new ranges delivered is committed first.
        let counts = self.partition_counts()?;
        let groups: BTreeSet<&str> = expired.iter().map(|(g, _, _)| g.as_str()).collect();
        for group in groups {
            let revoked = reg.rebalance(group, &counts);
            written = self.write_revoked_commits(group, revoked)? || written;
        }
        drop(reg);
        drop(admin);
        self.persist_auto_commits(written);
        if !expired.is_empty() {
            tracing::info!(closed = expired.len(), why, "consumer instances closed");
        }
        Ok(expired.len())
    }

    /// Writes what closing each of `closed` (group, instance id, member) commits: under
    /// `auto_commit`, its delivered positions not committed yet on partitions that still
    /// exist. Returns whether anything was written; a failed write is logged, not returned,
    /// since the instance is gone either way. The caller holds `topic_admin`.
    fn write_closing_commits(&self, closed: &[(String, String, Member)]) -> Result<bool> {
        let mut written = false;
        for (group, instance, m) in closed {
            if !m.settings.auto_commit {
                continue;
            }
            written |= self.write_auto_commit(group, instance, m.auto_commit_due(), "close")?;
        }
        Ok(written)
    }

    /// Writes one instance's auto-commit `offsets` of `group`, those on partitions that still
    /// exist; returns whether anything was written. A failed write is logged (naming the
    /// `occasion`), not returned: a Kafka consumer's failed auto-commit on close or before a
    /// rebalance does not stop it either. The caller holds `topic_admin`.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`].
    fn write_auto_commit(
        &self,
        group: &str,
        instance: &str,
        mut offsets: Vec<(TopicPartition, CommittedOffset)>,
        occasion: &str,
    ) -> Result<bool> {
        self.retain_existing(&mut offsets)?;
        if offsets.is_empty() {
            return Ok(false);
        }
        match self.write_offsets(group, &offsets) {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!(group, instance, occasion, error = %e, "auto-commit failed");
                Ok(false)
            }
        }
    }

    /// Each topic's partition count.
    fn partition_counts(&self) -> Result<BTreeMap<String, u32>> {
        Ok(self
            .topics
            .read()?
            .iter()
            .map(|(k, t)| (k.clone(), t.info.partitions))
            .collect())
    }

    /// Keeps in `offsets` only those on partitions that exist. An auto-commit names an
    /// instance's own positions, and one on a deleted topic (a seek of a partition the
    /// assignment still names, or a poll that read while the topic was deleted) must not fail
    /// the batch its other positions are written in.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`].
    fn retain_existing(&self, offsets: &mut Vec<(TopicPartition, CommittedOffset)>) -> Result<()> {
        let topics = self.topics.read()?;
        offsets.retain(|(tp, _)| {
            topics
                .get(&tp.topic)
                .is_some_and(|t| tp.partition < t.info.partitions)
        });
        Ok(())
    }

    /// Writes the commits a rebalance returned ([`Registry::rebalance`]): what auto-commit
    /// members delivered on the partitions they lost, on partitions that still exist. Returns
    /// whether anything was written; a failed write is logged, not returned, as a Kafka
    /// consumer's failed commit before a rebalance is. The caller holds `topic_admin` and the
    /// registry.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`].
    fn write_revoked_commits(&self, group: &str, revoked: Vec<AutoCommit>) -> Result<bool> {
        let mut written = false;
        for (instance, offsets) in revoked {
            written |= self.write_auto_commit(group, &instance, offsets, "rebalance")?;
        }
        Ok(written)
    }

    /// Makes auto-commits written for closed instances ([`Inner::write_closing_commits`]) or
    /// before a rebalance durable when any were written; a failure is logged.
    fn persist_auto_commits(&self, written: bool) {
        if written && let Err(e) = self.persist_offsets() {
            tracing::warn!(error = %e, "auto-commit of consumer instances failed");
        }
    }

    /// Commits offsets for `group` atomically (all or none) and durably.
    fn commit(&self, group: &str, offsets: &[(TopicPartition, CommittedOffset)]) -> Result<()> {
        // IMPORTANT: held from the partition checks to the batch commit, so a topic deletion
        // (which removes its offsets under this lock) cannot slip between them and leave an
        // offset of a deleted topic behind.
        let admin = self.topic_admin.lock()?;
        self.write_offsets(group, offsets)?;
        drop(admin);
        self.persist_offsets()
    }

    /// Commits an instance's auto-commit `offsets` as [`Inner::commit`] does, skipping those
    /// on partitions that no longer exist ([`Inner::retain_existing`]).
    fn commit_auto(
        &self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<()> {
        // IMPORTANT: held from the check of the partitions to the batch commit, as in `commit`.
        let admin = self.topic_admin.lock()?;
        let mut offsets = offsets.to_vec();
        self.retain_existing(&mut offsets)?;
        self.write_offsets(group, &offsets)?;
        drop(admin);
        if offsets.is_empty() {
            return Ok(());
        }
        self.persist_offsets()
    }

    /// Writes `offsets` of `group` in one batch after checking every partition exists, every
    /// metadata's length and, for a group without committed offsets yet, the
    /// [`CONSUMER_GROUPS_MAX`] limit; the caller holds `topic_admin`.
    fn write_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut groups = self.offset_groups.lock()?;
        let new_group = !groups.contains(group);
        if new_group && groups.len() >= CONSUMER_GROUPS_MAX {
            return Err(Error::TooManyGroups {
                len: groups.len() + 1,
                max: CONSUMER_GROUPS_MAX,
            });
        }
        let mut batch = self.db.batch();
        for (tp, c) in offsets {
            self.partition(&tp.topic, tp.partition)?;
            if c.metadata.len() > COMMIT_METADATA_BYTES_MAX {
                return Err(Error::MetadataTooLarge {
                    len: c.metadata.len(),
                    max: COMMIT_METADATA_BYTES_MAX,
                });
            }
            let mut v = c.offset.to_be_bytes().to_vec();
            v.extend_from_slice(c.metadata.as_bytes());
            batch.insert(&self.offsets_ks, offset_key(group, tp), v);
        }
        batch.commit().map_err(meta("commit offsets"))?;
        if new_group {
            groups.insert(group.to_owned());
        }
        Ok(())
    }

    /// After the committed offsets under `removed` (keys) were deleted, drops the groups left
    /// without any from the groups counted against [`CONSUMER_GROUPS_MAX`]; the caller holds
    /// `topic_admin`.
    pub(super) fn forget_emptied_groups(&self, removed: &[fjall::UserKey]) -> Result<()> {
        let mut touched = BTreeSet::new();
        for key in removed {
            touched.insert(offset_key_group(key)?.to_vec());
        }
        let mut groups = self.offset_groups.lock()?;
        for group in touched {
            let mut prefix = group.clone();
            prefix.push(0);
            if self.offsets_ks.prefix(&prefix).next().is_none() {
                groups.remove(String::from_utf8_lossy(&group).as_ref());
            }
        }
        Ok(())
    }

    /// Makes written offsets durable.
    fn persist_offsets(&self) -> Result<()> {
        self.db
            .persist(fjall::PersistMode::SyncData)
            .map_err(meta("persist offsets"))
    }
}

use super::Record;

impl Record {
    /// A record with the same key, value, headers and timestamp as a stored one.
    #[must_use]
    pub fn from_stored(r: &StoredRecord) -> Self {
        Self {
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
            timestamp_ms: Some(r.timestamp_ms),
        }
    }
}

/// Compiles a subscription's `topic_pattern` to match whole topic names, as Java's
/// `Pattern.matcher(topic).matches()` does. The pattern is compiled alone first, so one that
/// closes a group it did not open (`a)|(.*`) cannot escape the anchors.
fn topic_pattern(p: &str) -> Result<Regex> {
    if p.len() > TOPIC_PATTERN_BYTES_MAX {
        return Err(Error::PatternInvalid {
            reason: format!(
                "the pattern is {} bytes, over the limit of {TOPIC_PATTERN_BYTES_MAX}",
                p.len()
            ),
        });
    }
    let compile = |text: &str| {
        regex::RegexBuilder::new(text)
            .size_limit(TOPIC_PATTERN_COMPILED_BYTES_MAX)
            .build()
            .map_err(|e| Error::PatternInvalid {
                reason: e.to_string(),
            })
    };
    compile(p)?;
    compile(&format!("^(?:{p})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_keys_name_their_topic() {
        let key = |g: &str, t: &str, p: u32| {
            offset_key(
                g,
                &TopicPartition {
                    topic: t.into(),
                    partition: p,
                },
            )
        };
        assert_eq!(offset_key_topic(&key("g", "t", 0)), Some(&b"t"[..]));
        assert_eq!(offset_key_topic(&key("g", "a.b", 256)), Some(&b"a.b"[..]));
        assert_eq!(offset_key_topic(&key("g", "t", u32::MAX)), Some(&b"t"[..]));
        assert_eq!(offset_key_topic(b"g\0t"), None);
        assert_eq!(offset_key_topic(b"no-nul"), None);
        assert_eq!(offset_key_topic(b"g\0t\x01\0\0\0\0"), None);
    }

    #[test]
    fn range_assignor_matches_kafka() {
        assert_eq!(range_assign(3, 1), vec![0..3]);
        assert_eq!(range_assign(3, 2), vec![0..2, 2..3]);
        assert_eq!(range_assign(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(range_assign(2, 3), vec![0..1, 1..2, 2..2]);
    }
}
