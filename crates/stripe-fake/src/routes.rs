//! Which catalog resource a request path addresses: list paths, object paths (`{id}`) and the
//! list paths of nested streams (`{parent}`), plus `/v1/account`.

use std::collections::HashMap;
use std::sync::Arc;

use stripe_catalog::{Resource, catalog};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// `GET /v1/account`.
    Account,
    /// A list path without a parent id (top-level streams, `/v1/subscription_items`).
    List(&'static Resource),
    /// An object path: retrieve, update, delete.
    Object(&'static Resource),
    /// A nested list under its parent's id (`/v1/invoices/{parent}/lines`).
    Nested(&'static Resource),
}

#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub target: Target,
    /// The path template, as counted in the stats (`/v1/customers/{id}`).
    pub template: Arc<str>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param,
}

pub(crate) struct RouteTable {
    exact: HashMap<String, Route>,
    patterned: Vec<(Vec<Segment>, Route)>,
    pub unrecognized: Arc<str>,
}

impl RouteTable {
    pub(crate) fn new() -> RouteTable {
        let mut table = RouteTable {
            exact: HashMap::new(),
            patterned: Vec::new(),
            unrecognized: Arc::from("(unrecognized)"),
        };
        table.add("/v1/account", Target::Account);
        for resource in &catalog().resources {
            if resource.list_path.contains("{parent}") {
                table.add(&resource.list_path, Target::Nested(resource));
            } else {
                table.add(&resource.list_path, Target::List(resource));
            }
            if let Some(path) = &resource.retrieve_path {
                table.add(path, Target::Object(resource));
            }
        }
        table
    }

    fn add(&mut self, template: &str, target: Target) {
        let route = Route {
            target,
            template: Arc::from(template),
        };
        if !template.contains('{') {
            self.exact.insert(template.to_string(), route);
            return;
        }
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        self.patterned.push((segments, route));
    }

    /// The route and the id in the path (the object's or the parent's), if any.
    pub(crate) fn find<'p>(&self, path: &'p str) -> Option<(&Route, Option<&'p str>)> {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        if let Some(route) = self.exact.get(path) {
            return Some((route, None));
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.patterned.iter().find_map(|(segments, route)| {
            if segments.len() != parts.len() {
                return None;
            }
            let mut id = None;
            for (segment, part) in segments.iter().zip(&parts) {
                match segment {
                    Segment::Literal(l) if l == part => {}
                    Segment::Param if !part.is_empty() => id = Some(*part),
                    _ => return None,
                }
            }
            Some((route, id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes() {
        let t = RouteTable::new();
        let (r, id) = t.find("/v1/customers").unwrap();
        assert!(matches!(r.target, Target::List(res) if res.stream == "customers"));
        assert_eq!(id, None);
        let (r, id) = t.find("/v1/customers/cus_1").unwrap();
        assert!(matches!(r.target, Target::Object(res) if res.stream == "customers"));
        assert_eq!(id, Some("cus_1"));
        assert_eq!(&*r.template, "/v1/customers/{id}");
        let (r, id) = t.find("/v1/invoices/in_1/lines").unwrap();
        assert!(matches!(r.target, Target::Nested(res) if res.stream == "invoice_line_items"));
        assert_eq!(id, Some("in_1"));
        let (r, _) = t.find("/v1/checkout/sessions/cs_1/line_items").unwrap();
        assert!(matches!(r.target, Target::Nested(_)));
        let (r, id) = t.find("/v2/core/accounts/acct_1").unwrap();
        assert!(matches!(r.target, Target::Object(res) if res.stream == "v2_core_accounts"));
        assert_eq!(id, Some("acct_1"));
        assert!(matches!(
            t.find("/v1/account").unwrap().0.target,
            Target::Account
        ));
        assert!(t.find("/v1/nope").is_none());
        assert!(t.find("/v1/customers/cus_1/extra").is_none());
        assert!(t.find("/v1/customers//").is_none());
    }
}
