//! `ferry plan`: what each flow would do to its target, changing nothing;
//! with `--apply`, the metadata-only migration (`ferry_migrate::{plan,
//! apply}`). Exit 0 on success, 1 on a failure (including any failed apply
//! step), 2 on bad input.

use std::path::Path;

use ferry_migrate::{apply, plan, units};

use crate::exit;

pub fn plan(
    path: &Path,
    flow: Option<&str>,
    json: bool,
    do_apply: bool,
    throughput: Option<&str>,
) -> u8 {
    let (topology, flows) = match super::load_flows(path, flow) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let throughput = match throughput.map(units::parse_throughput).transpose() {
        Ok(t) => t.unwrap_or(units::DEFAULT_THROUGHPUT_BYTES_PER_SEC),
        Err(e) => {
            eprintln!("error: --throughput: {e}");
            return exit::BAD_INPUT;
        }
    };
    let rt = match super::start_command(&topology) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = plan::PlanOptions { throughput };
    let the_plan = match rt.block_on(plan::plan(&topology, &flows, &options)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let applied: Option<Vec<apply::Applied>> = do_apply.then(|| {
        rt.block_on(async {
            let mut out = Vec::new();
            for (flow, p) in flows.iter().zip(&the_plan.flows) {
                out.push(apply::apply(&topology, flow, p).await);
            }
            out
        })
    });
    if json {
        let mut value = match serde_json::to_value(&the_plan) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: cannot encode the plan: {e}");
                return exit::FAILURE;
            }
        };
        if let (Some(a), Some(obj)) = (&applied, value.as_object_mut()) {
            obj.insert(
                "applied".into(),
                serde_json::to_value(a).unwrap_or_default(),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", plan::render(&the_plan));
        if let Some(a) = &applied {
            println!();
            print!("{}", apply::render(a));
        }
    }
    let failed = applied
        .iter()
        .flatten()
        .flat_map(|a| &a.errors)
        .inspect(|e| eprintln!("error: {e}"))
        .count();
    if failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    }
}
