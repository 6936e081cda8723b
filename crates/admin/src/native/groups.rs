//! Consumer-group requests and their result decoders: list, describe,
//! list offsets, alter offsets.

use super::args::{cstring, AlterGroupOffsets, ListGroupOffsets};
use super::read::{error_object, group_state, group_type, partitions, string, RawPartition};
use super::*;

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
        let errors = ev.array(|n| rdsys::rd_kafka_ListConsumerGroups_result_errors(res, n));
        // Some broker could not be asked: a partial list must not be taken
        // for the whole one.
        if let Some(err) = errors.iter().find_map(|&e| error_object(e)) {
            return Err(ctx.fail(Resource::Cluster, err));
        }
        let valid = ev.array(|n| rdsys::rd_kafka_ListConsumerGroups_result_valid(res, n));
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
        for &d in ev.array(|n| rdsys::rd_kafka_DescribeConsumerGroups_result_groups(res, n)) {
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
        let groups = ev.array(|n| rdsys::rd_kafka_ListConsumerGroupOffsets_result_groups(res, n));
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
        let groups = ev.array(|n| rdsys::rd_kafka_AlterConsumerGroupOffsets_result_groups(res, n));
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
