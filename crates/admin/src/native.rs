//! The only module that calls librdkafka through `rdkafka-sys`.
//!
//! # Ownership model
//!
//! * [`Native`] owns the safe rdkafka [`AdminClient`] (and with it the
//!   `rd_kafka_t`) plus one result queue made with `rd_kafka_queue_new`. Its
//!   `Drop` destroys the queue first; the client (and its `rd_kafka_t`) is
//!   destroyed afterwards, when the fields drop.
//! * One poll thread per `Native` reads result events off the queue. It holds
//!   an `Arc<Native>` and exits only when it holds the *last* one, so the
//!   `rd_kafka_t` is destroyed on that thread (never on a tokio worker) and
//!   never while anything else can still touch it.
//! * Each request boxes a [`Pending`] (oneshot sender + an `Arc<Native>`) and
//!   hands the raw pointer to librdkafka as the event opaque. librdkafka emits
//!   exactly one result event per admin request — errors and timeouts
//!   included — so the poll thread reclaims each box exactly once. Because the
//!   box holds an `Arc<Native>`, a request whose caller gave up (timeout,
//!   dropped future) still keeps the client alive until its result arrives:
//!   no leaked box, no result delivered to a destroyed queue.
//! * An [`Event`] owns its `rd_kafka_event_t` and an `Arc<Native>`; every
//!   pointer read out of a result is only dereferenced while the event is
//!   alive, and copied into owned Rust values before the event is dropped.
//! * Request arguments (`AdminOptions`, `ConfigResource`, group-offset
//!   objects, topic partition lists, C strings) are owned by RAII wrappers on
//!   the submitting side; librdkafka copies them during the request call, so
//!   they are freed as soon as the call returns.
//!
//! # Error codes
//!
//! `rdkafka-sys` models `rd_kafka_resp_err_t` and `rd_kafka_ConfigSource_t`
//! as Rust enums. A broker newer than the bundled librdkafka can send codes
//! those enums lack, and materialising such a value would be undefined
//! behaviour. So the functions that return broker-supplied codes are
//! re-declared here returning `c_int`, and partition errors are read from the
//! struct as raw integers; unknown codes become [`ErrorCode::Unknown`] with
//! the raw number in the message.

// The one module allowed to use `unsafe` (denied crate-wide in lib.rs).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rdkafka_sys as rdsys;
use rdsys::{
    rd_kafka_AdminOptions_t, rd_kafka_ConfigEntry_t, rd_kafka_ConfigResource_t, rd_kafka_error_t,
    rd_kafka_event_t, rd_kafka_queue_t, rd_kafka_t, rd_kafka_topic_partition_list_t,
    rd_kafka_topic_partition_t,
};
use tokio::sync::oneshot;

use crate::error::{
    classify, describe, means_group_active, AdminError, ErrorCode, PartitionError, Resource,
};
use crate::types::{
    ConfigChange, ConfigEntry, ConfigOp, ConfigSource, GroupDescription, GroupListing, GroupMember,
    GroupOffset, GroupState, GroupType,
};

/// Re-declarations (same symbols as in `rdkafka-sys`) returning the raw
/// integer instead of a Rust enum, see the module docs.
mod raw {
    use super::*;

    #[allow(clashing_extern_declarations)]
    extern "C" {
        pub fn rd_kafka_event_error(rkev: *mut rd_kafka_event_t) -> c_int;
        pub fn rd_kafka_error_code(error: *const rd_kafka_error_t) -> c_int;
        pub fn rd_kafka_ConfigResource_error(config: *const rd_kafka_ConfigResource_t) -> c_int;
        pub fn rd_kafka_ConfigEntry_source(entry: *const rd_kafka_ConfigEntry_t) -> c_int;
    }
}

/// Poll interval of the result thread; also how long it takes to notice that
/// it holds the last reference.
const POLL_INTERVAL_MS: c_int = 100;

// ---------------------------------------------------------------------------
// Native client + result queue + poll thread
// ---------------------------------------------------------------------------

pub(crate) struct Native {
    /// Result queue for the `rdkafka-sys` admin calls. Created from
    /// `client`'s `rd_kafka_t`; destroyed in `Drop`, before `client`.
    queue: NonNull<rd_kafka_queue_t>,
    /// The safe admin client, for the calls rust-rdkafka wraps.
    pub(crate) client: AdminClient<DefaultClientContext>,
    /// The `rd_kafka_t` every `rdkafka-sys` request goes through: a
    /// consumer-type handle with a group id that never subscribes or commits.
    /// librdkafka 2.12 dereferences the handle's consumer-group state when a
    /// group request is answered NOT_COORDINATOR (coordinator moved), which
    /// is NULL on an admin (producer-type) handle and crashes the process.
    requests: BaseConsumer,
    /// Config for the lazily created consumer handle.
    consumer_config: ClientConfig,
    /// A group-less consumer, for `offsets_for_times` (only exposed by the
    /// safe API on consumers). Created on first use.
    consumer: OnceLock<Result<BaseConsumer, KafkaError>>,
    /// Signs OAUTHBEARER tokens for clusters whose tokens the application
    /// makes (AWS MSK IAM). rust-rdkafka's admin client never delivers
    /// librdkafka's refresh request, so tokens are handed to every handle
    /// directly, at creation and from the poll thread before they expire.
    token_source: Option<TokenSource>,
}

/// Makes an OAUTHBEARER token: the token and when it expires, in ms since
/// the Unix epoch, or why none could be made (never containing a secret).
pub type TokenSource = Arc<dyn Fn() -> Result<(String, i64), String> + Send + Sync>;

/// How soon a failed token is tried again.
const TOKEN_RETRY: Duration = Duration::from_secs(10);

// SAFETY: `queue` is only used through librdkafka functions that are
// thread-safe (librdkafka queues are internally locked: `rd_kafka_queue_poll`
// from the poll thread, and passing it as the reply queue of admin calls from
// any thread). All other fields are `Send + Sync` already.
unsafe impl Send for Native {}
// SAFETY: as above.
unsafe impl Sync for Native {}

impl Drop for Native {
    fn drop(&mut self) {
        // SAFETY: `queue` came from `rd_kafka_queue_new` and is destroyed only
        // here, once. The `rd_kafka_t` it belongs to is still alive because
        // `client` is dropped after this function returns. No request can
        // still target the queue: each pending request holds an
        // `Arc<Native>`, and we are dropping the last one.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

impl Native {
    /// Creates the client, its result queue and the poll thread.
    pub(crate) fn start(
        config: &ClientConfig,
        token_source: Option<TokenSource>,
    ) -> Result<Arc<Native>, AdminError> {
        let mut config = config.clone();
        // Metadata lookups must never create topics as a side effect.
        config.set("allow.auto.create.topics", "false");
        let client: AdminClient<DefaultClientContext> =
            config.create().map_err(AdminError::Client)?;

        let mut consumer_config = config;
        consumer_config
            .remove("group.id")
            .set("enable.auto.commit", "false");
        let requests: BaseConsumer = consumer_config
            .clone()
            .set("group.id", "ferry-admin")
            .create()
            .map_err(AdminError::Client)?;

        // SAFETY: `native_ptr` is a valid `rd_kafka_t` for as long as
        // `requests` lives, and `requests` is moved into the `Native` that
        // owns the queue and destroys it first.
        let queue = unsafe { rdsys::rd_kafka_queue_new(Consumer::client(&requests).native_ptr()) };
        let queue = NonNull::new(queue).ok_or_else(|| AdminError::Internal {
            op: "Admin::new",
            message: "rd_kafka_queue_new returned NULL".into(),
        })?;
        let native = Arc::new(Native {
            queue,
            client,
            requests,
            consumer_config,
            consumer: OnceLock::new(),
            token_source,
        });
        let for_thread = Arc::clone(&native);
        std::thread::Builder::new()
            .name("ferry-admin".into())
            .spawn(move || poll_loop(for_thread))
            .map_err(|e| AdminError::Internal {
                op: "Admin::new",
                message: format!("spawning the admin poll thread failed: {e}"),
            })?;
        Ok(native)
    }

    fn rk(&self) -> *mut rd_kafka_t {
        Consumer::client(&self.requests).native_ptr()
    }

    /// The lazily created group-less consumer.
    pub(crate) fn consumer(&self) -> Result<&BaseConsumer, AdminError> {
        self.consumer
            .get_or_init(|| {
                let consumer: BaseConsumer = self.consumer_config.create()?;
                if let Some(source) = &self.token_source {
                    set_token(Consumer::client(&consumer).native_ptr(), &source());
                }
                Ok(consumer)
            })
            .as_ref()
            .map_err(|e| AdminError::Client(e.clone()))
    }

    /// Signs one token and hands it to every handle. Returns when to do it
    /// again (at 80% of the token's life, as librdkafka would), or None
    /// without a token source.
    fn refresh_tokens(&self) -> Option<Instant> {
        let source = self.token_source.as_ref()?;
        let token = source();
        let mut handles = vec![self.client.inner().native_ptr(), self.rk()];
        if let Some(Ok(consumer)) = self.consumer.get() {
            handles.push(Consumer::client(consumer).native_ptr());
        }
        for rk in handles {
            set_token(rk, &token);
        }
        Some(match &token {
            Ok((_, expires_ms)) => {
                let left_ms = expires_ms.saturating_sub(unix_ms()).max(0) as u64;
                Instant::now() + Duration::from_millis(left_ms * 4 / 5)
            }
            Err(_) => Instant::now() + TOKEN_RETRY,
        })
    }

    /// Hands one admin request to librdkafka and returns the receiver of its
    /// result event.
    ///
    /// # Safety
    ///
    /// `call` must make exactly one librdkafka admin request call, passing
    /// the three pointers it is given (client, options, queue) unchanged.
    /// The options carry a boxed [`Pending`] as their opaque; the poll thread
    /// frees it when that request's single result event arrives. Two calls
    /// would free it twice; no call would leak it.
    unsafe fn submit(
        self: &Arc<Self>,
        opts: &Options,
        call: impl FnOnce(*mut rd_kafka_t, *const rd_kafka_AdminOptions_t, *mut rd_kafka_queue_t),
    ) -> oneshot::Receiver<Event> {
        let (tx, rx) = oneshot::channel();
        let pending = Box::into_raw(Box::new(Pending {
            tx,
            native: Arc::clone(self),
        }));
        // SAFETY: `opts` owns a valid options object. The opaque is copied
        // into the request by the call below; ownership of the box moves to
        // that request (see the contract above).
        unsafe { rdsys::rd_kafka_AdminOptions_set_opaque(opts.ptr(), pending.cast::<c_void>()) };
        call(self.rk(), opts.ptr(), self.queue.as_ptr());
        rx
    }
}

/// The event opaque of every request on a `Native`'s queue.
struct Pending {
    tx: oneshot::Sender<Event>,
    /// Keeps the client and queue alive until the result has arrived.
    native: Arc<Native>,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Gives a handle its OAUTHBEARER token, or the reason there is none (which
/// librdkafka reports as the cause when it cannot connect).
fn set_token(rk: *mut rd_kafka_t, token: &Result<(String, i64), String>) {
    let principal = c"aws-msk-iam";
    let mut errstr = [0 as c_char; 512];
    let failure = match token {
        Ok((value, expires_ms)) => match CString::new(value.as_str()) {
            // SAFETY: `rk` is a live handle owned by the caller's `Native`;
            // the strings outlive the call, which copies them.
            Ok(value) => unsafe {
                let code = rdsys::rd_kafka_oauthbearer_set_token(
                    rk,
                    value.as_ptr(),
                    *expires_ms,
                    principal.as_ptr(),
                    ptr::null_mut(),
                    0,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                );
                (code != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                    .then(|| CStr::from_ptr(errstr.as_ptr()).to_owned())
            },
            Err(_) => Some(c"the token contains a NUL byte".to_owned()),
        },
        Err(reason) => {
            Some(CString::new(reason.replace('\0', " ")).expect("NUL bytes were replaced"))
        }
    };
    if let Some(reason) = failure {
        // SAFETY: as above.
        unsafe { rdsys::rd_kafka_oauthbearer_set_token_failure(rk, reason.as_ptr()) };
    }
}

fn poll_loop(native: Arc<Native>) {
    tracing::trace!("ferry-admin poll thread started");
    let mut token_due = native.refresh_tokens();
    loop {
        if token_due.is_some_and(|due| Instant::now() >= due) {
            token_due = native.refresh_tokens();
        }
        // The request handle is a consumer: serve its own queue (errors,
        // logs) so nothing accumulates there over months of running.
        let _ = native.requests.poll(Duration::ZERO);
        // SAFETY: the queue is valid while `native` is alive, and we hold it.
        let ev = unsafe { rdsys::rd_kafka_queue_poll(native.queue.as_ptr(), POLL_INTERVAL_MS) };
        let Some(ev) = NonNull::new(ev) else {
            // Only this thread holds the client: nothing can submit a request
            // or be waiting for one any more (each holds an `Arc`).
            if Arc::strong_count(&native) == 1 {
                break;
            }
            continue;
        };
        // SAFETY: `ev` is a valid event we now own.
        let opaque = unsafe { rdsys::rd_kafka_event_opaque(ev.as_ptr()) };
        if opaque.is_null() {
            tracing::warn!("ferry-admin: dropping a result event without opaque");
            // SAFETY: we own `ev` and nothing else refers to it.
            unsafe { rdsys::rd_kafka_event_destroy(ev.as_ptr()) };
            continue;
        }
        // SAFETY: every request on this queue is made through
        // `Native::submit`, which sets the opaque to a `Box<Pending>` leaked
        // for exactly this request, and librdkafka emits exactly one result
        // event per request, so this box is reclaimed exactly once.
        let pending = unsafe { Box::from_raw(opaque.cast::<Pending>()) };
        let Pending { tx, native: keep } = *pending;
        let event = Event {
            ptr: ev,
            _native: keep,
        };
        // A closed receiver (caller gave up) hands the event back; dropping it
        // destroys it here.
        let _ = tx.send(event);
    }
    tracing::trace!("ferry-admin poll thread exiting; destroying the client");
    drop(native);
}

/// An owned result event.
pub(crate) struct Event {
    ptr: NonNull<rd_kafka_event_t>,
    /// The event belongs to this client; keep it alive until the event is
    /// destroyed.
    _native: Arc<Native>,
}

// SAFETY: an `Event` is the sole owner of its `rd_kafka_event_t`; librdkafka
// allows reading and destroying an event on any thread.
unsafe impl Send for Event {}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: we own the event; destroyed once, here. The client it
        // belongs to is alive (`_native` is dropped after this).
        unsafe { rdsys::rd_kafka_event_destroy(self.ptr.as_ptr()) };
    }
}

impl Event {
    fn ptr(&self) -> *mut rd_kafka_event_t {
        self.ptr.as_ptr()
    }

    /// The request-level error, if any.
    fn error(&self) -> Option<(ErrorCode, Option<String>)> {
        // SAFETY: valid event (we own it).
        let raw = unsafe { raw::rd_kafka_event_error(self.ptr()) };
        if raw == 0 {
            return None;
        }
        // SAFETY: valid event; the string lives as long as the event and is
        // copied immediately.
        let msg = unsafe { opt_string(rdsys::rd_kafka_event_error_string(self.ptr())) };
        Some(code_from_raw(raw, msg))
    }
}

// ---------------------------------------------------------------------------
// RAII wrappers for request arguments
// ---------------------------------------------------------------------------

macro_rules! owned_ptr {
    ($(#[$m:meta])* $name:ident, $ty:ty, $destroy:path) => {
        $(#[$m])*
        struct $name(NonNull<$ty>);

        impl $name {
            /// # Safety
            /// `ptr` must be NULL or a freshly created object that the caller
            /// owns and that is to be freed by the matching destroy function.
            unsafe fn from_raw(ptr: *mut $ty) -> Option<Self> {
                NonNull::new(ptr).map($name)
            }

            fn ptr(&self) -> *mut $ty {
                self.0.as_ptr()
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: owned (see `from_raw`), destroyed once, here.
                unsafe { $destroy(self.0.as_ptr()) }
            }
        }
    };
}

owned_ptr!(
    /// `rd_kafka_AdminOptions_t`.
    Options,
    rd_kafka_AdminOptions_t,
    rdsys::rd_kafka_AdminOptions_destroy
);
owned_ptr!(
    /// `rd_kafka_ConfigResource_t`.
    ConfigResource,
    rd_kafka_ConfigResource_t,
    rdsys::rd_kafka_ConfigResource_destroy
);
owned_ptr!(
    /// `rd_kafka_ListConsumerGroupOffsets_t`.
    ListGroupOffsets,
    rdsys::rd_kafka_ListConsumerGroupOffsets_t,
    rdsys::rd_kafka_ListConsumerGroupOffsets_destroy
);
owned_ptr!(
    /// `rd_kafka_AlterConsumerGroupOffsets_t`.
    AlterGroupOffsets,
    rdsys::rd_kafka_AlterConsumerGroupOffsets_t,
    rdsys::rd_kafka_AlterConsumerGroupOffsets_destroy
);
owned_ptr!(
    /// An `rd_kafka_error_t` we must destroy.
    OwnedError,
    rd_kafka_error_t,
    rdsys::rd_kafka_error_destroy
);

impl Options {
    fn new(
        native: &Native,
        op: rdsys::rd_kafka_admin_op_t,
        op_name: &'static str,
        request_timeout: Duration,
    ) -> Result<Options, AdminError> {
        // SAFETY: `rk` is valid while `native` is; the result is NULL or a new
        // object we own.
        let opts = unsafe { Options::from_raw(rdsys::rd_kafka_AdminOptions_new(native.rk(), op)) }
            .ok_or_else(|| AdminError::Internal {
                op: op_name,
                message: "rd_kafka_AdminOptions_new returned NULL".into(),
            })?;
        let ms = c_int::try_from(request_timeout.as_millis()).unwrap_or(c_int::MAX);
        let mut errbuf = [0 as c_char; 512];
        // SAFETY: valid options; `errbuf` is writable for its full length.
        let res = unsafe {
            rdsys::rd_kafka_AdminOptions_set_request_timeout(
                opts.ptr(),
                ms,
                errbuf.as_mut_ptr(),
                errbuf.len(),
            )
        };
        if res != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka wrote a NUL-terminated string into errbuf
            // (zero-initialised, so terminated even if it did not).
            let msg = unsafe { CStr::from_ptr(errbuf.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(AdminError::InvalidArgument {
                op: op_name,
                resource: Resource::Cluster,
                message: format!("request timeout {request_timeout:?}: {msg}"),
            });
        }
        Ok(opts)
    }
}

fn cstring(op: &'static str, resource: &Resource, s: &str) -> Result<CString, AdminError> {
    CString::new(s).map_err(|_| AdminError::InvalidArgument {
        op,
        resource: resource.clone(),
        message: format!("{s:?} contains a NUL byte"),
    })
}

/// Builds a topic partition list (safe rdkafka type; it panics on NUL bytes,
/// so names are checked first). Negative partitions and duplicates are
/// refused.
pub(crate) fn partition_list(
    op: &'static str,
    resource: &Resource,
    items: impl IntoIterator<Item = (String, i32, Option<i64>)>,
) -> Result<TopicPartitionList, AdminError> {
    let mut tpl = TopicPartitionList::new();
    let mut seen = std::collections::HashSet::new();
    for (topic, partition, offset) in items {
        if !seen.insert((topic.clone(), partition)) {
            // Brokers answer duplicates with misleading errors (ListOffsets
            // says UNSUPPORTED_VERSION), so refuse them here.
            return Err(AdminError::InvalidArgument {
                op,
                resource: resource.clone(),
                message: format!("partition {topic}/{partition} is listed twice"),
            });
        }
        if topic.contains('\0') {
            return Err(AdminError::InvalidArgument {
                op,
                resource: resource.clone(),
                message: format!("topic {topic:?} contains a NUL byte"),
            });
        }
        if partition < 0 {
            return Err(AdminError::InvalidArgument {
                op,
                resource: resource.clone(),
                message: format!("negative partition {partition} of topic '{topic}'"),
            });
        }
        match offset {
            None => {
                tpl.add_partition(&topic, partition);
            }
            Some(o) => tpl
                .add_partition_offset(&topic, partition, Offset::Offset(o))
                .map_err(|e| AdminError::InvalidArgument {
                    op,
                    resource: resource.clone(),
                    message: format!("offset {o} for {topic}/{partition}: {e}"),
                })?,
        }
    }
    Ok(tpl)
}

// ---------------------------------------------------------------------------
// Reading librdkafka memory
// ---------------------------------------------------------------------------

/// # Safety
/// `p` must be NULL or a valid NUL-terminated string.
unsafe fn opt_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// # Safety
/// As [`opt_string`].
unsafe fn string(p: *const c_char) -> String {
    // SAFETY: per the contract.
    unsafe { opt_string(p) }.unwrap_or_default()
}

/// Views a librdkafka `(T **array, size_t cnt)` result as a slice.
///
/// # Safety
/// `arr` must be NULL or point to `n` valid pointers that outlive `'a`.
unsafe fn array<'a, T>(arr: *mut *const T, n: usize) -> &'a [*const T] {
    if arr.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: per the contract.
        unsafe { std::slice::from_raw_parts(arr as *const *const T, n) }
    }
}

/// Maps a raw code (and message) to an [`ErrorCode`]; see the module docs.
fn code_from_raw(raw: c_int, msg: Option<String>) -> (ErrorCode, Option<String>) {
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
unsafe fn error_object(err: *const rd_kafka_error_t) -> Option<(ErrorCode, Option<String>)> {
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
struct RawPartition {
    topic: String,
    partition: i32,
    offset: i64,
    metadata: String,
    err: c_int,
}

/// Copies the elements of a topic partition list.
///
/// # Safety
/// `list` must be NULL or a valid list that is not mutated concurrently.
unsafe fn partitions(list: *const rd_kafka_topic_partition_list_t) -> Vec<RawPartition> {
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

fn group_state(s: rdsys::rd_kafka_consumer_group_state_t) -> GroupState {
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

fn group_type(t: rdsys::rd_kafka_consumer_group_type_t) -> GroupType {
    use rdsys::rd_kafka_consumer_group_type_t::*;
    match t {
        RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC => GroupType::Classic,
        RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER => GroupType::Consumer,
        _ => GroupType::Unknown,
    }
}

fn config_source(raw: c_int) -> ConfigSource {
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
    fn fail(&self, resource: Resource, (code, msg): (ErrorCode, Option<String>)) -> AdminError {
        classify(self.op, resource, code, msg, self.timeout)
    }

    fn wrong_type(&self, ev: &Event) -> AdminError {
        // SAFETY: valid event.
        let typ = unsafe { rdsys::rd_kafka_event_type(ev.ptr()) };
        AdminError::Internal {
            op: self.op,
            message: format!("result event of unexpected type {typ}"),
        }
    }

    /// Request-level error check shared by all decoders.
    fn check(&self, ev: &Event, resource: impl FnOnce() -> Resource) -> Result<(), AdminError> {
        match ev.error() {
            Some(err) => Err(self.fail(resource(), err)),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

pub(crate) type Rx = oneshot::Receiver<Event>;

pub(crate) fn list_consumer_groups(native: &Arc<Native>, ctx: &Ctx) -> Result<Rx, AdminError> {
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        // SAFETY: pointers valid for the duration of the call.
        unsafe { rdsys::rd_kafka_ListConsumerGroups(rk, o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

pub(crate) fn decode_list_consumer_groups(
    ctx: &Ctx,
    ev: &Event,
) -> Result<Vec<GroupListing>, AdminError> {
    ctx.check(ev, || Resource::Cluster)?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_ListConsumerGroups_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: `res` lives as long as `ev`; arrays and strings are copied out
    // before returning.
    unsafe {
        let mut n = 0usize;
        let errors = array(
            rdsys::rd_kafka_ListConsumerGroups_result_errors(res, &mut n),
            n,
        );
        // Some broker could not be asked: a partial list must not be taken
        // for the whole one.
        if let Some(err) = errors.iter().find_map(|&e| error_object(e)) {
            return Err(ctx.fail(Resource::Cluster, err));
        }
        let mut n = 0usize;
        let valid = array(
            rdsys::rd_kafka_ListConsumerGroups_result_valid(res, &mut n),
            n,
        );
        Ok(valid
            .iter()
            .map(|&g| GroupListing {
                group_id: string(rdsys::rd_kafka_ConsumerGroupListing_group_id(g)),
                state: group_state(rdsys::rd_kafka_ConsumerGroupListing_state(g)),
                is_simple: rdsys::rd_kafka_ConsumerGroupListing_is_simple_consumer_group(g) != 0,
                group_type: group_type(rdsys::rd_kafka_ConsumerGroupListing_type(g)),
            })
            .collect())
    }
}

pub(crate) fn describe_consumer_groups(
    native: &Arc<Native>,
    ctx: &Ctx,
    groups: &[&str],
) -> Result<Rx, AdminError> {
    let resource = Resource::Groups(groups.iter().map(|g| g.to_string()).collect());
    let cstrs = groups
        .iter()
        .map(|g| cstring(ctx.op, &resource, g))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ptrs: Vec<*const c_char> = cstrs.iter().map(|c| c.as_ptr()).collect();
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        // SAFETY: `ptrs` holds `ptrs.len()` valid C strings (kept alive by
        // `cstrs`); librdkafka copies them during the call.
        unsafe { rdsys::rd_kafka_DescribeConsumerGroups(rk, ptrs.as_mut_ptr(), ptrs.len(), o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

pub(crate) fn decode_describe_consumer_groups(
    ctx: &Ctx,
    ev: &Event,
    groups: &[&str],
) -> Result<Vec<GroupDescription>, AdminError> {
    ctx.check(ev, || {
        Resource::Groups(groups.iter().map(|g| g.to_string()).collect())
    })?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_DescribeConsumerGroups_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    let mut out = Vec::new();
    // SAFETY: everything read below lives as long as `ev` and is copied out.
    unsafe {
        let mut n = 0usize;
        for &d in array(
            rdsys::rd_kafka_DescribeConsumerGroups_result_groups(res, &mut n),
            n,
        ) {
            let group_id = string(rdsys::rd_kafka_ConsumerGroupDescription_group_id(d));
            let error = error_object(rdsys::rd_kafka_ConsumerGroupDescription_error(d))
                .map(|e| ctx.fail(Resource::Group(group_id.clone()), e));
            let coordinator = rdsys::rd_kafka_ConsumerGroupDescription_coordinator(d);
            let member_count = rdsys::rd_kafka_ConsumerGroupDescription_member_count(d);
            let mut members = Vec::with_capacity(member_count);
            for i in 0..member_count {
                let m = rdsys::rd_kafka_ConsumerGroupDescription_member(d, i);
                if m.is_null() {
                    continue;
                }
                let assignment = rdsys::rd_kafka_MemberDescription_assignment(m);
                let assignment = if assignment.is_null() {
                    Vec::new()
                } else {
                    partitions(rdsys::rd_kafka_MemberAssignment_partitions(assignment))
                        .into_iter()
                        .map(|p| (p.topic, p.partition))
                        .collect()
                };
                members.push(GroupMember {
                    consumer_id: string(rdsys::rd_kafka_MemberDescription_consumer_id(m)),
                    client_id: string(rdsys::rd_kafka_MemberDescription_client_id(m)),
                    host: string(rdsys::rd_kafka_MemberDescription_host(m)),
                    group_instance_id: opt_string(
                        rdsys::rd_kafka_MemberDescription_group_instance_id(m),
                    ),
                    assignment,
                });
            }
            out.push(GroupDescription {
                group_id,
                state: group_state(rdsys::rd_kafka_ConsumerGroupDescription_state(d)),
                member_count,
                members,
                is_simple: rdsys::rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d)
                    != 0,
                partition_assignor: string(
                    rdsys::rd_kafka_ConsumerGroupDescription_partition_assignor(d),
                ),
                group_type: group_type(rdsys::rd_kafka_ConsumerGroupDescription_type(d)),
                coordinator: if coordinator.is_null() {
                    None
                } else {
                    Some(rdsys::rd_kafka_Node_id(coordinator))
                },
                error,
            });
        }
    }
    Ok(out)
}

pub(crate) fn list_consumer_group_offsets(
    native: &Arc<Native>,
    ctx: &Ctx,
    group: &str,
    only: Option<&[(&str, i32)]>,
) -> Result<Rx, AdminError> {
    let resource = Resource::Group(group.to_string());
    let group_c = cstring(ctx.op, &resource, group)?;
    let tpl = only
        .map(|ps| {
            partition_list(
                ctx.op,
                &resource,
                ps.iter().map(|(t, p)| (t.to_string(), *p, None)),
            )
        })
        .transpose()?;
    // SAFETY: valid C string; `tpl` is NULL (all partitions) or a valid list;
    // both are copied by librdkafka. The result is NULL or owned by us.
    let req = unsafe {
        ListGroupOffsets::from_raw(rdsys::rd_kafka_ListConsumerGroupOffsets_new(
            group_c.as_ptr(),
            tpl.as_ref().map_or(ptr::null(), |t| t.ptr() as *const _),
        ))
    }
    .ok_or_else(|| AdminError::Internal {
        op: ctx.op,
        message: "rd_kafka_ListConsumerGroupOffsets_new returned NULL".into(),
    })?;
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        let mut arr = [req.ptr()];
        // SAFETY: a one-element array of a valid object, as required;
        // librdkafka copies it.
        unsafe { rdsys::rd_kafka_ListConsumerGroupOffsets(rk, arr.as_mut_ptr(), 1, o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

/// Decodes the single group result of a group-offsets event.
///
/// # Safety
/// `groups`/`n` must come from a result owned by a live event.
unsafe fn single_group_result(
    ctx: &Ctx,
    group: &str,
    groups: &[*const rdsys::rd_kafka_group_result_t],
) -> Result<Vec<RawPartition>, AdminError> {
    let Some(&g) = groups.first() else {
        return Err(AdminError::Internal {
            op: ctx.op,
            message: format!("no result for group '{group}'"),
        });
    };
    // SAFETY: `g` valid per the contract.
    unsafe {
        if let Some(err) = error_object(rdsys::rd_kafka_group_result_error(g)) {
            return Err(ctx.fail(Resource::Group(group.to_string()), err));
        }
        Ok(partitions(rdsys::rd_kafka_group_result_partitions(g)))
    }
}

fn partition_failures(parts: &[RawPartition]) -> Vec<PartitionError> {
    parts
        .iter()
        .filter(|p| p.err != 0)
        .map(|p| {
            let (code, msg) = code_from_raw(p.err, None);
            PartitionError {
                topic: p.topic.clone(),
                partition: p.partition,
                code,
                message: msg.unwrap_or_else(|| describe(code)),
            }
        })
        .collect()
}

pub(crate) fn decode_list_consumer_group_offsets(
    ctx: &Ctx,
    ev: &Event,
    group: &str,
) -> Result<Vec<GroupOffset>, AdminError> {
    ctx.check(ev, || Resource::Group(group.to_string()))?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_ListConsumerGroupOffsets_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: `res` lives as long as `ev`.
    let parts = unsafe {
        let mut n = 0usize;
        let groups = array(
            rdsys::rd_kafka_ListConsumerGroupOffsets_result_groups(res, &mut n),
            n,
        );
        single_group_result(ctx, group, groups)?
    };
    let failures = partition_failures(&parts);
    if !failures.is_empty() {
        return Err(AdminError::Partitions {
            op: ctx.op,
            group: Some(group.to_string()),
            failures,
        });
    }
    Ok(parts
        .into_iter()
        .map(|p| GroupOffset {
            topic: p.topic,
            partition: p.partition,
            offset: (p.offset >= 0).then_some(p.offset),
            metadata: p.metadata,
        })
        .collect())
}

pub(crate) fn alter_consumer_group_offsets(
    native: &Arc<Native>,
    ctx: &Ctx,
    group: &str,
    offsets: &[(&str, i32, i64)],
) -> Result<Rx, AdminError> {
    let resource = Resource::Group(group.to_string());
    let group_c = cstring(ctx.op, &resource, group)?;
    if let Some((t, p, o)) = offsets.iter().find(|(_, _, o)| *o < 0) {
        return Err(AdminError::InvalidArgument {
            op: ctx.op,
            resource: Resource::GroupPartition {
                group: group.to_string(),
                topic: t.to_string(),
                partition: *p,
            },
            message: format!("negative offset {o}"),
        });
    }
    let tpl = partition_list(
        ctx.op,
        &resource,
        offsets
            .iter()
            .map(|(t, p, o)| (t.to_string(), *p, Some(*o))),
    )?;
    // SAFETY: valid C string and list (librdkafka asserts both non-NULL; they
    // are), both copied. The result is NULL or owned by us.
    let req = unsafe {
        AlterGroupOffsets::from_raw(rdsys::rd_kafka_AlterConsumerGroupOffsets_new(
            group_c.as_ptr(),
            tpl.ptr(),
        ))
    }
    .ok_or_else(|| AdminError::Internal {
        op: ctx.op,
        message: "rd_kafka_AlterConsumerGroupOffsets_new returned NULL".into(),
    })?;
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        let mut arr = [req.ptr()];
        // SAFETY: a one-element array of a valid object; copied.
        unsafe { rdsys::rd_kafka_AlterConsumerGroupOffsets(rk, arr.as_mut_ptr(), 1, o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

pub(crate) fn decode_alter_consumer_group_offsets(
    ctx: &Ctx,
    ev: &Event,
    group: &str,
) -> Result<(), AdminError> {
    let active = |code: ErrorCode, message: Option<String>| AdminError::GroupNotEmpty {
        op: ctx.op,
        group: group.to_string(),
        code,
        message: message.unwrap_or_else(|| describe(code)),
    };
    if let Some((code, msg)) = ev.error() {
        if means_group_active(code) {
            return Err(active(code, msg));
        }
        return Err(ctx.fail(Resource::Group(group.to_string()), (code, msg)));
    }
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_AlterConsumerGroupOffsets_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: `res` lives as long as `ev`.
    let parts = unsafe {
        let mut n = 0usize;
        let groups = array(
            rdsys::rd_kafka_AlterConsumerGroupOffsets_result_groups(res, &mut n),
            n,
        );
        match single_group_result(ctx, group, groups) {
            Err(AdminError::Broker { code, message, .. }) if means_group_active(code) => {
                return Err(active(code, Some(message)))
            }
            other => other?,
        }
    };
    let failures = partition_failures(&parts);
    if let Some(f) = failures.iter().find(|f| means_group_active(f.code)) {
        return Err(active(
            f.code,
            Some(format!(
                "{} (partition {}/{})",
                f.message, f.topic, f.partition
            )),
        ));
    }
    if !failures.is_empty() {
        return Err(AdminError::Partitions {
            op: ctx.op,
            group: Some(group.to_string()),
            failures,
        });
    }
    Ok(())
}

fn topic_config_resource(
    ctx: &Ctx,
    resource: &Resource,
    topic: &str,
) -> Result<ConfigResource, AdminError> {
    let name = cstring(ctx.op, resource, topic)?;
    // SAFETY: valid C string (copied by librdkafka); result NULL or owned.
    unsafe {
        ConfigResource::from_raw(rdsys::rd_kafka_ConfigResource_new(
            rdsys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            name.as_ptr(),
        ))
    }
    .ok_or_else(|| AdminError::Internal {
        op: ctx.op,
        message: "rd_kafka_ConfigResource_new returned NULL".into(),
    })
}

pub(crate) fn incremental_alter_configs(
    native: &Arc<Native>,
    ctx: &Ctx,
    topic: &str,
    changes: &[ConfigChange],
) -> Result<Rx, AdminError> {
    use rdsys::rd_kafka_AlterConfigOpType_t::*;
    let resource = Resource::TopicConfig {
        topic: topic.to_string(),
        keys: changes.iter().map(|c| c.key.clone()).collect(),
    };
    let res = topic_config_resource(ctx, &resource, topic)?;
    for change in changes {
        let key_resource = Resource::TopicConfig {
            topic: topic.to_string(),
            keys: vec![change.key.clone()],
        };
        let key = cstring(ctx.op, &key_resource, &change.key)?;
        let (op, value) = match &change.op {
            ConfigOp::Set(v) => (RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET, Some(v)),
            ConfigOp::Delete => (RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, None),
            ConfigOp::Append(v) => (RD_KAFKA_ALTER_CONFIG_OP_TYPE_APPEND, Some(v)),
            ConfigOp::Subtract(v) => (RD_KAFKA_ALTER_CONFIG_OP_TYPE_SUBTRACT, Some(v)),
        };
        let value = value
            .map(|v| cstring(ctx.op, &key_resource, v))
            .transpose()?;
        // SAFETY: valid resource and C strings (copied); the returned error,
        // if any, is ours to destroy (`OwnedError`).
        let err = unsafe {
            OwnedError::from_raw(rdsys::rd_kafka_ConfigResource_add_incremental_config(
                res.ptr(),
                key.as_ptr(),
                op,
                value.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
            ))
        };
        if let Some(err) = err {
            // SAFETY: valid error object, alive until `err` drops.
            let (_, msg) = unsafe { error_object(err.ptr()) }.unwrap_or((ErrorCode::Fail, None));
            return Err(AdminError::InvalidArgument {
                op: ctx.op,
                resource: key_resource,
                message: msg.unwrap_or_else(|| "rejected by librdkafka".into()),
            });
        }
    }
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        let mut arr = [res.ptr()];
        // SAFETY: one valid resource; copied by librdkafka.
        unsafe { rdsys::rd_kafka_IncrementalAlterConfigs(rk, arr.as_mut_ptr(), 1, o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

/// Checks the per-resource errors of a config result.
///
/// # Safety
/// `resources` must come from a result owned by a live event.
unsafe fn config_resource_errors(
    ctx: &Ctx,
    resources: &[*const rd_kafka_ConfigResource_t],
    resource: impl Fn(&str) -> Resource,
) -> Result<(), AdminError> {
    for &r in resources {
        // SAFETY: valid per the contract.
        unsafe {
            let raw = raw::rd_kafka_ConfigResource_error(r);
            if raw != 0 {
                let name = string(rdsys::rd_kafka_ConfigResource_name(r));
                let msg = opt_string(rdsys::rd_kafka_ConfigResource_error_string(r));
                return Err(ctx.fail(resource(&name), code_from_raw(raw, msg)));
            }
        }
    }
    Ok(())
}

pub(crate) fn decode_incremental_alter_configs(
    ctx: &Ctx,
    ev: &Event,
    topic: &str,
    changes: &[ConfigChange],
) -> Result<(), AdminError> {
    let resource = |t: &str| Resource::TopicConfig {
        topic: t.to_string(),
        keys: changes.iter().map(|c| c.key.clone()).collect(),
    };
    ctx.check(ev, || resource(topic))?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_IncrementalAlterConfigs_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: `res` lives as long as `ev`.
    unsafe {
        let mut n = 0usize;
        let resources = array(
            rdsys::rd_kafka_IncrementalAlterConfigs_result_resources(res, &mut n),
            n,
        );
        config_resource_errors(ctx, resources, resource)
    }
}

pub(crate) fn describe_topic_configs(
    native: &Arc<Native>,
    ctx: &Ctx,
    topic: &str,
) -> Result<Rx, AdminError> {
    let res = topic_config_resource(ctx, &Resource::Topic(topic.to_string()), topic)?;
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        let mut arr = [res.ptr()];
        // SAFETY: one valid resource; copied by librdkafka.
        unsafe { rdsys::rd_kafka_DescribeConfigs(rk, arr.as_mut_ptr(), 1, o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers
    // it is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

pub(crate) fn decode_describe_topic_configs(
    ctx: &Ctx,
    ev: &Event,
    topic: &str,
) -> Result<Vec<ConfigEntry>, AdminError> {
    ctx.check(ev, || Resource::Topic(topic.to_string()))?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_DescribeConfigs_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: everything read lives as long as `ev` and is copied out.
    unsafe {
        let mut n = 0usize;
        let resources = array(
            rdsys::rd_kafka_DescribeConfigs_result_resources(res, &mut n),
            n,
        );
        config_resource_errors(ctx, resources, |t| Resource::Topic(t.to_string()))?;
        let Some(&r) = resources.first() else {
            return Err(AdminError::Internal {
                op: ctx.op,
                message: format!("no result for topic '{topic}'"),
            });
        };
        let mut n = 0usize;
        let entries = array(rdsys::rd_kafka_ConfigResource_configs(r, &mut n), n);
        Ok(entries
            .iter()
            .map(|&e| ConfigEntry {
                name: string(rdsys::rd_kafka_ConfigEntry_name(e)),
                value: opt_string(rdsys::rd_kafka_ConfigEntry_value(e)),
                is_default: rdsys::rd_kafka_ConfigEntry_is_default(e) == 1,
                is_sensitive: rdsys::rd_kafka_ConfigEntry_is_sensitive(e) == 1,
                is_read_only: rdsys::rd_kafka_ConfigEntry_is_read_only(e) == 1,
                source: config_source(raw::rd_kafka_ConfigEntry_source(e)),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_do_not_become_enum_values() {
        let (code, msg) = code_from_raw(30_000, Some("x".into()));
        assert_eq!(code, ErrorCode::Unknown);
        assert!(msg.unwrap().contains("30000"));
        let (code, msg) = code_from_raw(36, None);
        assert_eq!(code, ErrorCode::TopicAlreadyExists);
        assert!(msg.is_none());
    }

    #[test]
    fn partition_list_rejects_bad_input() {
        let r = Resource::Group("g".into());
        assert!(matches!(
            partition_list("op", &r, [("a\0b".to_string(), 0, None)]),
            Err(AdminError::InvalidArgument { .. })
        ));
        assert!(matches!(
            partition_list("op", &r, [("a".to_string(), -1, None)]),
            Err(AdminError::InvalidArgument { .. })
        ));
        assert!(matches!(
            partition_list(
                "op",
                &r,
                [("a".to_string(), 1, None), ("a".to_string(), 1, None)]
            ),
            Err(AdminError::InvalidArgument { .. })
        ));
        let tpl = partition_list("op", &r, [("a".to_string(), 2, Some(7))]).unwrap();
        // SAFETY: a valid list owned by `tpl`.
        let parts = unsafe { partitions(tpl.ptr()) };
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].topic.as_str(), parts[0].partition), ("a", 2));
        assert_eq!(parts[0].offset, 7);
        assert_eq!(parts[0].err, 0);
    }
}
