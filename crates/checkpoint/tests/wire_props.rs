//! Property tests for the MM2 record codecs and the sync-link header.

use ferry_checkpoint::wire::{
    decode_sync_link, encode_sync_link, Checkpoint, DecodeError, Heartbeat, OffsetSync,
    MAX_STRING_LEN,
};
use ferry_checkpoint::{OffsetPair, SyncLink};
use proptest::prelude::*;

/// Strings of any Unicode, kept short so cases stay fast; the length limit
/// has its own test.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9._-]{1,40}",
        any::<String>().prop_map(|s| s.chars().take(60).collect()),
    ]
}

fn offset_sync() -> impl Strategy<Value = OffsetSync> {
    (name(), any::<i32>(), any::<i64>(), any::<i64>()).prop_map(|(topic, partition, u, d)| {
        OffsetSync {
            topic,
            partition,
            upstream_offset: u,
            downstream_offset: d,
        }
    })
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        name(),
        name(),
        any::<i32>(),
        any::<i64>(),
        any::<i64>(),
        name(),
    )
        .prop_map(|(group, topic, partition, u, d, metadata)| Checkpoint {
            group,
            topic,
            partition,
            upstream_offset: u,
            downstream_offset: d,
            metadata,
        })
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (name(), name(), any::<i64>()).prop_map(|(source_alias, target_alias, timestamp_ms)| {
        Heartbeat {
            source_alias,
            target_alias,
            timestamp_ms,
        }
    })
}

fn pair() -> impl Strategy<Value = OffsetPair> {
    (any::<i64>(), any::<i64>()).prop_map(|(u, d)| OffsetPair::new(u, d))
}

fn link() -> impl Strategy<Value = SyncLink> {
    prop_oneof![
        Just(SyncLink::ChainStart),
        pair().prop_map(|prev| SyncLink::Continues { prev }),
        (pair(), any::<i64>())
            .prop_map(|(prev, prev_run_end)| SyncLink::NewRun { prev, prev_run_end }),
    ]
}

/// Every proper prefix of `bytes` fails to decode as truncated.
fn assert_prefixes_truncated(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<(), DecodeError>,
) -> Result<(), TestCaseError> {
    for cut in 0..bytes.len() {
        let res = decode(&bytes[..cut]);
        prop_assert!(
            matches!(res, Err(DecodeError::Truncated { .. })),
            "prefix {cut}/{}: {res:?}",
            bytes.len()
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn offset_sync_round_trips(rec in offset_sync()) {
        let key = rec.encode_key().unwrap();
        let value = rec.encode_value();
        prop_assert_eq!(key.len(), 2 + rec.topic.len() + 4);
        prop_assert_eq!(OffsetSync::decode(&key, &value).unwrap(), rec);
    }

    #[test]
    fn checkpoint_round_trips(rec in checkpoint()) {
        let key = rec.encode_key().unwrap();
        let value = rec.encode_value().unwrap();
        prop_assert_eq!(Checkpoint::value_version(&value), Ok(0));
        prop_assert_eq!(Checkpoint::decode(&key, &value).unwrap(), rec);
    }

    #[test]
    fn heartbeat_round_trips(rec in heartbeat()) {
        let key = rec.encode_key().unwrap();
        let value = rec.encode_value();
        prop_assert_eq!(Heartbeat::decode(&key, &value).unwrap(), rec);
    }

    #[test]
    fn sync_link_round_trips(link in link()) {
        let bytes = encode_sync_link(&link).unwrap();
        prop_assert_eq!(decode_sync_link(Some(&bytes)).unwrap(), link);
        assert_prefixes_truncated(&bytes, |b| decode_sync_link(Some(b)).map(drop))?;
    }

    #[test]
    fn truncated_records_are_rejected(
        sync in offset_sync(), ckpt in checkpoint(), hb in heartbeat()
    ) {
        let (k, v) = (sync.encode_key().unwrap(), sync.encode_value());
        assert_prefixes_truncated(&k, |b| OffsetSync::decode(b, &v).map(drop))?;
        assert_prefixes_truncated(&v, |b| OffsetSync::decode(&k, b).map(drop))?;

        let (k, v) = (ckpt.encode_key().unwrap(), ckpt.encode_value().unwrap());
        assert_prefixes_truncated(&k, |b| Checkpoint::decode(b, &v).map(drop))?;
        assert_prefixes_truncated(&v, |b| Checkpoint::decode(&k, b).map(drop))?;

        let (k, v) = (hb.encode_key().unwrap(), hb.encode_value());
        assert_prefixes_truncated(&k, |b| Heartbeat::decode(b, &v).map(drop))?;
        assert_prefixes_truncated(&v, |b| Heartbeat::decode(&k, b).map(drop))?;
    }

    /// Arbitrary bytes never panic, and whatever decodes at version 0
    /// re-encodes to exactly the same bytes (the formats are canonical).
    #[test]
    fn garbage_never_panics_and_v0_is_canonical(
        key in proptest::collection::vec(any::<u8>(), 0..48),
        value in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        if let Ok(rec) = OffsetSync::decode(&key, &value) {
            prop_assert_eq!(rec.encode_key().unwrap(), key.clone());
            prop_assert_eq!(rec.encode_value().to_vec(), value.clone());
        }
        if let Ok(rec) = Checkpoint::decode(&key, &value) {
            prop_assert_eq!(rec.encode_key().unwrap(), key.clone());
            if Checkpoint::value_version(&value) == Ok(0) {
                prop_assert_eq!(rec.encode_value().unwrap(), value.clone());
            }
        }
        if let Ok(rec) = Heartbeat::decode(&key, &value) {
            prop_assert_eq!(rec.encode_key().unwrap(), key.clone());
            if Heartbeat::value_version(&value) == Ok(0) {
                prop_assert_eq!(rec.encode_value().to_vec(), value.clone());
            }
        }
        if let Ok(link) = decode_sync_link(Some(&value)) {
            prop_assert_eq!(encode_sync_link(&link).unwrap(), value.clone());
        }
    }

    /// Structured garbage: a valid length prefix with arbitrary body bytes.
    #[test]
    fn string_bodies_are_validated(body in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut key = (body.len() as i16).to_be_bytes().to_vec();
        key.extend_from_slice(&body);
        key.extend_from_slice(&7i32.to_be_bytes());
        let value = [0u8; 16];
        match (std::str::from_utf8(&body), OffsetSync::decode(&key, &value)) {
            (Ok(s), Ok(rec)) => prop_assert_eq!(rec.topic, s),
            (Err(_), Err(DecodeError::InvalidUtf8 { .. })) => {}
            (utf8, res) => prop_assert!(false, "utf8={utf8:?} decode={res:?}"),
        }
    }

    #[test]
    fn overlong_strings_do_not_encode(extra in 1usize..64) {
        let rec = Heartbeat {
            source_alias: "x".repeat(MAX_STRING_LEN + extra),
            target_alias: String::new(),
            timestamp_ms: 0,
        };
        prop_assert!(rec.encode_key().is_err());
    }
}
