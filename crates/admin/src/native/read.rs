//! Copying librdkafka memory into owned values: strings, partition lists,
//! error objects and enum codes, plus [`Ctx`], what a decoder names in
//! its errors.

use super::*;

/// # Safety
/// `p` must be NULL or a valid NUL-terminated string.
pub(super) unsafe fn opt_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// # Safety
/// As [`opt_string`].
pub(super) unsafe fn string(p: *const c_char) -> String {
    // SAFETY: per the contract.
    unsafe { opt_string(p) }.unwrap_or_default()
}

/// Maps a raw code (and message) to an [`ErrorCode`]; see the module docs.
pub(super) fn code_from_raw(raw: c_int, msg: Option<String>) -> (ErrorCode, Option<String>) {
    match rdsys::rd_kafka_resp_err_t::try_from(raw) {
        Ok(err) => (ErrorCode::from(err), msg),
        Err(_) => (
            ErrorCode::Unknown,
            Some(match msg {
                Some(m) => format!("error code {raw} (unknown to librdkafka): {m}"),
                None => format!("error code {raw} (unknown to librdkafka)"),
            }),
        ),
    }
}

/// Code and message of a borrowed `rd_kafka_error_t` (NULL: no error).
///
/// # Safety
/// `err` must be NULL or a valid error object.
pub(super) unsafe fn error_object(
    err: *const rd_kafka_error_t,
) -> Option<(ErrorCode, Option<String>)> {
    if err.is_null() {
        return None;
    }
    // SAFETY: valid per the contract.
    let raw = unsafe { raw::rd_kafka_error_code(err) };
    if raw == 0 {
        return None;
    }
    // SAFETY: valid per the contract; copied immediately.
    let msg = unsafe { opt_string(rdsys::rd_kafka_error_string(err)) };
    Some(code_from_raw(raw, msg))
}

/// One element of a topic partition list, copied out.
pub(super) struct RawPartition {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) metadata: String,
    pub(super) err: c_int,
}

/// Copies the elements of a topic partition list.
///
/// # Safety
/// `list` must be NULL or a valid list that is not mutated concurrently.
pub(super) unsafe fn partitions(list: *const rd_kafka_topic_partition_list_t) -> Vec<RawPartition> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: valid list; plain integer/pointer field reads.
    let (cnt, elems) = unsafe { ((*list).cnt, (*list).elems) };
    if elems.is_null() || cnt <= 0 {
        return Vec::new();
    }
    (0..cnt as usize)
        .map(|i| {
            // SAFETY: `elems` has `cnt` initialised elements. Fields are read
            // through raw pointers, never via a `&rd_kafka_topic_partition_t`:
            // `err` may hold a code the Rust enum lacks, so it is read as the
            // `c_int` it is in C.
            unsafe {
                let e: *const rd_kafka_topic_partition_t = elems.add(i);
                let metadata = (*e).metadata;
                let metadata_size = (*e).metadata_size;
                RawPartition {
                    topic: string((*e).topic),
                    partition: (*e).partition,
                    offset: (*e).offset,
                    metadata: if metadata.is_null() || metadata_size == 0 {
                        String::new()
                    } else {
                        let bytes =
                            std::slice::from_raw_parts(metadata.cast::<u8>(), metadata_size);
                        String::from_utf8_lossy(bytes).into_owned()
                    },
                    err: ptr::addr_of!((*e).err).cast::<c_int>().read(),
                }
            }
        })
        .collect()
}

pub(super) fn group_state(s: rdsys::rd_kafka_consumer_group_state_t) -> GroupState {
    use rdsys::rd_kafka_consumer_group_state_t::*;
    match s {
        RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY => GroupState::Empty,
        RD_KAFKA_CONSUMER_GROUP_STATE_STABLE => GroupState::Stable,
        RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE => GroupState::PreparingRebalance,
        RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE => GroupState::CompletingRebalance,
        RD_KAFKA_CONSUMER_GROUP_STATE_DEAD => GroupState::Dead,
        _ => GroupState::Unknown,
    }
}

pub(super) fn group_type(t: rdsys::rd_kafka_consumer_group_type_t) -> GroupType {
    use rdsys::rd_kafka_consumer_group_type_t::*;
    match t {
        RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC => GroupType::Classic,
        RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER => GroupType::Consumer,
        _ => GroupType::Unknown,
    }
}

pub(super) fn config_source(raw: c_int) -> ConfigSource {
    match raw {
        1 => ConfigSource::DynamicTopic,
        2 => ConfigSource::DynamicBroker,
        3 => ConfigSource::DynamicDefaultBroker,
        4 => ConfigSource::StaticBroker,
        5 => ConfigSource::Default,
        6..=8 => ConfigSource::DynamicOther,
        _ => ConfigSource::Unknown,
    }
}

/// Context for decoding one result: what to name in errors.
pub(crate) struct Ctx {
    pub(crate) op: &'static str,
    pub(crate) timeout: Duration,
}

impl Ctx {
    pub(super) fn fail(
        &self,
        resource: Resource,
        (code, msg): (ErrorCode, Option<String>),
    ) -> AdminError {
        classify(self.op, resource, code, msg, self.timeout)
    }

    pub(super) fn wrong_type(&self, ev: &Event) -> AdminError {
        // SAFETY: valid event.
        let typ = unsafe { rdsys::rd_kafka_event_type(ev.ptr()) };
        AdminError::Internal {
            op: self.op,
            message: format!("result event of unexpected type {typ}"),
        }
    }

    /// Request-level error check shared by all decoders.
    pub(super) fn check(
        &self,
        ev: &Event,
        resource: impl FnOnce() -> Resource,
    ) -> Result<(), AdminError> {
        match ev.error() {
            Some(err) => Err(self.fail(resource(), err)),
            None => Ok(()),
        }
    }
}
