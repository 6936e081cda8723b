//! ACL requests and their result decoders: describe, create and delete.
//!
//! The enums of an ACL binding (resource type, pattern type, operation,
//! permission) come from the broker: they are read through the `raw`
//! re-declarations as integers, never as `rdkafka-sys` enums (see the module
//! docs of `native`).

use super::args::{cstring, OwnedBinding};
use super::read::{error_object, string};
use super::*;
use crate::types::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
};
use rdsys::{
    rd_kafka_AclBinding_t, rd_kafka_AclOperation_t as Op, rd_kafka_AclPermissionType_t as Perm,
    rd_kafka_ResourcePatternType_t as Pattern, rd_kafka_ResourceType_t as ResType,
};

/// Re-declarations returning the raw integer, see the module docs.
mod raw_acl {
    use super::*;

    #[allow(clashing_extern_declarations)]
    extern "C" {
        pub fn rd_kafka_AclBinding_restype(acl: *const rd_kafka_AclBinding_t) -> c_int;
        pub fn rd_kafka_AclBinding_resource_pattern_type(
            acl: *const rd_kafka_AclBinding_t,
        ) -> c_int;
        pub fn rd_kafka_AclBinding_operation(acl: *const rd_kafka_AclBinding_t) -> c_int;
        pub fn rd_kafka_AclBinding_permission_type(acl: *const rd_kafka_AclBinding_t) -> c_int;
    }
}

/// An array of owned bindings, in the `*mut *mut` shape the request calls
/// take; the bindings are freed when it drops.
struct Bindings {
    /// Owns what `ptrs` points to.
    _owned: Vec<OwnedBinding>,
    ptrs: Vec<*mut rd_kafka_AclBinding_t>,
}

impl Bindings {
    fn new(owned: Vec<OwnedBinding>) -> Bindings {
        let ptrs = owned.iter().map(OwnedBinding::ptr).collect();
        Bindings {
            _owned: owned,
            ptrs,
        }
    }
}

fn res_type(t: AclResourceType) -> Option<ResType> {
    Some(match t {
        AclResourceType::Topic => ResType::RD_KAFKA_RESOURCE_TOPIC,
        AclResourceType::Group => ResType::RD_KAFKA_RESOURCE_GROUP,
        AclResourceType::Cluster => ResType::RD_KAFKA_RESOURCE_BROKER,
        AclResourceType::TransactionalId => ResType::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
        AclResourceType::Other(_) => return None,
    })
}

fn pattern_type(p: AclPatternType) -> Option<Pattern> {
    match p {
        AclPatternType::Literal => Some(Pattern::RD_KAFKA_RESOURCE_PATTERN_LITERAL),
        AclPatternType::Prefixed => Some(Pattern::RD_KAFKA_RESOURCE_PATTERN_PREFIXED),
        AclPatternType::Other(_) => None,
    }
}

fn operation(o: AclOperation) -> Option<Op> {
    use Op::*;
    Some(match o {
        AclOperation::All => RD_KAFKA_ACL_OPERATION_ALL,
        AclOperation::Read => RD_KAFKA_ACL_OPERATION_READ,
        AclOperation::Write => RD_KAFKA_ACL_OPERATION_WRITE,
        AclOperation::Create => RD_KAFKA_ACL_OPERATION_CREATE,
        AclOperation::Delete => RD_KAFKA_ACL_OPERATION_DELETE,
        AclOperation::Alter => RD_KAFKA_ACL_OPERATION_ALTER,
        AclOperation::Describe => RD_KAFKA_ACL_OPERATION_DESCRIBE,
        AclOperation::ClusterAction => RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        AclOperation::DescribeConfigs => RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        AclOperation::AlterConfigs => RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        AclOperation::IdempotentWrite => RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
        AclOperation::Other(_) => return None,
    })
}

fn permission(p: AclPermission) -> Option<Perm> {
    match p {
        AclPermission::Allow => Some(Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW),
        AclPermission::Deny => Some(Perm::RD_KAFKA_ACL_PERMISSION_TYPE_DENY),
        AclPermission::Other(_) => None,
    }
}

fn res_type_from_raw(n: c_int) -> AclResourceType {
    match n {
        2 => AclResourceType::Topic,
        3 => AclResourceType::Group,
        4 => AclResourceType::Cluster,
        5 => AclResourceType::TransactionalId,
        n => AclResourceType::Other(n),
    }
}

fn pattern_type_from_raw(n: c_int) -> AclPatternType {
    match n {
        3 => AclPatternType::Literal,
        4 => AclPatternType::Prefixed,
        n => AclPatternType::Other(n),
    }
}

fn operation_from_raw(n: c_int) -> AclOperation {
    match n {
        2 => AclOperation::All,
        3 => AclOperation::Read,
        4 => AclOperation::Write,
        5 => AclOperation::Create,
        6 => AclOperation::Delete,
        7 => AclOperation::Alter,
        8 => AclOperation::Describe,
        9 => AclOperation::ClusterAction,
        10 => AclOperation::DescribeConfigs,
        11 => AclOperation::AlterConfigs,
        12 => AclOperation::IdempotentWrite,
        n => AclOperation::Other(n),
    }
}

fn permission_from_raw(n: c_int) -> AclPermission {
    match n {
        2 => AclPermission::Deny,
        3 => AclPermission::Allow,
        n => AclPermission::Other(n),
    }
}

/// The parts of a binding or filter as librdkafka takes them.
struct Parts {
    restype: ResType,
    name: Option<CString>,
    pattern: Pattern,
    principal: Option<CString>,
    host: Option<CString>,
    operation: Op,
    permission: Perm,
}

/// Makes a binding (`filter` false) or a binding filter from `parts`.
fn make(
    ctx: &Ctx,
    resource: &Resource,
    parts: &Parts,
    filter: bool,
) -> Result<OwnedBinding, AdminError> {
    let opt = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
    let mut errstr = [0 as c_char; 512];
    // SAFETY: the C strings outlive the call, which copies them; `errstr` is
    // writable for its length. The result is NULL or a new object we own.
    let made = unsafe {
        let new = if filter {
            rdsys::rd_kafka_AclBindingFilter_new
        } else {
            rdsys::rd_kafka_AclBinding_new
        };
        OwnedBinding::from_raw(new(
            parts.restype,
            opt(&parts.name),
            parts.pattern,
            opt(&parts.principal),
            opt(&parts.host),
            parts.operation,
            parts.permission,
            errstr.as_mut_ptr(),
            errstr.len(),
        ))
    };
    made.ok_or_else(|| AdminError::InvalidArgument {
        op: ctx.op,
        resource: resource.clone(),
        // SAFETY: zero-initialised, so NUL-terminated whatever was written.
        message: unsafe { CStr::from_ptr(errstr.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    })
}

/// The exact parts of `acl`, or why librdkafka cannot express it.
fn exact_parts(ctx: &Ctx, acl: &AclBinding) -> Result<Parts, AdminError> {
    let resource = Resource::Acl(acl.to_string());
    let unsupported = |what: &str| AdminError::InvalidArgument {
        op: ctx.op,
        resource: resource.clone(),
        message: format!("{what} cannot be sent through librdkafka"),
    };
    Ok(Parts {
        restype: res_type(acl.resource_type).ok_or_else(|| unsupported("the resource type"))?,
        name: Some(cstring(ctx.op, &resource, &acl.resource_name)?),
        pattern: pattern_type(acl.pattern_type).ok_or_else(|| unsupported("the pattern type"))?,
        principal: Some(cstring(ctx.op, &resource, &acl.principal)?),
        host: Some(cstring(ctx.op, &resource, &acl.host)?),
        operation: operation(acl.operation).ok_or_else(|| unsupported("the operation"))?,
        permission: permission(acl.permission).ok_or_else(|| unsupported("the permission"))?,
    })
}

/// Checks that librdkafka can send `acl` as it is (a binding read from a
/// newer broker may hold values it does not model), without sending it.
pub(crate) fn check_acl(ctx: &Ctx, acl: &AclBinding) -> Result<(), AdminError> {
    let parts = exact_parts(ctx, acl)?;
    make(ctx, &Resource::Acl(acl.to_string()), &parts, false).map(drop)
}

pub(crate) fn describe_acls(
    native: &Arc<Native>,
    ctx: &Ctx,
    filter: &AclFilter,
) -> Result<Rx, AdminError> {
    let resource = Resource::Acl(format!("{filter:?}"));
    let restype = match filter.resource_type {
        None => ResType::RD_KAFKA_RESOURCE_ANY,
        Some(t) => res_type(t).ok_or_else(|| AdminError::InvalidArgument {
            op: ctx.op,
            resource: resource.clone(),
            message: format!("resource type {t} cannot be sent through librdkafka"),
        })?,
    };
    let string = |s: &Option<String>| {
        s.as_deref()
            .map(|s| cstring(ctx.op, &resource, s))
            .transpose()
    };
    let parts = Parts {
        restype,
        name: string(&filter.resource_name)?,
        pattern: Pattern::RD_KAFKA_RESOURCE_PATTERN_ANY,
        principal: string(&filter.principal)?,
        host: None,
        operation: Op::RD_KAFKA_ACL_OPERATION_ANY,
        permission: Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
    };
    let acl_filter = make(ctx, &resource, &parts, true)?;
    let opts = Options::new(
        native,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
        ctx.op,
        ctx.timeout,
    )?;
    let call = |rk, o, q| {
        // SAFETY: a valid filter; librdkafka copies it.
        unsafe { rdsys::rd_kafka_DescribeAcls(rk, acl_filter.ptr(), o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers it
    // is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

/// Copies one binding of a result.
///
/// # Safety
/// `acl` must be a valid binding owned by a live event.
unsafe fn binding(acl: *const rd_kafka_AclBinding_t) -> AclBinding {
    // SAFETY: valid per the contract; strings are copied.
    unsafe {
        AclBinding {
            resource_type: res_type_from_raw(raw_acl::rd_kafka_AclBinding_restype(acl)),
            resource_name: string(rdsys::rd_kafka_AclBinding_name(acl)),
            pattern_type: pattern_type_from_raw(
                raw_acl::rd_kafka_AclBinding_resource_pattern_type(acl),
            ),
            principal: string(rdsys::rd_kafka_AclBinding_principal(acl)),
            host: string(rdsys::rd_kafka_AclBinding_host(acl)),
            operation: operation_from_raw(raw_acl::rd_kafka_AclBinding_operation(acl)),
            permission: permission_from_raw(raw_acl::rd_kafka_AclBinding_permission_type(acl)),
        }
    }
}

pub(crate) fn decode_describe_acls(
    ctx: &Ctx,
    ev: &Event,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, AdminError> {
    ctx.check(ev, || Resource::Acl(format!("{filter:?}")))?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_DescribeAcls_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: the bindings live as long as `ev`; each is copied out.
    unsafe {
        let acls = ev.array(|n| rdsys::rd_kafka_DescribeAcls_result_acls(res, n));
        Ok(acls.iter().map(|&a| binding(a)).collect())
    }
}

pub(crate) fn create_acls(
    native: &Arc<Native>,
    ctx: &Ctx,
    acls: &[AclBinding],
) -> Result<Rx, AdminError> {
    submit_bindings(
        native,
        ctx,
        acls,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
        rdsys::rd_kafka_CreateAcls,
    )
}

/// One result per requested binding, in request order.
pub(crate) fn decode_create_acls(
    ctx: &Ctx,
    ev: &Event,
    acls: &[AclBinding],
) -> Result<Vec<Result<(), AdminError>>, AdminError> {
    let all = || Resource::Acl(format!("{} ACLs", acls.len()));
    ctx.check(ev, all)?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_CreateAcls_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: the results live as long as `ev`; errors are copied out.
    let results = unsafe { ev.array(|n| rdsys::rd_kafka_CreateAcls_result_acls(res, n)) };
    if results.len() != acls.len() {
        return Err(AdminError::Internal {
            op: ctx.op,
            message: format!("{} results for {} ACLs", results.len(), acls.len()),
        });
    }
    Ok(results
        .iter()
        .zip(acls)
        .map(|(&r, acl)| {
            // SAFETY: valid result of a live event.
            match unsafe { error_object(rdsys::rd_kafka_acl_result_error(r)) } {
                None => Ok(()),
                Some(err) => Err(ctx.fail(Resource::Acl(acl.to_string()), err)),
            }
        })
        .collect())
}

pub(crate) fn delete_acls(
    native: &Arc<Native>,
    ctx: &Ctx,
    acls: &[AclBinding],
) -> Result<Rx, AdminError> {
    // A filter with every field set matches exactly that ACL.
    submit_bindings(
        native,
        ctx,
        acls,
        rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
        rdsys::rd_kafka_DeleteAcls,
    )
}

/// The signature `rd_kafka_CreateAcls` and `rd_kafka_DeleteAcls` share.
type AclsCall = unsafe extern "C" fn(
    *mut rdsys::rd_kafka_t,
    *mut *mut rdsys::rd_kafka_AclBinding_t,
    usize,
    *const rdsys::rd_kafka_AdminOptions_t,
    *mut rdsys::rd_kafka_queue_t,
);

/// Submits `acls` as exact bindings (create) or exact filters (delete).
fn submit_bindings(
    native: &Arc<Native>,
    ctx: &Ctx,
    acls: &[AclBinding],
    op: rdsys::rd_kafka_admin_op_t,
    admin_call: AclsCall,
) -> Result<Rx, AdminError> {
    let as_filters = op == rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS;
    let owned = acls
        .iter()
        .map(|acl| {
            let parts = exact_parts(ctx, acl)?;
            make(ctx, &Resource::Acl(acl.to_string()), &parts, as_filters)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut bindings = Bindings::new(owned);
    let opts = Options::new(native, op, ctx.op, ctx.timeout)?;
    let call = |rk, o, q| {
        // SAFETY: `ptrs` holds valid bindings or filters (owned by
        // `bindings.owned`); librdkafka copies them.
        unsafe { admin_call(rk, bindings.ptrs.as_mut_ptr(), bindings.ptrs.len(), o, q) }
    };
    // SAFETY: `call` makes exactly one admin call, passing the pointers it
    // is given unchanged.
    Ok(unsafe { native.submit(&opts, call) })
}

/// Per requested binding, in request order: how many ACLs it deleted.
pub(crate) fn decode_delete_acls(
    ctx: &Ctx,
    ev: &Event,
    acls: &[AclBinding],
) -> Result<Vec<Result<usize, AdminError>>, AdminError> {
    ctx.check(ev, || Resource::Acl(format!("{} ACLs", acls.len())))?;
    // SAFETY: valid event; NULL if of another type.
    let res = unsafe { rdsys::rd_kafka_event_DeleteAcls_result(ev.ptr()) };
    if res.is_null() {
        return Err(ctx.wrong_type(ev));
    }
    // SAFETY: the responses live as long as `ev`; counts and errors are
    // copied out.
    unsafe {
        let responses = ev.array(|n| rdsys::rd_kafka_DeleteAcls_result_responses(res, n));
        if responses.len() != acls.len() {
            return Err(AdminError::Internal {
                op: ctx.op,
                message: format!("{} results for {} ACLs", responses.len(), acls.len()),
            });
        }
        Ok(responses
            .iter()
            .zip(acls)
            .map(|(&r, acl)| {
                match error_object(rdsys::rd_kafka_DeleteAcls_result_response_error(r)) {
                    Some(err) => Err(ctx.fail(Resource::Acl(acl.to_string()), err)),
                    None => {
                        let mut n = 0usize;
                        rdsys::rd_kafka_DeleteAcls_result_response_matching_acls(r, &mut n);
                        Ok(n)
                    }
                }
            })
            .collect())
    }
}
