//! The only module that calls librdkafka through `rdkafka-sys`.
//!
//! # Ownership model
//!
//! * [`Native`] owns two librdkafka handles: the safe rdkafka [`AdminClient`]
//!   for the calls rust-rdkafka wraps, and a [`RequestHandle`] for the
//!   `rdkafka-sys` admin requests. The request handle owns the result queue,
//!   made from its own `rd_kafka_t` with `rd_kafka_queue_new`: librdkafka
//!   takes no reference on the handle for the queue, and requires every
//!   queue (and event) of a handle to be destroyed before the handle is
//!   closed or destroyed. So the queue and its handle live in one value whose
//!   `Drop` destroys the queue before the handle's own drop closes and
//!   destroys the `rd_kafka_t`; no other field order matters.
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
//! * An [`Event`] owns its `rd_kafka_event_t` and an `Arc<Native>` (so the
//!   event is destroyed before its queue and handle). Arrays read out of a
//!   result borrow the event ([`Event::array`]), and every value is copied
//!   into owned Rust types before the event is dropped.
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
//!
//! # Layout
//!
//! * this file: the handles, the result queue, its poll thread and [`Event`];
//! * `args`: RAII owners of request arguments, and argument checks;
//! * `read`: copying librdkafka memory (strings, arrays, partition lists,
//!   error objects) into owned values, and the decoding context [`Ctx`];
//! * `groups`, `configs`, `acls`: one request builder and one result decoder
//!   per admin call.

// The one module allowed to use `unsafe` (denied crate-wide in Cargo.toml).
#![allow(unsafe_code)]

mod acls;
mod args;
mod configs;
mod groups;
mod read;

pub(crate) use acls::{
    check_acl, create_acls, decode_create_acls, decode_delete_acls, decode_describe_acls,
    delete_acls, describe_acls,
};
pub(crate) use args::partition_list;
use args::Options;
pub(crate) use configs::{
    decode_describe_topic_configs, decode_incremental_alter_configs, describe_topic_configs,
    incremental_alter_configs,
};
pub(crate) use groups::{
    alter_consumer_group_offsets, decode_alter_consumer_group_offsets,
    decode_describe_consumer_groups, decode_list_consumer_group_offsets,
    decode_list_consumer_groups, describe_consumer_groups, list_consumer_group_offsets,
    list_consumer_groups,
};
pub(crate) use read::Ctx;
use read::{code_from_raw, opt_string};

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Clients whose poll thread has not finished destroying their handles.
static LIVE_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// Waits (blocking) until every client's handles are destroyed, at most
/// `timeout`; true if they are. A process that exits while a poll thread is
/// still inside `rd_kafka_destroy` can crash in librdkafka's teardown, so a
/// short-lived command calls this before it returns.
pub fn wait_for_teardown(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while LIVE_CLIENTS.load(Ordering::Acquire) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

// ---------------------------------------------------------------------------
// Native client + result queue + poll thread
// ---------------------------------------------------------------------------

pub(crate) struct Native {
    /// The safe admin client, for the calls rust-rdkafka wraps.
    pub(crate) client: AdminClient<DefaultClientContext>,
    /// The handle and result queue of the `rdkafka-sys` admin calls.
    requests: RequestHandle,
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

/// The `rd_kafka_t` every `rdkafka-sys` request goes through, and the queue
/// their results arrive on.
///
/// The handle is a consumer-type handle with a group id that never subscribes
/// or commits: librdkafka 2.12 dereferences the handle's consumer-group state
/// when a group request is answered NOT_COORDINATOR (coordinator moved),
/// which is NULL on an admin (producer-type) handle and crashes the process.
struct RequestHandle {
    /// Made from `consumer`'s `rd_kafka_t`; destroyed in `Drop`, which runs
    /// before `consumer` is dropped (closed and destroyed).
    queue: NonNull<rd_kafka_queue_t>,
    consumer: BaseConsumer,
}

// SAFETY: `queue` is only used through librdkafka functions that are
// thread-safe (librdkafka queues are internally locked: `rd_kafka_queue_poll`
// from the poll thread, and passing it as the reply queue of admin calls from
// any thread). `consumer` is `Send + Sync` already.
unsafe impl Send for RequestHandle {}
// SAFETY: as above.
unsafe impl Sync for RequestHandle {}

impl RequestHandle {
    fn new(consumer: BaseConsumer) -> Result<RequestHandle, AdminError> {
        // SAFETY: `consumer`'s `rd_kafka_t` is valid while `consumer` lives;
        // the queue is stored next to it, in the value whose `Drop` destroys
        // the queue before the consumer is dropped.
        let queue = unsafe { rdsys::rd_kafka_queue_new(Consumer::client(&consumer).native_ptr()) };
        let queue = NonNull::new(queue).ok_or_else(|| AdminError::Internal {
            op: "Admin::new",
            message: "rd_kafka_queue_new returned NULL".into(),
        })?;
        Ok(RequestHandle { queue, consumer })
    }

    fn rk(&self) -> *mut rd_kafka_t {
        Consumer::client(&self.consumer).native_ptr()
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        // SAFETY: `queue` came from `rd_kafka_queue_new` on `consumer`'s
        // handle and is destroyed only here, once. That handle is still
        // alive: fields are dropped after this function returns, so the
        // consumer is closed and destroyed after its queue, as librdkafka
        // requires. No request or event can still use the queue: each pending
        // request and each event holds an `Arc<Native>`, and the
        // `RequestHandle` drops only with the last one.
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
        let requests = RequestHandle::new(
            consumer_config
                .clone()
                .set("group.id", "ferry-admin")
                .create()
                .map_err(AdminError::Client)?,
        )?;
        let native = Arc::new(Native {
            client,
            requests,
            consumer_config,
            consumer: OnceLock::new(),
            token_source,
        });
        let for_thread = Arc::clone(&native);
        LIVE_CLIENTS.fetch_add(1, Ordering::AcqRel);
        std::thread::Builder::new()
            .name("ferry-admin".into())
            .spawn(move || {
                poll_loop(for_thread);
                LIVE_CLIENTS.fetch_sub(1, Ordering::AcqRel);
            })
            // No thread: the client is destroyed right here, with `native`.
            .inspect_err(|_| {
                LIVE_CLIENTS.fetch_sub(1, Ordering::AcqRel);
            })
            .map_err(|e| AdminError::Internal {
                op: "Admin::new",
                message: format!("spawning the admin poll thread failed: {e}"),
            })?;
        Ok(native)
    }

    fn rk(&self) -> *mut rd_kafka_t {
        self.requests.rk()
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
        call(self.rk(), opts.ptr(), self.requests.queue.as_ptr());
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
        let _ = native.requests.consumer.poll(Duration::ZERO);
        // SAFETY: the queue is valid while `native` is alive, and we hold it.
        let ev =
            unsafe { rdsys::rd_kafka_queue_poll(native.requests.queue.as_ptr(), POLL_INTERVAL_MS) };
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
    tracing::trace!("ferry-admin poll thread exiting; destroying the handles");
    drop(native);
}

/// Where a request's result event arrives.
pub(crate) type Rx = oneshot::Receiver<Event>;

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
        // SAFETY: we own the event; destroyed once, here. The queue and
        // handle it came from are alive (`_native` is dropped after this).
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

    /// Views a librdkafka `(T **array, size_t cnt)` result of this event as a
    /// slice that cannot outlive the event. `get` is the accessor, called
    /// once with the count to fill in, e.g.
    /// `|n| rd_kafka_DescribeConfigs_result_resources(res, n)`.
    ///
    /// # Safety
    /// `get` must return NULL or an array of at least as many valid pointers
    /// as it writes to its argument, owned by this event's result (directly
    /// or through an object the result owns).
    unsafe fn array<T>(&self, get: impl FnOnce(&mut usize) -> *mut *const T) -> &[*const T] {
        let mut n = 0usize;
        let arr = get(&mut n);
        if arr.is_null() || n == 0 {
            &[]
        } else {
            // SAFETY: per the contract, `arr` holds `n` pointers that live as
            // long as the event, which the returned borrow cannot outlive.
            unsafe { std::slice::from_raw_parts(arr.cast_const(), n) }
        }
    }
}

#[cfg(test)]
mod tests;

/// The member id a group consumer got from its coordinator; `None` before
/// it joined. librdkafka's C API is the only place it is exposed.
pub fn member_id<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
) -> Option<String> {
    let native = client.native_ptr();
    // SAFETY: `native` is a live client handle for the borrow of `client`;
    // librdkafka returns a copy of the member id that the caller owns and
    // frees with `rd_kafka_mem_free`, done below once the bytes are copied.
    unsafe {
        let raw = rdsys::rd_kafka_memberid(native);
        if raw.is_null() {
            return None;
        }
        let id = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
        rdsys::rd_kafka_mem_free(native, raw.cast());
        (!id.is_empty()).then_some(id)
    }
}
