//! The Confluent wire format: a key or value serialized through a schema
//! registry starts with magic byte 0 and the schema's 4-byte big-endian ID.

/// The schema ID a serialized key or value carries, if it is in the wire
/// format (magic byte 0 and at least the 4 ID bytes).
#[inline]
pub fn schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Replaces the schema ID of a wire-format buffer in place; a buffer not in
/// the wire format is left alone.
pub fn set_schema_id(bytes: &mut [u8], id: u32) {
    if schema_id(bytes).is_some() {
        bytes[1..5].copy_from_slice(&id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_magic_byte_zero_with_four_id_bytes_carries_an_id() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]), Some(258));
        assert_eq!(schema_id(&[0, 0, 0, 0, 7]), Some(7));
        assert_eq!(schema_id(&[0, 0, 0, 7]), None);
        assert_eq!(schema_id(&[1, 0, 0, 0, 7]), None);
        assert_eq!(schema_id(b""), None);
    }

    #[test]
    fn rewriting_touches_the_id_only() {
        let mut b = vec![0, 0, 0, 0, 7, 42, 43];
        set_schema_id(&mut b, 0x0102_0304);
        assert_eq!(b, vec![0, 1, 2, 3, 4, 42, 43]);
        let mut plain = b"{\"a\":1}".to_vec();
        set_schema_id(&mut plain, 5);
        assert_eq!(plain, b"{\"a\":1}");
    }
}
