//! DescribeLogDirs: the data dir is this broker's one log dir (Kafka's log.dirs with one
//! entry). Per partition its local size; the offset lag is 0 and is_future false, as on a
//! Kafka broker with one log dir and no reassignment between dirs. v4 adds the file system's
//! total and usable bytes. Kafka's check first: DESCRIBE on the cluster; refused, no result
//! and (v3+) CLUSTER_AUTHORIZATION_FAILED.

use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::path::Path;

/// (total, usable) bytes of the file system holding `dir`, as Java's FileStore getTotalSpace
/// and getUsableSpace; (-1, -1) if it cannot be asked.
fn space(dir: &Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs the call fills in.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return (-1, -1);
    }
    let frsize = st.f_frsize as i64;
    (st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize)
}

pub fn handle(ctx: &RequestContext, request: DescribeLogDirsRequest) -> Handled {
    if !ctx.authorize_cluster(Operation::Describe) {
        // v0-2 have no error code: an empty answer is all they see, as from Kafka.
        let code = if ctx.api_version >= 3 {
            ResponseError::ClusterAuthorizationFailed.code()
        } else {
            0
        };
        return Handled::ready(ResponseKind::DescribeLogDirs(
            DescribeLogDirsResponse::default().with_error_code(code),
        ));
    }
    // None: every partition; otherwise the partitions asked for, of topics that exist.
    let wanted: Option<BTreeMap<&str, Vec<i32>>> = request.topics.as_ref().map(|topics| {
        let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for t in topics {
            m.entry(t.topic.0.as_str())
                .or_default()
                .extend(&t.partitions);
        }
        m
    });
    let topics = ctx
        .broker
        .topics()
        .iter()
        .filter_map(|t| {
            let partitions: Vec<DescribeLogDirsPartition> = t
                .partitions
                .iter()
                .filter(|p| match &wanted {
                    None => true,
                    Some(w) => w
                        .get(t.name.as_str())
                        .is_some_and(|ps| ps.contains(&p.index)),
                })
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index)
                        .with_partition_size(p.size_bytes() as i64)
                        .with_offset_lag(0)
                        .with_is_future_key(false)
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(&t.name)))
                    .with_partitions(partitions)
            })
        })
        .collect();
    let dir = &ctx.broker.config.data_dir;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let (total_bytes, usable_bytes) = space(&dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&dir.to_string_lossy()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    Handled::ready(ResponseKind::DescribeLogDirs(
        DescribeLogDirsResponse::default().with_results(vec![result]),
    ))
}
