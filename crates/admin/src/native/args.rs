//! Request arguments: RAII owners of the librdkafka objects a request is
//! built from, and the checks that turn bad names and offsets into
//! [`AdminError::InvalidArgument`] before librdkafka sees them.

use super::*;

macro_rules! owned_ptr {
    ($(#[$m:meta])* $name:ident, $ty:ty, $destroy:path) => {
        $(#[$m])*
        pub(super) struct $name(NonNull<$ty>);

        impl $name {
            /// # Safety
            /// `ptr` must be NULL or a freshly created object that the caller
            /// owns and that is to be freed by the matching destroy function.
            pub(super) unsafe fn from_raw(ptr: *mut $ty) -> Option<Self> {
                NonNull::new(ptr).map($name)
            }

            pub(super) fn ptr(&self) -> *mut $ty {
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
    /// `rd_kafka_AclBinding_t`, also the type of an ACL binding filter.
    OwnedBinding,
    rdsys::rd_kafka_AclBinding_t,
    rdsys::rd_kafka_AclBinding_destroy
);
owned_ptr!(
    /// An `rd_kafka_error_t` we must destroy.
    OwnedError,
    rd_kafka_error_t,
    rdsys::rd_kafka_error_destroy
);

impl Options {
    pub(super) fn new(
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

pub(super) fn cstring(
    op: &'static str,
    resource: &Resource,
    s: &str,
) -> Result<CString, AdminError> {
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
