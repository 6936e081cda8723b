//! Topic-config requests and their result decoders: incremental alter and
//! describe.

use super::args::{cstring, ConfigResource, OwnedError};
use super::read::{config_source, error_object, string};
use super::*;

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
        let resources =
            ev.array(|n| rdsys::rd_kafka_IncrementalAlterConfigs_result_resources(res, n));
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
        let resources = ev.array(|n| rdsys::rd_kafka_DescribeConfigs_result_resources(res, n));
        config_resource_errors(ctx, resources, |t| Resource::Topic(t.to_string()))?;
        let Some(&r) = resources.first() else {
            return Err(AdminError::Internal {
                op: ctx.op,
                message: format!("no result for topic '{topic}'"),
            });
        };
        let entries = ev.array(|n| rdsys::rd_kafka_ConfigResource_configs(r, n));
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
