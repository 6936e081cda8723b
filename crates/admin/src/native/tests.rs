use super::args::partition_list;
use super::read::partitions;
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
