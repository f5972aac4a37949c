//! Integration tests for rampart-waf: corpora, properties, policy files and
//! the abuse detector. One binary, topic modules.

mod abuse;
mod benign;
mod corpus;
mod fastpath;
mod heldout;
mod malicious;
mod props;

use std::net::{IpAddr, Ipv4Addr};

use rampart_waf::{Header, Inspector, Policy, Request, Route, Verdict};

pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// The policy every corpus test uses: built-in rules plus routes.
pub fn test_policy(paranoia: u8) -> Policy {
    let mut p = Policy::at_paranoia(paranoia);
    p.routes = vec![
        Route {
            path_prefix: "/api/users".into(),
            methods: vec!["GET".into(), "PUT".into(), "PATCH".into(), "POST".into()],
            content_types: vec!["application/json".into()],
            forbidden_fields: [
                "role",
                "is_admin",
                "account_balance",
                "owner_id",
                "permissions",
                "verified",
                "email_verified",
            ]
            .map(String::from)
            .to_vec(),
            base64_params: vec![],
        },
        Route {
            path_prefix: "/api/import".into(),
            base64_params: vec!["data_b64".into()],
            ..Route::default()
        },
        Route {
            path_prefix: "/api/search".into(),
            methods: vec!["GET".into()],
            ..Route::default()
        },
    ];
    p
}

/// Lends an owned request out as the borrowed view the inspector takes.
pub fn with_request<R>(o: &benign::Owned, f: impl FnOnce(&Request<'_>) -> R) -> R {
    let headers: Vec<Header<'_>> = o
        .headers
        .iter()
        .map(|(n, v)| Header {
            name: n,
            value: v.as_bytes(),
        })
        .collect();
    f(&Request {
        method: o.method,
        path: o.path.as_bytes(),
        query: o.query.as_bytes(),
        headers: &headers,
        body: &o.body,
        content_type: o.content_type,
        client_ip: CLIENT,
        principal: None,
    })
}

/// Inspects an owned request.
pub fn inspect(ins: &Inspector, o: &benign::Owned) -> Verdict {
    with_request(o, |req| ins.inspect(req))
}

/// The simulator caches verdicts per (template, ruleset hash) and shares
/// one inspector across instances: the verdict must stay small and `Copy`,
/// the inspector `Send + Sync`.
#[test]
fn verdicts_are_small_copy_values_and_inspectors_are_shareable() {
    fn shareable<T: Send + Sync>() {}
    fn copyable<T: Copy>() {}
    shareable::<Inspector>();
    copyable::<Verdict>();
    let size = std::mem::size_of::<Verdict>();
    let ins = Inspector::new(test_policy(4)).unwrap();
    println!(
        "size_of::<Verdict>() = {size}, PL4 active rules {}, longest trigger {} bytes",
        ins.active_rules(),
        ins.trigger_len_max()
    );
    assert!(size <= 80, "Verdict grew to {size} bytes");
}
