use super::*;

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// Golden vectors from shared/reference/mm2-wire-format.md.
const SYNC_KEY: &str = "00066f726465727300000003";
const SYNC_VALUE: &str = "000000000000002a0000000000000028";
const CKPT_KEY: &str = "00026731000a7372632e6f726465727300000003";
const CKPT_VALUE: &str = "0000000000000000002a00000000000000280000";
const HB_KEY: &str = "00037372630003647374";
const HB_VALUE: &str = "00000000018bcfe56800";

fn golden_sync() -> OffsetSync {
    OffsetSync {
        topic: "orders".into(),
        partition: 3,
        upstream_offset: 42,
        downstream_offset: 40,
    }
}

fn golden_checkpoint() -> Checkpoint {
    Checkpoint {
        group: "g1".into(),
        topic: "src.orders".into(),
        partition: 3,
        upstream_offset: 42,
        downstream_offset: 40,
        metadata: String::new(),
    }
}

fn golden_heartbeat() -> Heartbeat {
    Heartbeat {
        source_alias: "src".into(),
        target_alias: "dst".into(),
        timestamp_ms: 1_700_000_000_000,
    }
}

#[test]
fn golden_offset_sync_key() {
    assert_eq!(golden_sync().encode_key().unwrap(), hex(SYNC_KEY));
}

#[test]
fn golden_offset_sync_value() {
    assert_eq!(golden_sync().encode_value().to_vec(), hex(SYNC_VALUE));
}

#[test]
fn golden_checkpoint_key() {
    assert_eq!(golden_checkpoint().encode_key().unwrap(), hex(CKPT_KEY));
}

#[test]
fn golden_checkpoint_value() {
    assert_eq!(golden_checkpoint().encode_value().unwrap(), hex(CKPT_VALUE));
}

#[test]
fn golden_heartbeat_key() {
    assert_eq!(golden_heartbeat().encode_key().unwrap(), hex(HB_KEY));
}

#[test]
fn golden_heartbeat_value() {
    assert_eq!(golden_heartbeat().encode_value().to_vec(), hex(HB_VALUE));
}

#[test]
fn golden_vectors_decode() {
    assert_eq!(
        OffsetSync::decode(&hex(SYNC_KEY), &hex(SYNC_VALUE)).unwrap(),
        golden_sync()
    );
    assert_eq!(
        Checkpoint::decode(&hex(CKPT_KEY), &hex(CKPT_VALUE)).unwrap(),
        golden_checkpoint()
    );
    assert_eq!(
        Heartbeat::decode(&hex(HB_KEY), &hex(HB_VALUE)).unwrap(),
        golden_heartbeat()
    );
    assert_eq!(Checkpoint::value_version(&hex(CKPT_VALUE)), Ok(0));
    assert_eq!(Heartbeat::value_version(&hex(HB_VALUE)), Ok(0));
}

#[test]
fn topic_names() {
    assert_eq!(
        offset_syncs_topic("dst", "."),
        "mm2-offset-syncs.dst.internal"
    );
    assert_eq!(
        offset_syncs_topic("dst", "_"),
        "mm2-offset-syncs_dst_internal"
    );
    assert_eq!(checkpoints_topic("src", "."), "src.checkpoints.internal");
    assert_eq!(checkpoints_topic("src", "_"), "src_checkpoints_internal");
    assert_eq!(HEARTBEATS_TOPIC, "heartbeats");
}

/// Every proper prefix of every golden part is rejected as truncated.
#[test]
fn every_truncation_of_golden_vectors_is_rejected() {
    type Decode = fn(&[u8], &[u8]) -> Result<(), DecodeError>;
    let cases: [(&str, &str, Decode); 3] = [
        (SYNC_KEY, SYNC_VALUE, |k, v| {
            OffsetSync::decode(k, v).map(drop)
        }),
        (CKPT_KEY, CKPT_VALUE, |k, v| {
            Checkpoint::decode(k, v).map(drop)
        }),
        (HB_KEY, HB_VALUE, |k, v| Heartbeat::decode(k, v).map(drop)),
    ];
    for (key, value, decode) in cases {
        let (key, value) = (hex(key), hex(value));
        for cut in 0..key.len() {
            let err = decode(&key[..cut], &value).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { at, .. } if at.part == Part::Key),
                "key cut at {cut}: {err}"
            );
        }
        for cut in 0..value.len() {
            let err = decode(&key, &value[..cut]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { at, .. } if at.part == Part::Value),
                "value cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn truncation_error_names_the_field() {
    let value = hex(CKPT_VALUE);
    // version (2) + upstreamOffset (8) + 3 bytes of offset.
    let err = Checkpoint::decode(&hex(CKPT_KEY), &value[..13]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            at: field(RecordKind::Checkpoint, Part::Value, "offset"),
            needed: 8,
            available: 3,
        }
    );
    assert_eq!(
        err.to_string(),
        "Checkpoint value field `offset`: truncated, needs 8 bytes but only 3 remain"
    );
    // String body shorter than its length prefix.
    let key = hex(SYNC_KEY);
    let err = OffsetSync::decode(&key[..5], &hex(SYNC_VALUE)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            at: field(RecordKind::OffsetSync, Part::Key, "topic"),
            needed: 6,
            available: 3,
        }
    );
}

#[test]
fn trailing_bytes_rejected_in_keys_and_v0_values() {
    let mut key = hex(SYNC_KEY);
    key.push(0);
    assert_eq!(
        OffsetSync::decode(&key, &hex(SYNC_VALUE)),
        Err(DecodeError::TrailingBytes {
            record: RecordKind::OffsetSync,
            part: Part::Key,
            count: 1
        })
    );
    let mut value = hex(SYNC_VALUE);
    value.extend_from_slice(&[1, 2]);
    assert!(matches!(
        OffsetSync::decode(&hex(SYNC_KEY), &value),
        Err(DecodeError::TrailingBytes {
            part: Part::Value,
            count: 2,
            ..
        })
    ));
    let mut value = hex(CKPT_VALUE);
    value.push(9);
    assert!(matches!(
        Checkpoint::decode(&hex(CKPT_KEY), &value),
        Err(DecodeError::TrailingBytes {
            part: Part::Value,
            count: 1,
            ..
        })
    ));
    let mut value = hex(HB_VALUE);
    value.push(9);
    assert!(matches!(
        Heartbeat::decode(&hex(HB_KEY), &value),
        Err(DecodeError::TrailingBytes {
            part: Part::Value,
            count: 1,
            ..
        })
    ));
}

#[test]
fn higher_version_reads_v0_prefix_like_mm2() {
    // Version 1 with an appended (unknown) field: read as v0, rest ignored.
    let mut value = hex(CKPT_VALUE);
    value[..2].copy_from_slice(&1i16.to_be_bytes());
    value.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        Checkpoint::decode(&hex(CKPT_KEY), &value).unwrap(),
        golden_checkpoint()
    );
    assert_eq!(Checkpoint::value_version(&value), Ok(1));

    let mut value = hex(HB_VALUE);
    value[..2].copy_from_slice(&7i16.to_be_bytes());
    value.push(0xff);
    assert_eq!(
        Heartbeat::decode(&hex(HB_KEY), &value).unwrap(),
        golden_heartbeat()
    );

    // A higher version must still carry the whole v0 prefix.
    let mut value = hex(HB_VALUE);
    value[..2].copy_from_slice(&2i16.to_be_bytes());
    value.pop();
    assert!(matches!(
        Heartbeat::decode(&hex(HB_KEY), &value),
        Err(DecodeError::Truncated { at, .. }) if at.field == "timestamp"
    ));
}

#[test]
fn negative_version_rejected() {
    let mut value = hex(CKPT_VALUE);
    value[..2].copy_from_slice(&(-1i16).to_be_bytes());
    assert_eq!(
        Checkpoint::decode(&hex(CKPT_KEY), &value),
        Err(DecodeError::UnsupportedVersion {
            at: field(RecordKind::Checkpoint, Part::Value, "version"),
            version: -1
        })
    );
    let mut value = hex(HB_VALUE);
    value[..2].copy_from_slice(&i16::MIN.to_be_bytes());
    assert!(matches!(
        Heartbeat::decode(&hex(HB_KEY), &value),
        Err(DecodeError::UnsupportedVersion {
            version: i16::MIN,
            ..
        })
    ));
    assert!(Heartbeat::value_version(&value).is_err());
}

#[test]
fn negative_string_length_rejected() {
    // Kafka STRING has no null form: -1 is garbage here.
    let key = [0xff, 0xff, 0, 0, 0, 3];
    assert_eq!(
        OffsetSync::decode(&key, &hex(SYNC_VALUE)),
        Err(DecodeError::NegativeStringLength {
            at: field(RecordKind::OffsetSync, Part::Key, "topic"),
            len: -1
        })
    );
}

#[test]
fn invalid_utf8_rejected() {
    let key = [0, 2, 0xc3, 0x28, 0, 0, 0, 1];
    let err = OffsetSync::decode(&key, &hex(SYNC_VALUE)).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidUtf8 { at, .. } if at.field == "topic"));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn string_length_limit() {
    let mut ckpt = golden_checkpoint();
    ckpt.metadata = "m".repeat(MAX_STRING_LEN);
    let value = ckpt.encode_value().unwrap();
    assert_eq!(value.len(), 2 + 8 + 8 + 2 + MAX_STRING_LEN);
    assert_eq!(
        Checkpoint::decode(&ckpt.encode_key().unwrap(), &value).unwrap(),
        ckpt
    );

    ckpt.metadata.push('m');
    assert_eq!(
        ckpt.encode_value(),
        Err(EncodeError::StringTooLong {
            at: field(RecordKind::Checkpoint, Part::Value, "metadata"),
            len: MAX_STRING_LEN + 1
        })
    );
    ckpt.group = "g".repeat(MAX_STRING_LEN + 1);
    assert!(matches!(
        ckpt.encode_key(),
        Err(EncodeError::StringTooLong { at, .. }) if at.field == "group"
    ));
    let sync = OffsetSync {
        topic: "t".repeat(40_000),
        ..golden_sync()
    };
    assert!(sync.encode_key().is_err());
    let hb = Heartbeat {
        target_alias: "é".repeat(20_000), // 40 000 bytes: the limit is in bytes
        ..golden_heartbeat()
    };
    assert!(matches!(
        hb.encode_key(),
        Err(EncodeError::StringTooLong { len: 40_000, .. })
    ));
}

#[test]
fn empty_input_is_truncated_not_panic() {
    assert!(matches!(
        OffsetSync::decode(&[], &[]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        Checkpoint::decode(&[], &[]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        Heartbeat::decode(&[], &[]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn sync_link_header_layout() {
    assert_eq!(encode_sync_link(&SyncLink::Foreign), None);
    assert_eq!(decode_sync_link(None), Ok(SyncLink::Foreign));
    assert_eq!(
        encode_sync_link(&SyncLink::ChainStart).unwrap(),
        hex("000000")
    );
    let link = SyncLink::NewRun {
        prev: OffsetPair::new(42, 40),
        prev_run_end: 50,
    };
    let bytes = encode_sync_link(&link).unwrap();
    assert_eq!(
        bytes,
        hex("000002000000000000002a00000000000000280000000000000032")
    );
    assert_eq!(decode_sync_link(Some(&bytes)), Ok(link));
    let link = SyncLink::Continues {
        prev: OffsetPair::new(7, 9),
    };
    let bytes = encode_sync_link(&link).unwrap();
    assert_eq!(bytes.len(), 19);
    assert_eq!(decode_sync_link(Some(&bytes)), Ok(link));
}

#[test]
fn sync_link_header_rejects_garbage() {
    assert!(matches!(
        decode_sync_link(Some(&hex("000103"))),
        Err(DecodeError::UnsupportedVersion { version: 1, .. })
    ));
    assert!(matches!(
        decode_sync_link(Some(&hex("000007"))),
        Err(DecodeError::UnknownKind { value: 7, .. })
    ));
    assert!(matches!(
        decode_sync_link(Some(&hex("00000000"))),
        Err(DecodeError::TrailingBytes {
            part: Part::Header,
            ..
        })
    ));
    assert!(matches!(
        decode_sync_link(Some(&hex("00000200"))),
        Err(DecodeError::Truncated { at, .. }) if at.field == "prevUpstream"
    ));
    assert!(matches!(
        decode_sync_link(Some(&[])),
        Err(DecodeError::Truncated { .. })
    ));
}
