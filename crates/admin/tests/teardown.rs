//! The client is torn down when the last handle *and* the last in-flight
//! request are gone, and not before. Alone in its test binary so that no
//! other test's threads are counted.

use std::time::{Duration, Instant};

use ferry_admin::{Admin, ClientConfig};

/// Name of the admin poll thread.
const POLL: &str = "ferry-admin";

/// Names of this process's threads whose name starts with `prefix`.
fn threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

async fn wait_until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_lives_until_the_last_handle_and_request_are_gone() {
    assert_eq!(threads(POLL), 0);
    let mut config = ClientConfig::new();
    // Nothing listens there, so requests stay in flight until they time out.
    config.set("bootstrap.servers", "127.0.0.1:9");
    let admin = Admin::with_timeout(&config, Duration::from_secs(2)).unwrap();
    wait_until("poll thread started", Duration::from_secs(5), || {
        threads(POLL) == 1
    })
    .await;
    assert!(threads("rdk:") > 0);

    // Abandon an in-flight request, then drop the only handle.
    let started = Instant::now();
    let abandoned = tokio::time::timeout(Duration::from_millis(50), admin.list_consumer_groups());
    assert!(abandoned.await.is_err(), "should still be in flight");
    drop(admin);

    // The abandoned request keeps the client (and its poll thread) alive
    // until librdkafka delivers its (timed-out) result...
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(threads(POLL), 1, "torn down under a pending request");

    // ...and then everything goes away: poll thread and librdkafka threads.
    wait_until("poll thread gone", Duration::from_secs(10), || {
        threads(POLL) == 0
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    wait_until("librdkafka threads gone", Duration::from_secs(10), || {
        threads("rdk:") == 0
    })
    .await;
}
