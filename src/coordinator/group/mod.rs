//! The group coordinator: every consumer group of this broker, their committed offsets, and
//! the group log that makes both durable. Handlers in api/ translate wire messages to the
//! calls here; timers run from `tick`, driven by a background task.
//!
//! Transactional offsets (TxnOffsetCommit) are Kafka's: durable in the group log as pending
//! offsets of their producer id, invisible to OffsetFetch (which answers UNSTABLE_OFFSET_COMMIT
//! for them when asked for stable offsets), committed or dropped by the transaction's marker
//! (`end_txn_offsets`, one group-log append for every group of the producer).

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod store;

use crate::log::flush::Flusher;
use bytes::Bytes;
use classic::{ClassicGroup, ClassicState};
use consumer::ConsumerGroup;
use dashmap::DashMap;
use kafka_protocol::ResponseError as E;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::{GroupMeta, GroupRecord, GroupStore};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Group settings under Kafka's names. Declared (names, defaults, ranges) in config/registry.rs;
/// `Default` is implemented in config/ from the registry.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// group.max.size
    pub max_size: usize,
    /// offsets.retention.minutes (in ms)
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_interval_ms: u64,
    /// offset.metadata.max.bytes
    pub offset_metadata_max_bytes: usize,
    /// offsets.topic.segment.bytes
    pub offsets_segment_bytes: u64,
    /// group.consumer.session.timeout.ms
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms
    pub consumer_heartbeat_interval_ms: i32,
    /// group.consumer.max.size
    pub consumer_max_size: usize,
    /// group.consumer.assignors (the first is the default)
    pub consumer_assignors: Vec<String>,
    /// group.coordinator.rebalance.protocols includes "consumer"
    pub consumer_protocol_enabled: bool,
}

impl GroupConfig {
    pub fn consumer_session_timeout(&self) -> Duration {
        Duration::from_millis(self.consumer_session_timeout_ms.max(0) as u64)
    }
}

/// An answer now, or one that arrives when the group's state moves on (rebalances).
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
}

/// The broker's topics as the coordinator needs them (KIP-848 assignment, OffsetDelete).
pub trait TopicSource {
    /// Changes whenever a topic is created, deleted or grows.
    fn topics_version(&self) -> u64;
    fn topics(&self) -> Vec<TopicInfo>;
}

pub enum GroupKind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ms: i64,
    /// When it was written, in the group log's order of offset writes (a transactional offset
    /// replaces a committed one at COMMIT only if written later).
    pub seq: u64,
}

/// One partition's answer to OffsetFetch: its committed offset (None: none), or a partition
/// error (UNSTABLE_OFFSET_COMMIT).
pub type FetchedOffset = Result<Option<CommittedOffset>, E>;

/// OffsetFetch's answer for one group: per topic, per partition.
pub type FetchedOffsets = Vec<(String, Vec<(i32, FetchedOffset)>)>;

/// Pending transactional offsets of one group: producer id -> partition -> offset.
type PendingOffsets = BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>;

pub struct Group {
    pub id: String,
    pub kind: GroupKind,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// TxnOffsetCommit offsets waiting for their transaction's end.
    pending: PendingOffsets,
    persisted: Option<GroupMeta>,
    /// Deleted (DeleteGroups or expiry) while someone else held a handle to it.
    removed: bool,
}

impl Group {
    fn new(id: &str, kind: GroupKind) -> Group {
        Group {
            id: id.to_string(),
            kind,
            offsets: BTreeMap::new(),
            pending: BTreeMap::new(),
            persisted: None,
            removed: false,
        }
    }

    /// Whether a transaction holds a pending offset for this partition.
    fn has_pending(&self, topic: &str, partition: i32) -> bool {
        self.pending
            .values()
            .any(|p| p.contains_key(&(topic.to_string(), partition)))
    }

    /// Whether any transaction holds pending offsets of this group.
    pub fn has_pending_offsets(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Drops the pending offsets of every producer for a partition (OffsetDelete); returns the
    /// records that make it durable.
    fn remove_pending(&mut self, topic: &str, partition: i32) -> Vec<GroupRecord> {
        let key = (topic.to_string(), partition);
        let mut records = Vec::new();
        self.pending.retain(|producer_id, offsets| {
            if offsets.remove(&key).is_some() {
                records.push(GroupRecord::TxnOffsetRemoved {
                    producer_id: *producer_id,
                    group: self.id.clone(),
                    topic: topic.to_string(),
                    partition,
                });
            }
            !offsets.is_empty()
        });
        records
    }

    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.is_empty(),
            GroupKind::Consumer(g) => g.is_empty(),
        }
    }

    fn meta(&self) -> GroupMeta {
        match &self.kind {
            GroupKind::Classic(g) => g.meta(&self.id),
            GroupKind::Consumer(g) => g.meta(&self.id),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state().name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    pub fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type().unwrap_or_default().to_string(),
            GroupKind::Consumer(_) => "consumer".to_string(),
        }
    }

    fn empty_since_ms(&self) -> Option<i64> {
        match &self.kind {
            GroupKind::Classic(g) => g.empty_since_ms(),
            GroupKind::Consumer(g) => g.empty_since_ms(),
        }
    }

    /// Topics the group's members consume, when known (OffsetDelete refuses those).
    fn subscribed_topics(&self, topics: &[TopicInfo]) -> Option<BTreeSet<String>> {
        match &self.kind {
            GroupKind::Consumer(g) => Some(g.subscribed_topic_names(topics)),
            GroupKind::Classic(g) if g.is_empty() => Some(BTreeSet::new()),
            GroupKind::Classic(g) if g.protocol_type() == Some("consumer") => Some(
                g.member_metadata()
                    .iter()
                    .flat_map(subscription_topics)
                    .collect(),
            ),
            GroupKind::Classic(_) => None,
        }
    }
}

/// Topic names in a ConsumerProtocolSubscription (the classic consumer's member metadata).
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if metadata.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]).clamp(0, 3);
    let mut body = metadata.slice(2..);
    ConsumerProtocolSubscription::decode(&mut body, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The (topic, partition) and offset an Offset record commits.
fn committed_offset(r: GroupRecord) -> Option<((String, i32), CommittedOffset)> {
    match r {
        GroupRecord::Offset {
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
            commit_ms,
            seq,
            ..
        } => Some((
            (topic, partition),
            CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_ms,
                seq,
            },
        )),
        _ => None,
    }
}

/// The (topic, partition) and offset a TxnOffset record leaves pending.
fn pending_offset(r: GroupRecord) -> Option<((String, i32), CommittedOffset)> {
    match r {
        GroupRecord::TxnOffset {
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
            commit_ms,
            seq,
            ..
        } => Some((
            (topic, partition),
            CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_ms,
                seq,
            },
        )),
        _ => None,
    }
}

/// One offset to commit.
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

pub struct CommitRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_or_epoch: i32,
    pub api_version: i16,
    pub offsets: Vec<OffsetToCommit>,
}

/// A TxnOffsetCommit for one group (the producer id is the guard's).
pub struct TxnCommitRequest {
    pub producer_epoch: i16,
    /// v3+ (KIP-447): the consumer's group metadata; "" / None / -1 before, and from clients
    /// that commit for a group they are not a member of.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_id: i32,
    pub offsets: Vec<OffsetToCommit>,
}

/// Per-offset error codes (in request order) and the group-log offset to wait for.
pub struct CommitOutcome {
    pub errors: Vec<i16>,
    pub durable_end: Option<i64>,
}

pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    pub group_type: &'static str,
}

/// Which groups hold pending offsets of each producer, and the TxnOffsetCommits under way.
#[derive(Default)]
struct TxnIndex {
    groups: HashMap<i64, BTreeSet<String>>,
    inflight: HashMap<i64, Inflight>,
}

impl TxnIndex {
    /// Whether a transaction end came after the guard was taken.
    fn fenced(&self, guard: &TxnOffsetGuard) -> bool {
        self.inflight
            .get(&guard.producer_id)
            .is_none_or(|i| i.ends != guard.ends)
    }
}

/// TxnOffsetCommits of one producer between their verification and their write.
struct Inflight {
    holders: usize,
    /// Transaction ends (`end_txn_offsets`) seen while any of them was under way.
    ends: u64,
}

/// Held by a TxnOffsetCommit from before it verifies its transaction until its offsets are
/// written. A transaction end in between fences it (INVALID_TXN_STATE), so no offset is
/// written pending after its transaction's marker, where it would wait for (and be decided
/// by) the producer's next transaction. Kafka's verification guard does this in the log.
pub struct TxnOffsetGuard {
    index: Arc<Mutex<TxnIndex>>,
    producer_id: i64,
    ends: u64,
}

impl TxnOffsetGuard {
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }
}

impl Drop for TxnOffsetGuard {
    fn drop(&mut self) {
        let mut index = lock_index(&self.index);
        if let Some(i) = index.inflight.get_mut(&self.producer_id) {
            i.holders -= 1;
            if i.holders == 0 {
                index.inflight.remove(&self.producer_id);
            }
        }
    }
}

pub struct GroupCoordinator {
    cfg: Arc<GroupConfig>,
    groups: DashMap<String, Arc<Mutex<Group>>>,
    store: GroupStore,
    /// The next offset write's `seq` (above every one in the log).
    next_seq: AtomicU64,
    /// Locked after a group's lock, never before one.
    txns: Arc<Mutex<TxnIndex>>,
}

fn lock(g: &Mutex<Group>) -> MutexGuard<'_, Group> {
    g.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_index(i: &Mutex<TxnIndex>) -> MutexGuard<'_, TxnIndex> {
    i.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCoordinator {
    /// Opens the group log in `dir` and rebuilds every group and committed offset from it.
    pub fn open(cfg: GroupConfig, dir: PathBuf, flusher: Flusher) -> std::io::Result<Self> {
        let cfg = Arc::new(cfg);
        let store = GroupStore::open(
            "__consumer_offsets",
            dir,
            cfg.offsets_segment_bytes,
            flusher,
        )?;
        let coordinator = GroupCoordinator {
            cfg: cfg.clone(),
            groups: DashMap::new(),
            store,
            next_seq: AtomicU64::new(1),
            txns: Arc::default(),
        };
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut txn_groups: HashMap<i64, BTreeSet<String>> = HashMap::new();
        let mut max_seq = 0;
        let classic = |id: &str| Group::new(id, GroupKind::Classic(ClassicGroup::new(cfg.clone())));
        let records = coordinator.store.replay()?;
        let count = records.len();
        for r in records {
            match r {
                GroupRecord::Offset { ref group, seq, .. } => {
                    max_seq = max_seq.max(seq);
                    let g = groups
                        .entry(group.clone())
                        .or_insert_with(|| classic(group));
                    g.offsets.extend(committed_offset(r));
                }
                GroupRecord::TxnOffset {
                    producer_id,
                    ref group,
                    seq,
                    ..
                } => {
                    // Kafka too creates the (simple) group of a transactional offset.
                    max_seq = max_seq.max(seq);
                    txn_groups
                        .entry(producer_id)
                        .or_default()
                        .insert(group.clone());
                    let g = groups
                        .entry(group.clone())
                        .or_insert_with(|| classic(group));
                    g.pending
                        .entry(producer_id)
                        .or_default()
                        .extend(pending_offset(r));
                }
                GroupRecord::TxnOffsetRemoved {
                    producer_id,
                    group,
                    topic,
                    partition,
                } => {
                    if let Some(g) = groups.get_mut(&group) {
                        if let Some(p) = g.pending.get_mut(&producer_id) {
                            p.remove(&(topic, partition));
                            if p.is_empty() {
                                g.pending.remove(&producer_id);
                            }
                        }
                    }
                }
                GroupRecord::TxnEnd { producer_id, .. } => {
                    // The committed ones were replayed from the Offset records before it.
                    for group in txn_groups.remove(&producer_id).unwrap_or_default() {
                        if let Some(g) = groups.get_mut(&group) {
                            g.pending.remove(&producer_id);
                        }
                    }
                }
                GroupRecord::OffsetRemoved {
                    group,
                    topic,
                    partition,
                } => {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
                GroupRecord::Group(meta) => {
                    let kind = if meta.kind == "consumer" {
                        GroupKind::Consumer(ConsumerGroup::restored(cfg.clone(), &meta))
                    } else {
                        GroupKind::Classic(ClassicGroup::restored(cfg.clone(), &meta))
                    };
                    let g = groups
                        .entry(meta.group.clone())
                        .or_insert_with(|| classic(&meta.group));
                    g.kind = kind;
                    g.persisted = Some(meta);
                }
                GroupRecord::GroupRemoved { group } => {
                    groups.remove(&group);
                }
            }
        }
        let pending = groups.values().map(|g| g.pending.len()).sum::<usize>();
        tracing::info!(
            groups = groups.len(),
            records = count,
            pending_transactions = pending,
            "loaded consumer groups"
        );
        coordinator.next_seq.store(max_seq + 1, Ordering::Relaxed);
        // Groups removed after their producer's offsets were written leave stale entries;
        // `end_txn_offsets` skips them.
        lock_index(&coordinator.txns).groups = txn_groups;
        for (id, g) in groups {
            coordinator.groups.insert(id, Arc::new(Mutex::new(g)));
        }
        Ok(coordinator)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// The group, created with `create` when missing (None: don't create).
    fn handle(
        &self,
        id: &str,
        create: Option<fn(Arc<GroupConfig>) -> GroupKind>,
    ) -> Option<Arc<Mutex<Group>>> {
        if let Some(g) = self.groups.get(id) {
            return Some(g.clone());
        }
        let make = create?;
        Some(
            self.groups
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(id, make(self.cfg.clone())))))
                .clone(),
        )
    }

    /// Runs `f` on the locked group (retrying if it was deleted meanwhile).
    fn with_group<T>(
        &self,
        id: &str,
        create: Option<fn(Arc<GroupConfig>) -> GroupKind>,
        mut f: impl FnMut(&mut Group) -> T,
    ) -> Option<T> {
        loop {
            let handle = self.handle(id, create)?;
            let mut g = lock(&handle);
            if g.removed {
                continue;
            }
            let out = f(&mut g);
            self.persist_meta(&mut g);
            return Some(out);
        }
    }

    /// Writes the group's metadata record when it changed (generation, state, protocol).
    fn persist_meta(&self, g: &mut Group) {
        if g.removed {
            return;
        }
        let meta = g.meta();
        if g.persisted.as_ref() == Some(&meta) {
            return;
        }
        match self.store.append(&[GroupRecord::Group(meta.clone())]) {
            Ok(_) => g.persisted = Some(meta),
            Err(e) => tracing::error!(group = %g.id, error = %e.0, "persisting group metadata"),
        }
    }

    fn new_classic(cfg: Arc<GroupConfig>) -> GroupKind {
        GroupKind::Classic(ClassicGroup::new(cfg))
    }

    fn new_consumer(cfg: Arc<GroupConfig>) -> GroupKind {
        GroupKind::Consumer(ConsumerGroup::new(cfg))
    }

    pub fn join(&self, group_id: &str, p: classic::JoinParams) -> Reply<classic::JoinOutcome> {
        let now = Instant::now();
        let member_id = p.member_id.clone();
        let error = |e: E| {
            Reply::Now(classic::JoinOutcome {
                error: e.code(),
                generation: -1,
                member_id: member_id.clone(),
                ..Default::default()
            })
        };
        if group_id.is_empty() {
            return error(E::InvalidGroupId);
        }
        let mut p = Some(p);
        self.with_group(group_id, Some(Self::new_classic), |g| {
            if let GroupKind::Consumer(c) = &g.kind {
                if !c.is_empty() {
                    return error(E::InconsistentGroupProtocol);
                }
                // An empty consumer group converts to classic (Kafka's downgrade rule).
                g.kind = Self::new_classic(self.cfg.clone());
            }
            let GroupKind::Classic(c) = &mut g.kind else {
                unreachable!("converted above")
            };
            c.join(p.take().expect("runs once"), now)
        })
        .expect("created when missing")
    }

    pub fn sync(&self, group_id: &str, p: classic::SyncParams) -> Reply<classic::SyncOutcome> {
        let now = Instant::now();
        let unknown = || {
            Reply::Now(classic::SyncOutcome {
                error: E::UnknownMemberId.code(),
                ..Default::default()
            })
        };
        if group_id.is_empty() {
            return Reply::Now(classic::SyncOutcome {
                error: E::InvalidGroupId.code(),
                ..Default::default()
            });
        }
        let mut p = Some(p);
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => c.sync(p.take().expect("runs once"), now),
            GroupKind::Consumer(_) => unknown(),
        })
        .unwrap_or_else(unknown)
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if group_id.is_empty() {
            return E::InvalidGroupId.code();
        }
        let now = Instant::now();
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => c.heartbeat(member_id, instance_id, generation, now),
            GroupKind::Consumer(_) => E::UnknownMemberId.code(),
        })
        .unwrap_or(E::UnknownMemberId.code())
    }

    /// LeaveGroup: a group-level error, or one code per member.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, E> {
        if group_id.is_empty() {
            return Err(E::InvalidGroupId);
        }
        let now = Instant::now();
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => Ok(c.leave(members, now)),
            GroupKind::Consumer(_) => Ok(vec![E::UnknownMemberId.code(); members.len()]),
        })
        .unwrap_or_else(|| Ok(vec![E::UnknownMemberId.code(); members.len()]))
    }

    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        p: consumer::HeartbeatParams,
        source: &dyn TopicSource,
    ) -> consumer::HeartbeatOutcome {
        let error = |e: E, msg: String, member_id: &str| consumer::HeartbeatOutcome {
            error: e.code(),
            message: Some(msg),
            member_id: member_id.to_string(),
            ..Default::default()
        };
        if !self.cfg.consumer_protocol_enabled {
            return error(
                E::UnsupportedVersion,
                "the consumer group protocol is disabled (group.coordinator.rebalance.protocols)"
                    .into(),
                &p.member_id,
            );
        }
        if group_id.is_empty() {
            return error(
                E::InvalidRequest,
                "GroupId can't be empty".into(),
                &p.member_id,
            );
        }
        let now = Instant::now();
        let member_id = p.member_id.clone();
        let create = (p.member_epoch == 0).then_some(Self::new_consumer as fn(_) -> _);
        let mut p = Some(p);
        self.with_group(group_id, create, |g| {
            if let GroupKind::Classic(c) = &g.kind {
                if !c.is_empty() {
                    return error(
                        E::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group"),
                        &member_id,
                    );
                }
                // An empty classic group (e.g. only committed offsets) converts (Kafka's upgrade rule).
                g.kind = Self::new_consumer(self.cfg.clone());
            }
            let GroupKind::Consumer(c) = &mut g.kind else {
                unreachable!("converted above")
            };
            c.heartbeat(p.take().expect("runs once"), source, now)
        })
        .unwrap_or_else(|| error(E::UnknownMemberId, "unknown member id".into(), &member_id))
    }

    pub fn commit_offsets(&self, group_id: &str, req: CommitRequest) -> CommitOutcome {
        let all = |e: E| CommitOutcome {
            errors: vec![e.code(); req.offsets.len()],
            durable_end: None,
        };
        // Like Kafka, offsets may be committed under the empty group id (backwards
        // compatibility); only the membership APIs refuse it.
        let simple = req.generation_or_epoch < 0 && req.member_id.is_empty();
        let create = simple.then_some(Self::new_classic as fn(_) -> _);
        let outcome = self.with_group(group_id, create, |g| {
            let valid = match &g.kind {
                GroupKind::Classic(c) => c.validate_commit(
                    &req.member_id,
                    req.instance_id.as_deref(),
                    req.generation_or_epoch,
                ),
                GroupKind::Consumer(c) => {
                    c.validate_commit(&req.member_id, req.generation_or_epoch, req.api_version)
                }
            };
            if let Err(e) = valid {
                return all(e);
            }
            if let GroupKind::Classic(c) = &mut g.kind {
                // As in Kafka, a member's commit also keeps its session alive.
                if matches!(
                    c.state(),
                    ClassicState::Stable | ClassicState::PreparingRebalance
                ) {
                    c.touch(&req.member_id, Instant::now());
                }
            }
            let now = crate::log::now_ms();
            let mut records = Vec::new();
            let errors = req
                .offsets
                .iter()
                .map(|o| {
                    if self.metadata_too_large(o) {
                        return E::OffsetMetadataTooLarge.code();
                    }
                    records.push(GroupRecord::Offset {
                        group: g.id.clone(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: now,
                        seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                    });
                    0
                })
                .collect::<Vec<i16>>();
            if records.is_empty() {
                return CommitOutcome {
                    errors,
                    durable_end: None,
                };
            }
            match self.store.append(&records) {
                Ok(end) => {
                    g.offsets
                        .extend(records.into_iter().filter_map(committed_offset));
                    CommitOutcome {
                        errors,
                        durable_end: Some(end),
                    }
                }
                Err(e) => {
                    tracing::error!(group = group_id, error = %e.0, "offset commit not stored");
                    all(E::CoordinatorNotAvailable)
                }
            }
        });
        outcome.unwrap_or_else(|| {
            // No such group and not a simple commit.
            all(if req.api_version >= 9 {
                E::GroupIdNotFound
            } else {
                E::IllegalGeneration
            })
        })
    }

    /// offset.metadata.max.bytes, for plain and transactional commits alike.
    fn metadata_too_large(&self, o: &OffsetToCommit) -> bool {
        o.metadata
            .as_ref()
            .is_some_and(|m| m.len() > self.cfg.offset_metadata_max_bytes)
    }

    pub async fn wait_durable(&self, end: i64) -> Result<(), String> {
        self.store.wait_durable(end).await.map_err(|e| e.0)
    }

    /// Taken by a TxnOffsetCommit before it verifies its transaction, held until
    /// `txn_commit_offsets` returned.
    pub fn txn_offset_guard(&self, producer_id: i64) -> TxnOffsetGuard {
        let mut index = lock_index(&self.txns);
        let i = index.inflight.entry(producer_id).or_insert(Inflight {
            holders: 0,
            ends: 0,
        });
        i.holders += 1;
        TxnOffsetGuard {
            index: self.txns.clone(),
            producer_id,
            ends: i.ends,
        }
    }

    /// TxnOffsetCommit, once the caller verified that the group's offsets partition is in the
    /// producer's transaction (the guard taken before that): Kafka's
    /// validateTransactionalOffsetCommit, then the offsets are written pending. They count once
    /// `end_txn_offsets` commits them.
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        guard: &TxnOffsetGuard,
        req: TxnCommitRequest,
    ) -> CommitOutcome {
        let all = |e: E| CommitOutcome {
            errors: vec![e.code(); req.offsets.len()],
            durable_end: None,
        };
        if group_id.is_empty() {
            return all(E::InvalidGroupId);
        }
        let producer_id = guard.producer_id;
        if self.fenced(guard) {
            // Checked again below, under the group's lock; this spares creating a group.
            return all(E::InvalidTxnState);
        }
        // A missing group is created only by a commit that names no generation, as in Kafka.
        let create = (req.generation_id < 0).then_some(Self::new_classic as fn(_) -> _);
        let outcome = self.with_group(group_id, create, |g| {
            let valid = match &g.kind {
                GroupKind::Classic(c) => c.validate_txn_commit(
                    &req.member_id,
                    req.instance_id.as_deref(),
                    req.generation_id,
                ),
                GroupKind::Consumer(c) => c.validate_txn_commit(&req.member_id, req.generation_id),
            };
            if let Err(e) = valid {
                return all(e);
            }
            let now = crate::log::now_ms();
            let mut records = Vec::new();
            let errors = req
                .offsets
                .iter()
                .map(|o| {
                    if self.metadata_too_large(o) {
                        return E::OffsetMetadataTooLarge.code();
                    }
                    records.push(GroupRecord::TxnOffset {
                        producer_id,
                        group: g.id.clone(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: now,
                        seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                    });
                    0
                })
                .collect::<Vec<i16>>();
            if records.is_empty() {
                return CommitOutcome {
                    errors,
                    durable_end: None,
                };
            }
            {
                // Under the group's lock: an end that starts after this sees the group in the
                // index and waits for the lock, so it finds the offsets written below.
                let mut index = lock_index(&self.txns);
                if index.fenced(guard) {
                    tracing::info!(group = group_id, producer_id,
                        "transactional offsets arrived after their transaction ended");
                    return all(E::InvalidTxnState);
                }
                index
                    .groups
                    .entry(producer_id)
                    .or_default()
                    .insert(g.id.clone());
            }
            match self.store.append(&records) {
                Ok(end) => {
                    let pending = g.pending.entry(producer_id).or_default();
                    for r in records {
                        if let Some((tp, o)) = pending_offset(r) {
                            pending.insert(tp, o);
                        }
                    }
                    tracing::debug!(group = group_id, producer_id,
                        producer_epoch = req.producer_epoch, "transactional offsets pending");
                    CommitOutcome {
                        errors,
                        durable_end: Some(end),
                    }
                }
                Err(e) => {
                    tracing::error!(group = group_id, error = %e.0, "transactional offset commit not stored");
                    all(E::CoordinatorNotAvailable)
                }
            }
        });
        // No such group and a generation named: Kafka answers ILLEGAL_GENERATION.
        outcome.unwrap_or_else(|| all(E::IllegalGeneration))
    }

    fn fenced(&self, guard: &TxnOffsetGuard) -> bool {
        lock_index(&self.txns).fenced(guard)
    }

    /// The transaction of `producer_id` ended: its pending TxnOffsetCommit offsets, in every
    /// group, become committed (`commit`) or are dropped, in one group-log append. Some(end):
    /// the group-log position to wait for (`wait_durable`); None: nothing was pending (also when
    /// the marker is written again after a restart). Err: nothing changed; call again.
    pub fn end_txn_offsets(&self, producer_id: i64, commit: bool) -> Result<Option<i64>, String> {
        let ids: Vec<String> = {
            let mut index = lock_index(&self.txns);
            if let Some(i) = index.inflight.get_mut(&producer_id) {
                i.ends += 1;
            }
            match index.groups.get(&producer_id) {
                Some(ids) => ids.iter().cloned().collect(),
                None => return Ok(None),
            }
        };
        // Handles first, then the locks in group id order (the only place holding more than
        // one group lock), so concurrent ends cannot deadlock.
        let handles: Vec<Arc<Mutex<Group>>> =
            ids.iter().filter_map(|id| self.handle(id, None)).collect();
        let mut locked: Vec<MutexGuard<'_, Group>> = handles
            .iter()
            .map(|h| lock(h))
            .filter(|g| !g.removed && g.pending.contains_key(&producer_id))
            .collect();
        // At COMMIT, per group, the offsets that become committed: Kafka keeps the later of a
        // transactional and a plain commit of a partition.
        let committed: Vec<Vec<GroupRecord>> = locked
            .iter()
            .map(|g| {
                if !commit {
                    return Vec::new();
                }
                g.pending[&producer_id]
                    .iter()
                    .filter(|((topic, partition), o)| {
                        g.offsets
                            .get(&(topic.clone(), *partition))
                            .is_none_or(|c| o.seq > c.seq)
                    })
                    .map(|((topic, partition), o)| GroupRecord::Offset {
                        group: g.id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: o.commit_ms,
                        seq: o.seq,
                    })
                    .collect()
            })
            .collect();
        let end = if locked.is_empty() {
            None
        } else {
            let mut records: Vec<GroupRecord> = committed.iter().flatten().cloned().collect();
            records.push(GroupRecord::TxnEnd {
                producer_id,
                commit,
            });
            let end = self
                .store
                .append(&records)
                .map_err(|e| format!("ending transactional offsets: {}", e.0))?;
            for (g, records) in locked.iter_mut().zip(committed) {
                g.pending.remove(&producer_id);
                g.offsets
                    .extend(records.into_iter().filter_map(committed_offset));
            }
            tracing::debug!(
                producer_id,
                commit,
                groups = locked.len(),
                "ended transactional offsets"
            );
            Some(end)
        };
        drop(locked);
        // No TxnOffsetCommit of this producer can add a group meanwhile: its transaction is
        // being ended, so verification fails, and one verified before is fenced by the guard.
        let mut index = lock_index(&self.txns);
        if let Some(groups) = index.groups.get_mut(&producer_id) {
            for id in &ids {
                groups.remove(id);
            }
            if groups.is_empty() {
                index.groups.remove(&producer_id);
            }
        }
        Ok(end)
    }

    /// Committed offsets of a group: the asked partitions (None: all committed ones).
    /// `member` (OffsetFetch v9) is checked against a consumer group's members. Pending
    /// transactional offsets are not visible; with `require_stable` (OffsetFetch v7+) a
    /// partition that has one answers UNSTABLE_OFFSET_COMMIT instead, as in Kafka.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(String, i32)>,
        require_stable: bool,
    ) -> Result<FetchedOffsets, E> {
        let read = |g: Option<&Group>| -> FetchedOffsets {
            let answer = |topic: &str, p: i32, o: Option<&CommittedOffset>| -> FetchedOffset {
                match g {
                    Some(g) if require_stable && g.has_pending(topic, p) => {
                        Err(E::UnstableOffsetCommit)
                    }
                    _ => Ok(o.cloned()),
                }
            };
            match &partitions {
                Some(asked) => asked
                    .iter()
                    .map(|(topic, parts)| {
                        let found = parts
                            .iter()
                            .map(|p| {
                                let o = g.and_then(|g| g.offsets.get(&(topic.clone(), *p)));
                                (*p, answer(topic, *p, o))
                            })
                            .collect();
                        (topic.clone(), found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, FetchedOffset)>> = BTreeMap::new();
                    if let Some(g) = g {
                        for ((t, p), o) in &g.offsets {
                            by_topic
                                .entry(t.clone())
                                .or_default()
                                .push((*p, answer(t, *p, Some(o))));
                        }
                    }
                    by_topic.into_iter().collect()
                }
            }
        };
        let Some(handle) = self.handle(group_id, None) else {
            return Ok(read(None));
        };
        let g = lock(&handle);
        if g.removed {
            return Ok(read(None));
        }
        if let (Some((member_id, epoch)), GroupKind::Consumer(c)) = (&member, &g.kind) {
            c.validate_fetch(member_id, *epoch)?;
        }
        Ok(read(Some(&g)))
    }

    /// OffsetDelete: per-partition errors, and the group-log offset to wait for.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, Vec<i32>)],
        topics: &[TopicInfo],
    ) -> Result<(Vec<(String, Vec<(i32, i16)>)>, Option<i64>), E> {
        let result = self.with_group(group_id, None, |g| {
            let Some(subscribed) = g.subscribed_topics(topics) else {
                return Err(E::NonEmptyGroup);
            };
            let mut records = Vec::new();
            let out = partitions
                .iter()
                .map(|(topic, parts)| {
                    let codes = parts
                        .iter()
                        .map(|p| {
                            if subscribed.contains(topic) {
                                return (*p, E::GroupSubscribedToTopic.code());
                            }
                            if g.offsets.remove(&(topic.clone(), *p)).is_some() {
                                records.push(GroupRecord::OffsetRemoved {
                                    group: g.id.clone(),
                                    topic: topic.clone(),
                                    partition: *p,
                                });
                            }
                            // Kafka's tombstone drops pending transactional offsets too.
                            records.extend(g.remove_pending(topic, *p));
                            (*p, 0)
                        })
                        .collect();
                    (topic.clone(), codes)
                })
                .collect();
            let end = if records.is_empty() {
                None
            } else {
                Some(self.store.append(&records).map_err(|e| {
                    tracing::error!(group = %g.id, error = %e.0, "offset delete not stored");
                    E::CoordinatorNotAvailable
                })?)
            };
            Ok((out, end))
        });
        result.unwrap_or(Err(E::GroupIdNotFound))
    }

    /// Removes a group, its offsets and its pending transactional offsets (as Kafka's
    /// DeleteGroups: open transactions do not keep a group). Returns the group-log offset to
    /// wait for.
    fn remove_group(&self, g: &mut Group) -> Result<Option<i64>, E> {
        let mut records: Vec<GroupRecord> = g
            .offsets
            .keys()
            .map(|(topic, partition)| GroupRecord::OffsetRemoved {
                group: g.id.clone(),
                topic: topic.clone(),
                partition: *partition,
            })
            .collect();
        for (producer_id, offsets) in &g.pending {
            records.extend(offsets.keys().map(|(topic, partition)| {
                GroupRecord::TxnOffsetRemoved {
                    producer_id: *producer_id,
                    group: g.id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                }
            }));
        }
        records.push(GroupRecord::GroupRemoved {
            group: g.id.clone(),
        });
        let end = self.store.append(&records).map_err(|e| {
            tracing::error!(group = %g.id, error = %e.0, "group delete not stored");
            E::CoordinatorNotAvailable
        })?;
        g.offsets.clear();
        g.pending.clear();
        g.removed = true;
        if let GroupKind::Classic(c) = &mut g.kind {
            c.mark_dead();
        }
        self.groups.remove(&g.id);
        Ok(Some(end))
    }

    /// DeleteGroups for one group.
    pub fn delete_group(&self, group_id: &str) -> Result<Option<i64>, E> {
        self.with_group(group_id, None, |g| {
            if !g.is_empty() {
                return Err(E::NonEmptyGroup);
            }
            self.remove_group(g)
        })
        .unwrap_or(Err(E::GroupIdNotFound))
    }

    /// ListGroups with Kafka's (case-insensitive) state and type filters.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        // Handles first, locks after: remove_group takes a map shard while holding a group
        // lock, so locking a group while iterating the map could deadlock with it.
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        let mut out: Vec<GroupListing> = handles
            .iter()
            .filter_map(|handle| {
                let g = lock(handle);
                if g.removed {
                    return None;
                }
                let listing = GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type(),
                    state: g.state_name(),
                    group_type: g.type_name(),
                };
                let state_ok = states.is_empty()
                    || states.iter().any(|s| s.eq_ignore_ascii_case(listing.state));
                let type_ok = types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(listing.group_type));
                (state_ok && type_ok).then_some(listing)
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Runs `f` on a group for reading (DescribeGroups, ConsumerGroupDescribe).
    pub fn inspect<T>(&self, group_id: &str, f: impl FnOnce(&Group) -> T) -> Option<T> {
        let handle = self.handle(group_id, None)?;
        let g = lock(&handle);
        (!g.removed).then(|| f(&g))
    }

    /// Timers of every group: sessions, rebalances, pending syncs.
    pub fn tick(&self) {
        let now = Instant::now();
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        for handle in handles {
            let mut g = lock(&handle);
            if g.removed {
                continue;
            }
            match &mut g.kind {
                GroupKind::Classic(c) => c.tick(now),
                GroupKind::Consumer(c) => c.tick(now),
            }
            self.persist_meta(&mut g);
        }
    }

    /// offsets.retention.minutes: offsets of a group that has been empty that long (counted
    /// from the later of the commit and the group becoming empty) are removed; an empty group
    /// left with no offsets is removed too. As in Kafka, an offset with a pending transactional
    /// offset for its partition does not expire, and a group with pending ones stays.
    pub fn expire_offsets(&self) {
        let now = crate::log::now_ms();
        let retention = self.cfg.offsets_retention_ms;
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        for handle in handles {
            let mut g = lock(&handle);
            if g.removed || !g.is_empty() {
                continue;
            }
            let empty_since = g.empty_since_ms().unwrap_or(0);
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|((t, p), o)| {
                    now - o.commit_ms.max(empty_since) > retention && !g.has_pending(t, *p)
                })
                .map(|(k, _)| k.clone())
                .collect();
            if !expired.is_empty() {
                let records: Vec<GroupRecord> = expired
                    .iter()
                    .map(|(topic, partition)| GroupRecord::OffsetRemoved {
                        group: g.id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .collect();
                if self.store.append(&records).is_ok() {
                    for k in &expired {
                        g.offsets.remove(k);
                    }
                    tracing::info!(group = %g.id, offsets = expired.len(), "expired committed offsets");
                }
            }
            if g.offsets.is_empty() && g.pending.is_empty() && now - empty_since > retention {
                let _ = self.remove_group(&mut g);
            }
        }
    }

    /// Rewrites the group log once superseded records outweigh the live ones. Blocking.
    pub fn compact_if_needed(&self) {
        if self
            .store
            .wants_compaction(self.cfg.offsets_segment_bytes / 4)
        {
            if let Err(e) = self.store.compact() {
                tracing::error!(error = %e.0, "group log compaction failed");
            }
        }
    }

    pub fn close(&self) {
        self.store.close();
    }
}

#[cfg(test)]
mod tests {
    use super::classic::{JoinParams, SyncParams};
    use super::*;

    fn open(dir: &std::path::Path) -> GroupCoordinator {
        let cfg = GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        };
        GroupCoordinator::open(cfg, dir.join("groups"), Flusher::start()).unwrap()
    }

    fn subscription(topics: &[&str]) -> Bytes {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let s = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.to_string()))
                .collect(),
        );
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        s.encode(&mut buf, 1).unwrap();
        buf.freeze()
    }

    /// One classic member, Stable at generation 1, subscribed to "t".
    fn join_one(c: &GroupCoordinator, group: &str) -> String {
        let params = JoinParams {
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&["t"]))],
            require_known_member_id: false,
        };
        let Reply::Later(mut rx) = c.join(group, params) else {
            panic!("a join waits for the rebalance");
        };
        let joined = rx.try_recv().unwrap();
        let sync = SyncParams {
            member_id: joined.member_id.clone(),
            instance_id: None,
            generation: joined.generation,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        };
        assert!(matches!(c.sync(group, sync), Reply::Later(_)));
        joined.member_id
    }

    fn commit(
        c: &GroupCoordinator,
        group: &str,
        member: &str,
        generation: i32,
        offset: i64,
    ) -> i16 {
        let out = c.commit_offsets(
            group,
            CommitRequest {
                member_id: member.into(),
                instance_id: None,
                generation_or_epoch: generation,
                api_version: 8,
                offsets: vec![OffsetToCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset,
                    leader_epoch: -1,
                    metadata: Some("meta".into()),
                }],
            },
        );
        out.errors[0]
    }

    fn committed(c: &GroupCoordinator, group: &str) -> Option<CommittedOffset> {
        stable(c, group, 0).expect("no pending offsets")
    }

    /// OffsetFetch with require_stable for t-`partition`.
    fn stable(c: &GroupCoordinator, group: &str, partition: i32) -> FetchedOffset {
        let fetched = c
            .fetch_offsets(group, Some(vec![("t".into(), vec![partition])]), None, true)
            .unwrap();
        fetched[0].1[0].1.clone()
    }

    /// OffsetFetch without require_stable: the committed offset of t-`partition`.
    fn visible(c: &GroupCoordinator, group: &str, partition: i32) -> Option<i64> {
        let fetched = c
            .fetch_offsets(
                group,
                Some(vec![("t".into(), vec![partition])]),
                None,
                false,
            )
            .unwrap();
        fetched[0].1[0].1.clone().unwrap().map(|o| o.offset)
    }

    fn txn_request(
        member: &str,
        generation: i32,
        offsets: &[(i32, i64)],
        metadata: Option<String>,
    ) -> TxnCommitRequest {
        TxnCommitRequest {
            producer_epoch: 0,
            member_id: member.into(),
            instance_id: None,
            generation_id: generation,
            offsets: offsets
                .iter()
                .map(|(partition, offset)| OffsetToCommit {
                    topic: "t".into(),
                    partition: *partition,
                    offset: *offset,
                    leader_epoch: 3,
                    metadata: metadata.clone(),
                })
                .collect(),
        }
    }

    /// A plain TxnOffsetCommit (v0-2: no member, generation -1) of t-p -> offset pairs.
    fn txn_commit(c: &GroupCoordinator, group: &str, pid: i64, offsets: &[(i32, i64)]) -> Vec<i16> {
        let guard = c.txn_offset_guard(pid);
        c.txn_commit_offsets(group, &guard, txn_request("", -1, offsets, None))
            .errors
    }

    #[test]
    fn commit_rules_for_members_and_plain_committers() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        // No such group: a plain commit (generation -1) creates it; a member commit can't.
        assert_eq!(commit(&c, "plain", "", -1, 5), 0);
        assert_eq!(commit(&c, "nope", "m", 3, 5), E::IllegalGeneration.code());
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 1, 10), 0);
        assert_eq!(commit(&c, "g", &member, 2, 10), E::IllegalGeneration.code());
        assert_eq!(
            commit(&c, "g", "stranger", 1, 10),
            E::UnknownMemberId.code()
        );
        // A plain commit into a group with members is refused, as in Kafka.
        assert_eq!(commit(&c, "g", "", -1, 10), E::UnknownMemberId.code());
        assert_eq!(committed(&c, "g").unwrap().offset, 10);
        assert_eq!(
            committed(&c, "g").unwrap().metadata.as_deref(),
            Some("meta")
        );
        assert_eq!(committed(&c, "unknown-group"), None);
    }

    #[test]
    fn delete_rules() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 1, 10), 0);
        let topics = vec![TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: 1,
        }];
        let (out, _) = c
            .delete_offsets("g", &[("t".into(), vec![0])], &topics)
            .unwrap();
        assert_eq!(out[0].1[0].1, E::GroupSubscribedToTopic.code());
        assert_eq!(c.delete_group("g"), Err(E::NonEmptyGroup));
        assert_eq!(c.delete_group("missing"), Err(E::GroupIdNotFound));
        assert_eq!(c.leave("g", &[(member, None)]).unwrap(), vec![0]);
        let (out, end) = c
            .delete_offsets("g", &[("t".into(), vec![0])], &topics)
            .unwrap();
        assert_eq!(out[0].1[0].1, 0);
        assert!(end.is_some());
        assert_eq!(committed(&c, "g"), None);
        assert!(c.delete_group("g").unwrap().is_some());
        assert!(c.list_groups(&[], &[]).is_empty());
    }

    #[test]
    fn offsets_and_groups_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = open(dir.path());
            let member = join_one(&c, "g");
            assert_eq!(commit(&c, "g", &member, 1, 42), 0);
            assert_eq!(commit(&c, "plain", "", -1, 7), 0);
            assert_eq!(commit(&c, "gone", "", -1, 7), 0);
            assert!(c.delete_group("gone").is_ok());
            c.close();
        }
        let c = open(dir.path());
        assert_eq!(committed(&c, "g").unwrap().offset, 42);
        assert_eq!(committed(&c, "plain").unwrap().offset, 7);
        assert_eq!(committed(&c, "gone"), None);
        let listed = c.list_groups(&[], &[]);
        let names: Vec<&str> = listed.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(names, vec!["g", "plain"]);
        // Members rejoin after a restart; the generation carries on.
        assert_eq!(listed[0].state, "Empty");
        assert_eq!(listed[0].protocol_type, "consumer");
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 2, 43), 0);
    }

    #[test]
    fn list_filters_and_group_types() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        join_one(&c, "classic-g");
        assert_eq!(commit(&c, "empty-g", "", -1, 1), 0);
        let stable = c.list_groups(&["STABLE".into()], &[]);
        assert_eq!(stable.len(), 1);
        assert_eq!(stable[0].group_id, "classic-g");
        assert_eq!(c.list_groups(&[], &["consumer".into()]).len(), 0);
        assert_eq!(c.list_groups(&[], &["Classic".into()]).len(), 2);
    }

    #[test]
    fn txn_offsets_commit_at_the_marker_and_drop_at_abort() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        assert_eq!(commit(&c, "g", "", -1, 5), 0);
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 10), (1, 11)]), vec![0, 0]);
        // Invisible until the marker; UNSTABLE_OFFSET_COMMIT when stable offsets are asked for.
        assert_eq!(visible(&c, "g", 0), Some(5));
        assert_eq!(visible(&c, "g", 1), None);
        assert_eq!(stable(&c, "g", 0), Err(E::UnstableOffsetCommit));
        assert_eq!(stable(&c, "g", 1), Err(E::UnstableOffsetCommit));
        assert_eq!(stable(&c, "g", 2), Ok(None));
        let all = c.fetch_offsets("g", None, None, true).unwrap();
        assert_eq!(
            all[0].1.len(),
            1,
            "fetch-all lists committed partitions only"
        );
        assert_eq!(all[0].1[0], (0, Err(E::UnstableOffsetCommit)));
        assert!(c.inspect("g", |g| g.has_pending_offsets()).unwrap());

        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        let o = committed(&c, "g").unwrap();
        assert_eq!((o.offset, o.leader_epoch), (10, 3));
        assert_eq!(stable(&c, "g", 1).unwrap().unwrap().offset, 11);
        // The marker again (a restart before Complete*): nothing pending, nothing written.
        assert_eq!(c.end_txn_offsets(7, true), Ok(None));
        assert_eq!(c.end_txn_offsets(99, false), Ok(None));

        // ABORT drops them; the committed offset stays.
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 20)]), vec![0]);
        assert!(c.end_txn_offsets(7, false).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 10);
        assert!(!c.inspect("g", |g| g.has_pending_offsets()).unwrap());
        assert!(lock_index(&c.txns).groups.is_empty());
    }

    #[test]
    fn one_end_covers_every_group_of_the_producer() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        assert_eq!(txn_commit(&c, "a", 7, &[(0, 1)]), vec![0]);
        assert_eq!(txn_commit(&c, "b", 7, &[(0, 2)]), vec![0]);
        assert_eq!(txn_commit(&c, "b", 8, &[(0, 3)]), vec![0]);
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "a").unwrap().offset, 1);
        // Producer 8's offset is still pending in b.
        assert_eq!(stable(&c, "b", 0), Err(E::UnstableOffsetCommit));
        assert_eq!(visible(&c, "b", 0), Some(2));
        assert!(c.end_txn_offsets(8, true).unwrap().is_some());
        assert_eq!(committed(&c, "b").unwrap().offset, 3);
    }

    #[test]
    fn the_later_of_a_plain_and_a_transactional_commit_wins() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        // TxnOffsetCommit, then a plain commit, then COMMIT: the plain one is later (Kafka).
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 10)]), vec![0]);
        assert_eq!(commit(&c, "g", "", -1, 30), 0);
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 30);
        // A plain commit, then a TxnOffsetCommit, then COMMIT: the transactional one.
        assert_eq!(commit(&c, "g", "", -1, 40), 0);
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 35)]), vec![0]);
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 35);
        // Two producers: the later TxnOffsetCommit wins, whichever commits first.
        assert_eq!(txn_commit(&c, "g", 8, &[(0, 50)]), vec![0]);
        assert_eq!(txn_commit(&c, "g", 9, &[(0, 60)]), vec![0]);
        assert!(c.end_txn_offsets(9, true).unwrap().is_some());
        assert!(c.end_txn_offsets(8, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 60);
        // The order holds after a compaction (which rewrites records in key order) and a
        // reopen.
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 70)]), vec![0]);
        assert_eq!(commit(&c, "g", "", -1, 80), 0);
        c.store.compact().unwrap();
        c.close();
        drop(c);
        let c = open(dir.path());
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 80);
        assert_eq!(commit(&c, "g", "", -1, 90), 0);
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 85)]), vec![0]);
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 85);
    }

    #[test]
    fn pending_offsets_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = open(dir.path());
            assert_eq!(txn_commit(&c, "g", 7, &[(0, 10)]), vec![0]);
            assert_eq!(txn_commit(&c, "g", 8, &[(0, 20), (1, 21)]), vec![0, 0]);
            assert_eq!(txn_commit(&c, "h", 8, &[(0, 22)]), vec![0]);
            // Producer 8's later write of t-1 replaces its earlier one.
            assert_eq!(txn_commit(&c, "g", 8, &[(1, 23)]), vec![0]);
            c.close();
        }
        {
            // A crash between TxnOffsetCommit and the marker: still pending.
            let c = open(dir.path());
            assert_eq!(stable(&c, "g", 0), Err(E::UnstableOffsetCommit));
            assert_eq!(visible(&c, "g", 0), None);
            assert!(c.end_txn_offsets(7, false).unwrap().is_some());
            assert_eq!(
                stable(&c, "g", 0),
                Err(E::UnstableOffsetCommit),
                "8's is left"
            );
            c.store.compact().unwrap();
            c.close();
        }
        {
            let c = open(dir.path());
            assert_eq!(stable(&c, "h", 0), Err(E::UnstableOffsetCommit));
            assert!(c.end_txn_offsets(8, true).unwrap().is_some());
            assert_eq!(committed(&c, "g").unwrap().offset, 20);
            assert_eq!(stable(&c, "g", 1).unwrap().unwrap().offset, 23);
            assert_eq!(committed(&c, "h").unwrap().offset, 22);
            // Ended transactions leave nothing for a compaction to bring back.
            c.store.compact().unwrap();
            c.close();
        }
        let c = open(dir.path());
        assert_eq!(committed(&c, "g").unwrap().offset, 20);
        assert_eq!(committed(&c, "h").unwrap().offset, 22);
        assert_eq!(c.end_txn_offsets(7, true), Ok(None));
        assert_eq!(c.end_txn_offsets(8, true), Ok(None));
        // New writes order after everything replayed.
        assert_eq!(txn_commit(&c, "g", 9, &[(0, 30)]), vec![0]);
        assert!(c.end_txn_offsets(9, true).unwrap().is_some());
        assert_eq!(committed(&c, "g").unwrap().offset, 30);
    }

    #[test]
    fn a_txn_commit_after_its_transaction_ended_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let guard = c.txn_offset_guard(7);
        // The marker lands between the verification and the write.
        assert_eq!(c.end_txn_offsets(7, true), Ok(None));
        let out = c.txn_commit_offsets("g", &guard, txn_request("", -1, &[(0, 1)], None));
        assert_eq!(out.errors, vec![E::InvalidTxnState.code()]);
        assert!(c.inspect("g", |_| ()).is_none(), "no group created");
        drop(guard);
        assert!(lock_index(&c.txns).inflight.is_empty());
        // The next transaction's commit goes through.
        assert_eq!(txn_commit(&c, "g", 7, &[(0, 2)]), vec![0]);
    }

    #[test]
    fn txn_commit_validation() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let txn = |group: &str, member: &str, generation: i32, metadata: Option<String>| {
            let guard = c.txn_offset_guard(7);
            c.txn_commit_offsets(
                group,
                &guard,
                txn_request(member, generation, &[(0, 1), (1, 1)], metadata),
            )
            .errors
        };
        let all = |e: E| vec![e.code(); 2];
        assert_eq!(txn("", "", -1, None), all(E::InvalidGroupId));
        // No such group: a generation names a group that would have to exist.
        assert_eq!(txn("nope", "m", 3, None), all(E::IllegalGeneration));
        assert!(c.inspect("nope", |_| ()).is_none());
        let member = join_one(&c, "g");
        assert_eq!(txn("g", &member, 1, None), vec![0, 0]);
        assert_eq!(txn("g", &member, 2, None), all(E::IllegalGeneration));
        assert_eq!(txn("g", "stranger", 1, None), all(E::UnknownMemberId));
        // Before v3 the request names no member: accepted even with members (Kafka).
        assert_eq!(txn("g", "", -1, None), vec![0, 0]);
        let guard = c.txn_offset_guard(7);
        let mut req = txn_request(&member, 1, &[(0, 1)], None);
        req.instance_id = Some("unknown-instance".into());
        assert_eq!(
            c.txn_commit_offsets("g", &guard, req).errors,
            vec![E::UnknownMemberId.code()]
        );
        let big = "x".repeat(c.config().offset_metadata_max_bytes + 1);
        let guard = c.txn_offset_guard(7);
        let out = c.txn_commit_offsets(
            "g",
            &guard,
            TxnCommitRequest {
                offsets: vec![
                    OffsetToCommit {
                        topic: "t".into(),
                        partition: 0,
                        offset: 1,
                        leader_epoch: -1,
                        metadata: Some(big),
                    },
                    OffsetToCommit {
                        topic: "t".into(),
                        partition: 1,
                        offset: 1,
                        leader_epoch: -1,
                        metadata: None,
                    },
                ],
                ..txn_request(&member, 1, &[], None)
            },
        );
        assert_eq!(out.errors, vec![E::OffsetMetadataTooLarge.code(), 0]);
        assert!(out.durable_end.is_some());
    }

    #[test]
    fn deletes_and_expiry_with_pending_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = GroupConfig {
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: -1,
            ..GroupConfig::default()
        };
        let c = GroupCoordinator::open(cfg.clone(), dir.path().join("groups"), Flusher::start())
            .unwrap();
        // Expiry: a pending offset keeps its partition's offset, and the group.
        assert_eq!(commit(&c, "e", "", -1, 1), 0);
        assert_eq!(txn_commit(&c, "e", 7, &[(0, 2)]), vec![0]);
        assert_eq!(txn_commit(&c, "only-pending", 7, &[(0, 2)]), vec![0]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        c.expire_offsets();
        assert_eq!(visible(&c, "e", 0), Some(1));
        assert!(c.inspect("only-pending", |_| ()).is_some());
        assert!(c.end_txn_offsets(7, false).unwrap().is_some());
        c.expire_offsets();
        assert_eq!(visible(&c, "e", 0), None);
        assert!(c.inspect("only-pending", |_| ()).is_none());

        // OffsetDelete drops a partition's pending offsets too (Kafka's tombstone).
        assert_eq!(txn_commit(&c, "d", 7, &[(0, 3), (1, 4)]), vec![0, 0]);
        let (out, end) = c
            .delete_offsets("d", &[("t".into(), vec![0])], &[])
            .unwrap();
        assert_eq!(out[0].1[0].1, 0);
        assert!(end.is_some());
        assert_eq!(stable(&c, "d", 0), Ok(None));
        assert_eq!(stable(&c, "d", 1), Err(E::UnstableOffsetCommit));
        // DeleteGroups: pending offsets do not make a group non-empty; they go with it.
        assert_eq!(txn_commit(&c, "x", 7, &[(0, 5)]), vec![0]);
        assert!(c.delete_group("x").unwrap().is_some());
        c.close();
        drop(c);
        let c = GroupCoordinator::open(cfg, dir.path().join("groups"), Flusher::start()).unwrap();
        assert!(c.inspect("x", |_| ()).is_none());
        assert_eq!(stable(&c, "d", 0), Ok(None));
        assert!(c.end_txn_offsets(7, true).unwrap().is_some());
        assert_eq!(committed(&c, "d"), None);
        assert_eq!(stable(&c, "d", 1).unwrap().unwrap().offset, 4);
        assert!(
            c.inspect("x", |_| ()).is_none(),
            "the marker does not bring it back"
        );
    }
}
