//! `docker_api_allow` / `docker_api_deny`: access rules by Docker API operation.
//!
//! A rule names one or more selectors; the rules of a location are checked in order and
//! the first rule with a selector that matches the request decides, as nginx's own
//! `allow`/`deny` do. Unlike those, a request that no rule matches is refused: rules are
//! an allow-list, so an operation that a later Docker release adds is not let through by
//! default.
//!
//! Selectors:
//!
//! | selector | matches |
//! |---|---|
//! | `all` | every request, unknown paths included |
//! | `read` / `write` | a known operation that reads / writes ([`Operation::writes`]) |
//! | `unknown` | a path dockerd has no route for (or would redirect) |
//! | a section, e.g. `containers` | every operation of that section |
//! | a group, e.g. `containers.exec` | every operation of that group |
//! | an operation, e.g. `ContainerCreate` | that operation (the swagger operationId) |
//!
//! Names are case-sensitive, as in the operation table.

use crate::operation::{Operation, GROUPS, OPERATIONS, SECTIONS};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    All,
    Read,
    Write,
    Unknown,
    Section(&'static str),
    Group(&'static str),
    Operation(&'static str),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("unknown operation, group or section \"{0}\"")]
    Unknown(String),
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Ok(match text {
            "all" => Selector::All,
            "read" => Selector::Read,
            "write" => Selector::Write,
            "unknown" => Selector::Unknown,
            _ => {
                if let Some(s) = SECTIONS.iter().find(|s| **s == text) {
                    Selector::Section(s)
                } else if let Some(g) = GROUPS.iter().find(|g| **g == text) {
                    Selector::Group(g)
                } else if let Some(op) = OPERATIONS.iter().find(|op| op.name == text) {
                    Selector::Operation(op.name)
                } else {
                    return Err(SelectorError::Unknown(text.to_owned()));
                }
            }
        })
    }

    pub fn matches(self, op: Option<&Operation>) -> bool {
        match (self, op) {
            (Selector::All, _) => true,
            (Selector::Unknown, None) => true,
            (_, None) | (Selector::Unknown, Some(_)) => false,
            (Selector::Read, Some(op)) => !op.writes,
            (Selector::Write, Some(op)) => op.writes,
            (Selector::Section(s), Some(op)) => op.section == s,
            (Selector::Group(g), Some(op)) => op.group == g,
            (Selector::Operation(name), Some(op)) => op.name == name,
        }
    }
}

/// One `docker_api_allow` or `docker_api_deny` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub selectors: Vec<Selector>,
    /// The line as written (`docker_api_deny containers.exec`), for messages and logs.
    pub text: String,
}

impl Rule {
    /// A rule from a directive's name and its arguments.
    pub fn parse(directive: &str, action: Action, args: &[&str]) -> Result<Rule, SelectorError> {
        let selectors = args
            .iter()
            .map(|a| Selector::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut text = directive.to_owned();
        for a in args {
            text.push(' ');
            text.push_str(a);
        }
        Ok(Rule {
            action,
            selectors,
            text,
        })
    }

    fn matches(&self, op: Option<&Operation>) -> bool {
        self.selectors.iter().any(|s| s.matches(op))
    }
}

/// What the rules decided about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'r> {
    Allowed(&'r Rule),
    /// Refused by this rule.
    Denied(&'r Rule),
    /// No rule matched.
    NoRule,
}

impl Decision<'_> {
    pub fn allowed(self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

/// The first matching rule decides; none matching refuses.
pub fn decide<'r>(rules: &'r [Rule], op: Option<&Operation>) -> Decision<'r> {
    match rules.iter().find(|r| r.matches(op)) {
        Some(r) if r.action == Action::Allow => Decision::Allowed(r),
        Some(r) => Decision::Denied(r),
        None => Decision::NoRule,
    }
}

/// A named rule set: `docker_api_policy NAME { allow ...; deny ...; }`, chosen per request
/// by `docker_api_rules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<Rule>,
    /// The policy's own `guard*` lines, which replace the location's guards for its
    /// clients; `None` when it has none.
    pub guards: Option<crate::guards::Guards>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PolicyNameError {
    #[error("invalid policy name \"{0}\" (letters, digits, \"_\", \"-\", \".\")")]
    Invalid(String),
}

/// Policy names are what a `map` returns, so they are kept to characters that need no
/// quoting and cannot be confused with a variable or a list.
pub fn check_policy_name(name: &str) -> Result<(), PolicyNameError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PolicyNameError::Invalid(name.to_owned()))
    }
}

/// The policy named `name`, if one is defined.
pub fn find_policy<'p>(policies: &'p [Policy], name: &[u8]) -> Option<&'p Policy> {
    policies.iter().find(|p| p.name.as_bytes() == name)
}

/// The `message` of the JSON refusal: what was refused, why, and what would allow it.
/// `policy` is the name of the policy whose rules decided, if the rules came from one.
pub fn refusal_message(
    decision: Decision<'_>,
    op: Option<&Operation>,
    policy: Option<&str>,
) -> String {
    let what = match op {
        Some(op) => format!("{} (group {}, section {})", op.name, op.group, op.section),
        None => "this path (no Docker API operation)".to_owned(),
    };
    let selector = op.map_or("unknown", |op| op.group);
    let (how, in_policy) = match policy {
        Some(p) => (
            format!("\"allow {selector}\""),
            format!(" in docker_api_policy {p}"),
        ),
        None => (format!("\"docker_api_allow {selector}\""), String::new()),
    };
    match decision {
        Decision::Denied(rule) => {
            format!(
                "{what} is refused by this proxy (\"{}\"{in_policy})",
                rule.text
            )
        }
        _ => format!("{what} is not allowed by this proxy (it would take {how}{in_policy})"),
    }
}

/// What decided, for logs (`$docker_api_rule`): the rule as written, or `no rule`, with
/// the policy it belongs to.
pub fn rule_label(decision: Decision<'_>, policy: Option<&str>) -> String {
    let base = match decision {
        Decision::Allowed(r) | Decision::Denied(r) => r.text.as_str(),
        Decision::NoRule => "no rule",
    };
    match policy {
        Some(p) => format!("{base} in docker_api_policy {p}"),
        None => base.to_owned(),
    }
}

/// The refusal when the policy named for a request is not defined, or none is named.
pub fn no_policy_message(name: &[u8]) -> String {
    if name.is_empty() {
        "this client has no Docker API policy on this proxy".to_owned()
    } else {
        format!(
            "the Docker API policy \"{}\" named for this client is not defined on this proxy",
            String::from_utf8_lossy(name).escape_debug()
        )
    }
}

/// `s` as a JSON string literal (quotes included).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::classify;

    fn rules(lines: &[(Action, &[&str])]) -> Vec<Rule> {
        lines
            .iter()
            .map(|(a, args)| {
                let name = match a {
                    Action::Allow => "docker_api_allow",
                    Action::Deny => "docker_api_deny",
                };
                Rule::parse(name, *a, args).unwrap()
            })
            .collect()
    }

    fn op(method: &str, path: &str) -> Option<&'static Operation> {
        classify(method.as_bytes(), path.as_bytes()).operation
    }

    #[test]
    fn selectors_parse_every_name_of_the_table() {
        for s in SECTIONS {
            assert_eq!(Selector::parse(s), Ok(Selector::Section(s)));
        }
        for g in GROUPS {
            assert_eq!(Selector::parse(g), Ok(Selector::Group(g)));
        }
        for o in OPERATIONS {
            assert!(Selector::parse(o.name).is_ok(), "{}", o.name);
        }
        for bad in ["", "Containers", "containers.exce", "containercreate", "*"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_match_decides_and_nothing_matching_refuses() {
        let r = rules(&[
            (Action::Deny, &["containers.exec"]),
            (Action::Allow, &["read", "containers.create"]),
        ]);
        let create = op("POST", "/v1.41/containers/create");
        let exec = op("POST", "/containers/x/exec");
        let list = op("GET", "/containers/json");
        let kill = op("POST", "/containers/x/kill");
        assert!(decide(&r, create).allowed());
        assert!(decide(&r, list).allowed());
        assert_eq!(decide(&r, exec), Decision::Denied(&r[0]));
        assert_eq!(decide(&r, kill), Decision::NoRule);
        assert_eq!(decide(&r, None), Decision::NoRule);
        assert_eq!(decide(&[], list), Decision::NoRule);
    }

    #[test]
    fn read_write_all_and_unknown() {
        let r = rules(&[(Action::Allow, &["read"])]);
        assert!(decide(&r, op("GET", "/_ping")).allowed());
        assert!(decide(&r, op("HEAD", "/_ping")).allowed());
        // A GET that carries stdin into the container is a write.
        assert!(!decide(&r, op("GET", "/containers/x/attach/ws")).allowed());
        assert!(!decide(&r, op("POST", "/containers/create")).allowed());
        assert!(!decide(&r, None).allowed());
        let r = rules(&[(Action::Deny, &["write"]), (Action::Allow, &["all"])]);
        assert!(decide(&r, None).allowed());
        assert!(!decide(&r, op("DELETE", "/images/busybox")).allowed());
        let r = rules(&[(Action::Allow, &["unknown"])]);
        assert!(decide(&r, None).allowed());
        assert!(!decide(&r, op("GET", "/_ping")).allowed());
    }

    #[test]
    fn sections_groups_and_names() {
        let r = rules(&[(Action::Allow, &["images", "ContainerLogs", "exec.start"])]);
        assert!(decide(&r, op("POST", "/images/create")).allowed());
        assert!(decide(&r, op("DELETE", "/images/a/b:c")).allowed());
        assert!(decide(&r, op("GET", "/containers/x/logs")).allowed());
        assert!(decide(&r, op("POST", "/exec/abc/start")).allowed());
        assert!(!decide(&r, op("GET", "/exec/abc/json")).allowed());
        assert!(!decide(&r, op("GET", "/containers/x/json")).allowed());
    }

    #[test]
    fn messages_name_the_operation_and_the_way_out() {
        let r = rules(&[
            (Action::Deny, &["containers.exec"]),
            (Action::Allow, &["read"]),
        ]);
        let exec = op("POST", "/containers/x/exec");
        let m = refusal_message(decide(&r, exec), exec, None);
        assert_eq!(
            m,
            "ContainerExec (group containers.exec, section containers) is refused by this proxy (\"docker_api_deny containers.exec\")"
        );
        let create = op("POST", "/containers/create");
        let m = refusal_message(decide(&r, create), create, None);
        assert!(
            m.contains("ContainerCreate") && m.contains("docker_api_allow containers.create"),
            "{m}"
        );
        let m = refusal_message(decide(&r, None), None, None);
        assert!(m.contains("docker_api_allow unknown"), "{m}");
    }

    #[test]
    fn policies_are_named_in_messages() {
        let r = vec![
            Rule::parse("deny", Action::Deny, &["containers.exec"]).unwrap(),
            Rule::parse("allow", Action::Allow, &["read"]).unwrap(),
        ];
        let exec = op("POST", "/containers/x/exec");
        assert_eq!(
            refusal_message(decide(&r, exec), exec, Some("ci")),
            "ContainerExec (group containers.exec, section containers) is refused by this proxy (\"deny containers.exec\" in docker_api_policy ci)"
        );
        let kill = op("POST", "/containers/x/kill");
        assert_eq!(
            refusal_message(decide(&r, kill), kill, Some("ci")),
            "ContainerKill (group containers.kill, section containers) is not allowed by this proxy (it would take \"allow containers.kill\" in docker_api_policy ci)"
        );
        let policies = vec![Policy {
            name: "ci".into(),
            rules: r,
            guards: None,
        }];
        assert!(find_policy(&policies, b"ci").is_some());
        assert!(find_policy(&policies, b"CI").is_none());
        assert!(find_policy(&policies, b"").is_none());
        assert_eq!(
            no_policy_message(b"x\"y"),
            "the Docker API policy \"x\\\"y\" named for this client is not defined on this proxy"
        );
        assert!(no_policy_message(b"").contains("no Docker API policy"));
        let r = &policies[0].rules;
        assert_eq!(
            rule_label(decide(r, kill), Some("ci")),
            "no rule in docker_api_policy ci"
        );
        assert_eq!(rule_label(decide(r, exec), None), "deny containers.exec");
        for good in ["ci", "traefik-ro", "a.b_c", "0"] {
            assert!(check_policy_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "$x", "a;b", "é", &"x".repeat(65)] {
            assert!(check_policy_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
