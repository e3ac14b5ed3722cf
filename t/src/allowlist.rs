//! A reference model of the image's allow-list, and a generator of request targets to
//! hold the image against it (tests/image_allowlist_gen.rs).
//!
//! The model is written from the documented behaviour, not from the rendered nginx
//! configuration:
//! - nginx's request line and `$uri`: percent-decoding (a `%` without two hex digits and
//!   `%00` are a 400; a decoded `%`, `?` or `#` is data), `//` merged, `.` and `..`
//!   segments resolved (a `..` above the root is a 400), the query string and a fragment
//!   cut off at the first raw `?` or `#`;
//! - control characters, backslashes and dot segments in `$uri` are refused by the image
//!   first ("malformed path");
//! - then the methods: GET and HEAD pass, DELETE, PUT and PATCH need their switch, any
//!   other method and the attach WebSocket (a GET that writes to the container) need
//!   POST=1;
//! - then the module's rules: the operation (the logic crate's classifier, the module's
//!   own, which is held against dockerd's route lists in its own tests) must be matched
//!   by a selector of a granted switch of image/allowlist, the table the entrypoint reads
//!   too; a refusal ends with the hint that names the switches (in the table's order)
//!   of the most specific selector (operation, group, section) that grants it;
//! - then, with POST=1, the body guards (all on but those lifted by ALLOW_PRIVILEGED,
//!   ALLOW_DEVICES, ALLOW_HOST_NAMESPACES, ALLOW_UNCONFINED; the generated requests carry
//!   no body, so a guarded operation is refused as not JSON).

use std::collections::BTreeSet;

use docker_stream_logic::guards::{check_body, check_build_query, refuse_unreadable, Body, Guards};
use docker_stream_logic::operation::{classify, Operation};
use docker_stream_logic::rules::{json_string, refusal_message, Decision, Selector};
use regex::bytes::{Regex, RegexBuilder};

pub const DENIED: &str = "access denied by the Docker API proxy";

/// The switches of the methods that change state, as the entrypoint has them.
pub const METHODS: &[&str] = &["POST", "DELETE", "PUT", "PATCH"];

/// The guards a variable lifts (the entrypoint's `guard_flags`).
pub const GUARD_LIFTS: &[(&str, &str)] = &[
    ("ALLOW_PRIVILEGED", "privileged"),
    ("ALLOW_DEVICES", "devices"),
    ("ALLOW_HOST_NAMESPACES", "host_namespaces"),
    ("ALLOW_UNCONFINED", "unconfined"),
];

/// A PCRE pattern as nginx's `~` map entries use it (no flags), for the regex crate:
/// bytes, no Unicode, and PCRE's `$` (end, or before a final newline).
fn pcre(pattern: &str) -> Regex {
    let mut out = String::new();
    let (mut escaped, mut class) = (false, false);
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => class = true,
            ']' => class = false,
            '$' if !class => {
                out.push_str(r"(?:\n?\z)");
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    RegexBuilder::new(&out)
        .unicode(false)
        .build()
        .unwrap_or_else(|e| panic!("pattern {pattern:?}: {e}"))
}

/// One line of image/allowlist.
#[derive(Debug, Clone)]
pub struct Switch {
    pub name: String,
    pub default_on: bool,
    /// Every operation it grants is a POST: the entrypoint refuses it with POST=0.
    pub post_only: bool,
    /// The module's selectors it grants.
    pub grants: Vec<String>,
}

pub struct AllowList {
    pub switches: Vec<Switch>,
    bad_chars: Regex,
    bad_dots: Regex,
}

impl AllowList {
    /// The image's allow-list, image/allowlist.
    pub fn load() -> AllowList {
        let path = crate::root().join("image/allowlist");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> AllowList {
        let mut switches: Vec<Switch> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [name, default, kind, grants @ ..] = cols.as_slice() else {
                panic!("allowlist line {line:?}: expected NAME DEFAULT KIND SELECTOR...");
            };
            assert!(!grants.is_empty(), "allowlist line {line:?}: no selector");
            for g in grants {
                Selector::parse(g).unwrap_or_else(|e| panic!("allowlist line {line:?}: {e}"));
            }
            assert!(
                switches.iter().all(|s| s.name != *name),
                "allowlist: {name} twice"
            );
            switches.push(Switch {
                name: name.to_string(),
                default_on: match *default {
                    "0" => false,
                    "1" => true,
                    d => panic!("allowlist line {line:?}: default {d}"),
                },
                post_only: match *kind {
                    "any" => false,
                    "post" => true,
                    k => panic!("allowlist line {line:?}: kind {k}"),
                },
                grants: grants.iter().map(|g| g.to_string()).collect(),
            });
        }
        AllowList {
            switches,
            bad_chars: pcre(r"[\x00-\x1f\x7f\\]"),
            bad_dots: pcre(r"(^|/)\.\.?(/|$)"),
        }
    }

    /// The switches that grant `selector` itself, in the table's order.
    fn grantors(&self, selector: &str) -> Vec<&str> {
        self.switches
            .iter()
            .filter(|s| s.grants.iter().any(|g| g == selector))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The image's hint for a request its rules refuse.
    pub fn hint(&self, op: Option<&Operation>) -> String {
        let Some(op) = op else {
            return "the path is no Docker API endpoint".into();
        };
        for sel in [op.name, op.group, op.section] {
            let names = self.grantors(sel);
            if !names.is_empty() {
                let names: Vec<String> = names.iter().map(|n| format!("{n}=1")).collect();
                return format!("this image allows it with {}", names.join(" or "));
            }
        }
        "no setting of this image allows it".into()
    }

    /// What the image does with `method target` under `grants`.
    pub fn verdict(&self, grants: &Grants, method: &str, target: &str) -> Verdict {
        self.verdict_as(grants, None, method, target)
    }

    /// What the image does with `method target` from a client of `tenant` (`Some(None)`:
    /// a client in no tenant) of a proxy with `grants`.
    pub fn verdict_as(
        &self,
        grants: &Grants,
        tenant: Option<Option<&Tenant>>,
        method: &str,
        target: &str,
    ) -> Verdict {
        let valid_method = !method.is_empty()
            && method
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-');
        if !valid_method {
            return Verdict::Rejected(400);
        }
        let (uri, args) = match normalize(target.as_bytes()) {
            Ok(v) => v,
            Err(status) => return Verdict::Rejected(status),
        };
        if method == "TRACE" {
            return Verdict::Rejected(405);
        }
        if self.bad_chars.is_match(&uri) || self.bad_dots.is_match(&uri) {
            return Verdict::Denied(format!("{DENIED}: malformed path"));
        }
        let op = classify(method.as_bytes(), &uri).operation;
        let websocket = op.is_some_and(|o| o.name == "ContainerAttachWebsocket");
        let needs = match method {
            "GET" | "HEAD" if websocket => Some("websocket"),
            "GET" | "HEAD" => None,
            "DELETE" | "PUT" | "PATCH" => Some(method),
            _ => Some("POST"),
        };
        // The proxy's methods, before the tenant is known.
        if let Some(refusal) = method_refusal(grants, needs, "") {
            return refusal;
        }
        let grants = match tenant {
            None => grants,
            Some(None) => {
                return Verdict::Denied(format!(
                "{DENIED}: this client is in no tenant (verified client certificate SHA-256: none)"
            ))
            }
            Some(Some(t)) => {
                let prefix = format!("tenant {}: ", t.name);
                if let Some(refusal) = method_refusal(&t.grants, needs, &prefix) {
                    return refusal;
                }
                &t.grants
            }
        };
        let granted = self
            .switches
            .iter()
            .filter(|s| grants.on.contains(&s.name))
            .flat_map(|s| &s.grants)
            .any(|g| Selector::parse(g).unwrap().matches(op));
        if !granted {
            let message = refusal_message(Decision::NoRule, op, None);
            return Verdict::Refused(format!("{message}; {}", self.hint(op)));
        }
        let (Some(op), Some(guards)) = (op, &grants.guards) else {
            return Verdict::Allowed { path: uri, args };
        };
        let refusal = if op.name == "ImageBuild" {
            check_build_query(guards, &args).err()
        } else if let Some(e) = refuse_unreadable(op.name, guards) {
            Some(e)
        } else {
            Body::of(op.name, guards).and_then(|kind| check_body(kind, guards, b"").err())
        };
        match refusal {
            None => Verdict::Allowed { path: uri, args },
            Some(e) => {
                let mut message = Guards::message(op.name, &e);
                if let Some(g) = e.guard {
                    message.push_str("; ");
                    message.push_str(&Grants::guard_hint(g.name()));
                }
                Verdict::Refused(message)
            }
        }
    }
}

/// The refusal of a request that needs the method switch `needs` (`websocket`: the
/// attach WebSocket, POST's) when `grants` have it off; a tenant's start with `prefix`.
fn method_refusal(grants: &Grants, needs: Option<&str>, prefix: &str) -> Option<Verdict> {
    let needs = needs?;
    let switch = if needs == "websocket" { "POST" } else { needs };
    if grants.methods.contains(switch) {
        return None;
    }
    let why = match needs {
        "websocket" => "the attach WebSocket writes to the container and needs POST=1".into(),
        "POST" if prefix.is_empty() => "read-only, POST requests need POST=1".into(),
        m => format!("{m} requests need {m}=1"),
    };
    Some(Verdict::Denied(format!("{DENIED}: {prefix}{why}")))
}

/// A line of the tenants file whose DAEMON is `-`: its name and its options.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub options: Vec<(String, String)>,
    /// The proxy's switches with the options applied, as the entrypoint does.
    pub grants: Grants,
}

impl Tenant {
    pub fn new(
        list: &AllowList,
        env: &[(String, String)],
        name: &str,
        options: &[(&str, &str)],
    ) -> Tenant {
        let options: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut all = env.to_vec();
        all.extend(options.iter().cloned());
        let mut grants = Grants::from_env(list, &all);
        // POST=0 on the line: what only POST can use and the line does not name grants
        // nothing.
        if !grants.methods.contains("POST") {
            for s in &list.switches {
                if s.post_only && !options.iter().any(|(k, _)| *k == s.name) {
                    grants.on.remove(&s.name);
                }
            }
        }
        Tenant {
            name: name.to_string(),
            options,
            grants,
        }
    }

    /// The line of the tenants file.
    pub fn line(&self) -> String {
        let opts: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{} - auth {}", self.name, opts.join(" "))
    }
}

/// The switches granted by an environment, as docker-entrypoint.sh reads it.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The method switches that are on.
    pub methods: BTreeSet<String>,
    pub on: BTreeSet<String>,
    /// With POST=1: the guards that are on.
    pub guards: Option<Guards>,
}

impl Grants {
    pub fn from_env(list: &AllowList, env: &[(String, String)]) -> Grants {
        let raw = |name: &str| -> String {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let value = |name: &str, default: bool| -> bool {
            match raw(name).to_ascii_lowercase().as_str() {
                "" => default,
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                v => panic!("{name}={v}: not a switch value"),
            }
        };
        let methods: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| value(m, false))
            .map(|m| m.to_string())
            .collect();
        let guards = methods.contains("POST").then(|| {
            let mut on: Vec<&str> = GUARD_LIFTS
                .iter()
                .filter(|(var, _)| !value(var, false))
                .map(|(_, g)| *g)
                .collect();
            on.extend(["capabilities", "bind_mounts"]);
            let mut g = Guards::default();
            g.set_guards(&on).unwrap();
            let caps = raw("ALLOW_CAPABILITIES");
            if !caps.is_empty() {
                g.set_capabilities(&caps.split(',').collect::<Vec<_>>())
                    .unwrap();
            }
            let binds = raw("ALLOW_BIND_MOUNTS");
            if !binds.is_empty() {
                g.set_bind_mounts(&binds.split(',').collect::<Vec<_>>())
                    .unwrap();
            }
            g
        });
        Grants {
            methods,
            on: list
                .switches
                .iter()
                .filter(|s| value(&s.name, s.default_on))
                .map(|s| s.name.clone())
                .collect(),
            guards,
        }
    }

    /// The image's hint for a refusal by the guard `name`.
    pub fn guard_hint(name: &str) -> String {
        match name {
            "capabilities" => {
                "this image allows the capabilities listed in ALLOW_CAPABILITIES".into()
            }
            "bind_mounts" => {
                "this image allows bind mounts of the host directories listed in ALLOW_BIND_MOUNTS"
                    .into()
            }
            g => {
                let (var, _) = GUARD_LIFTS.iter().find(|(_, n)| *n == g).unwrap();
                format!("this image allows it with {var}=1")
            }
        }
    }
}

/// The image's answer to one request, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// nginx refuses the request line or the URI itself (400), or the method (405).
    Rejected(u16),
    /// The image's own 403, `{"message": "<this>"}`; nothing reaches the daemon.
    Denied(String),
    /// The module's 403, `{"message":<this, as a JSON string>}`; nothing reaches the
    /// daemon.
    Refused(String),
    /// Passed to the daemon as `path` (re-escaped) and `args` (as sent).
    Allowed { path: Vec<u8>, args: Vec<u8> },
}

impl Verdict {
    /// The body of a 403, as the image sends it.
    pub fn body(&self) -> Option<String> {
        match self {
            Verdict::Denied(m) => Some(format!("{{\"message\": \"{m}\"}}\n")),
            Verdict::Refused(m) => Some(format!("{{\"message\":{}}}\n", json_string(m))),
            _ => None,
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decoding: `None` when a `%` lacks two hex digits.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// nginx's `$uri` and `$args` for a request target (origin form, or absolute form with
/// an `http://` scheme), or the status it refuses the target with.
pub fn normalize(target: &[u8]) -> Result<(Vec<u8>, Vec<u8>), u16> {
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(400);
    }
    let mut rest: Vec<u8> = match target.strip_prefix(b"http://") {
        Some(after) => {
            let host_len = after
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
                .unwrap_or(after.len());
            if host_len == 0 {
                return Err(400);
            }
            let path = &after[host_len..];
            match path.first() {
                None | Some(b'?') => [b"/", path].concat(),
                Some(b'/') => path.to_vec(),
                Some(_) => return Err(400),
            }
        }
        None if target.first() == Some(&b'/') => target.to_vec(),
        None => return Err(400),
    };
    // The path ends at the first raw "?" (the query string follows, up to a "#") or "#".
    let mut args = Vec::new();
    if let Some(end) = rest.iter().position(|&b| b == b'?' || b == b'#') {
        if rest[end] == b'?' {
            args = rest[end + 1..]
                .split(|&b| b == b'#')
                .next()
                .unwrap_or_default()
                .to_vec();
        }
        rest.truncate(end);
    }
    let decoded = percent_decode(&rest).ok_or(400u16)?;
    if decoded.contains(&0) {
        return Err(400);
    }
    // Segments: "" (merged slashes) and "." dropped, ".." pops; a trailing slash stays.
    let mut segments: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = decoded[1..].split(|&b| b == b'/').collect();
    for seg in &parts {
        match *seg {
            b"" | b"." => {}
            b".." => {
                segments.pop().ok_or(400u16)?;
            }
            s => segments.push(s),
        }
    }
    let trailing = matches!(parts.last(), Some(&(b"" | b"." | b"..")));
    let mut uri = b"/".to_vec();
    uri.extend(segments.join(&b'/'));
    if trailing && !segments.is_empty() {
        uri.push(b'/');
    }
    Ok((uri, args))
}

// --- the generator -----------------------------------------------------------------

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// First path segments: the API's, and a few that are not.
const TOP: &[&str] = &[
    "containers",
    "containers",
    "containers",
    "exec",
    "exec",
    "images",
    "_ping",
    "_ping",
    "version",
    "info",
    "events",
    "volumes",
    "networks",
    "build",
    "system",
    "swarm",
    "auth",
    "session",
    "grpc",
    "plugins",
    "secrets",
    "configs",
    "services",
    "tasks",
    "nodes",
    "distribution",
    "commit",
    "containersX",
    "_pings",
    "Containers",
];

/// What follows /containers/{id}.
const CONTAINER_OPS: &[&str] = &[
    "json", "start", "stop", "kill", "restart", "pause", "unpause", "attach", "logs", "top",
    "wait", "exec", "archive", "export", "stats", "resize", "update", "rename", "changes",
];

/// Any segment, for random paths and insertions.
const WORDS: &[&str] = &[
    "containers",
    "exec",
    "images",
    "_ping",
    "version",
    "info",
    "events",
    "attach",
    "ws",
    "json",
    "start",
    "stop",
    "kill",
    "restart",
    "pause",
    "volumes",
    "networks",
    "build",
    "create",
    "prune",
    "system",
    "df",
    "swarm",
    "init",
    "auth",
    "v1.41",
    "a",
    "nds-no-such-x",
];

const VERSIONS: &[&str] = &[
    "v1.41", "v1.41", "v1.24", "v1.47", "v1", "v1.", "v.", "v..", "v", "vx", "V1.41", "v1.41a",
    "v1,41", "v-1", "v1.41.0", "v01.41",
];

/// Escapes and raw characters slipped in anywhere.
const SPECIALS: &[&str] = &[
    "%00", "%0a", "%0d", "%09", "%7f", "%5c", "%5C", "%25", "%2525", "%23", "%3f", "%3F", "%2e",
    "%2E", "%2e%2e", "%2f", "%2F", "%ff", "%c3%a9", "%20", "%zz", "%4", "%", "%%", "%2", "\\", "+",
    "~", ";", ":", "@", "!", "'", "(", ")", "*", ",", "=", "$", "&", "#", "#frag",
];

const QUERIES: &[&str] = &[
    "",
    "all=1",
    "x=/_ping",
    "/../containers/json",
    "stream=1&stdin=1&stdout=1",
    "fromImage=nds-nothing&tag=latest",
    "a=%2f..%2fcontainers",
    "q=%00",
    "x=1#y",
    "x?y",
    "%zz",
    "#frag",
    "/containers/json",
];

/// One generated request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
}

fn id(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => (rng.pick(&["...", "..x", ".x", "a.b", "nds_x", "-", "x%2fy"])).to_string(),
        1 => "nds-parent/alias".to_string(),
        _ => format!("nds-no-such-{:04x}", rng.next_u64() & 0xffff),
    }
}

/// Path segments (not yet escaped) shaped like an API call, or random words.
fn segments(rng: &mut Rng) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if rng.chance(20) {
        let n = rng.below(5) + 1;
        return (0..n).map(|_| rng.pick(WORDS).to_string()).collect();
    }
    let top = rng.pick(TOP);
    let mut v = vec![top.to_string()];
    match top {
        "containers" => match rng.below(6) {
            0 => v.extend(s(&[rng.pick(&["json", "create", "prune"])])),
            1 => v.extend([id(rng), "attach".into(), "ws".into()]),
            2 => v.push(id(rng)),
            _ => v.extend([id(rng), rng.pick(CONTAINER_OPS).to_string()]),
        },
        "exec" => v.extend([id(rng), rng.pick(&["start", "json", "resize"]).to_string()]),
        _ => match rng.below(4) {
            0 => {}
            1 => v.push(
                rng.pick(&["json", "create", "prune", "df", "init"])
                    .to_string(),
            ),
            2 => v.push(id(rng)),
            _ => v.extend([id(rng), "json".into()]),
        },
    }
    v
}

/// One request: API-shaped or random segments, dot segments, doubled and trailing
/// slashes, changed case, escapes of any character, a version prefix, a query string.
/// dockerd's routes, as the logic crate's tests list them: `(method, path template)`.
fn routes() -> Vec<(&'static str, &'static str)> {
    include_str!("../../logic/tests/data/docker-routes.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?, cols.next()?))
        })
        .collect()
}

/// A route's path with an id in each `{placeholder}`.
fn route_segments(rng: &mut Rng, template: &str) -> Vec<String> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                id(rng)
            } else {
                seg.to_string()
            }
        })
        .collect()
}

pub fn request(rng: &mut Rng) -> Request {
    // Often one of dockerd's routes, so that most operations are met.
    let route = rng.chance(40).then(|| rng.pick(&routes()));
    let mut segs = match route {
        Some((_, template)) => route_segments(rng, template),
        None => segments(rng),
    };
    for _ in 0..rng.below(4) {
        let at = rng.below(segs.len() + 1);
        match rng.below(7) {
            0 => segs.insert(at, ".".into()),
            1 => {
                segs.insert(at, "..".into());
                segs.insert(at, rng.pick(WORDS).to_string());
            }
            2 => segs.insert(at, "..".into()),
            3 => segs.insert(at, String::new()),
            4 if at < segs.len() => segs[at] = segs[at].to_ascii_uppercase(),
            5 => segs.insert(at, rng.pick(&["...", ".x", "x.", "..a"]).to_string()),
            _ => segs.push(String::new()),
        }
    }
    if rng.chance(50) {
        segs.insert(0, rng.pick(VERSIONS).to_string());
    }
    let plain = format!("/{}", segs.join("/"));
    // Escape a few characters, slashes and dots included, in either hex case (not the
    // leading slash: nginx refuses a target that does not start with one).
    let mut path = String::new();
    let escape_rate = rng.pick(&[0, 0, 0, 3, 10, 25]);
    for (i, c) in plain.chars().enumerate() {
        if i > 0 && rng.chance(escape_rate) {
            let e = format!("%{:02x}", c as u32);
            path.push_str(&if rng.chance(50) {
                e.to_ascii_uppercase()
            } else {
                e
            });
        } else {
            path.push(c);
        }
    }
    if rng.chance(12) {
        let mut at = rng.below(path.len() + 1);
        while !path.is_char_boundary(at) {
            at -= 1;
        }
        path.insert_str(at, rng.pick(SPECIALS));
    }
    if rng.chance(30) {
        path.push('?');
        path.push_str(rng.pick(QUERIES));
    }
    let target = match rng.below(40) {
        0 => format!("http://docker{path}"),
        1 => format!("http://docker{}", rng.pick(&["", "?x=/containers/json"])),
        _ => path,
    };
    let method = match rng.below(100) {
        _ if route.is_some() && rng.chance(80) => route.unwrap().0,
        0..=44 => "GET",
        45..=56 => "HEAD",
        57..=79 => "POST",
        80..=89 => "DELETE",
        90..=94 => "PUT",
        95 => "OPTIONS",
        96 => "PATCH",
        97 => "TRACE",
        98 => "get",
        _ => "GETS",
    };
    Request {
        method: method.to_string(),
        target,
    }
}

/// `n` requests from `seed`.
pub fn requests(seed: u64, n: usize) -> Vec<Request> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| request(&mut rng)).collect()
}

/// A random set of switches, spelled in any accepted way; never one the entrypoint
/// refuses (a POST-only switch or a guard lift without POST=1).
pub fn random_env(list: &AllowList, rng: &mut Rng) -> Vec<(String, String)> {
    let post = rng.chance(50);
    let mut env = Vec::new();
    let spell = |rng: &mut Rng, on: bool| -> &'static str {
        if on {
            rng.pick(&["1", "1", "true", "yes", "on", "TRUE"])
        } else {
            rng.pick(&["0", "false", "no", "off", ""])
        }
    };
    for s in &list.switches {
        let on = if s.default_on {
            !rng.chance(25)
        } else {
            rng.chance(20)
        };
        if on && !post && s.post_only {
            continue;
        }
        if on != s.default_on || rng.chance(20) {
            env.push((s.name.clone(), spell(rng, on).to_string()));
        }
    }
    env.push(("POST".into(), if post { "1" } else { "0" }.into()));
    for m in &METHODS[1..] {
        if rng.chance(30) {
            env.push((m.to_string(), spell(rng, true).to_string()));
        }
    }
    if post {
        for (var, _) in GUARD_LIFTS {
            if rng.chance(25) {
                env.push((var.to_string(), spell(rng, true).to_string()));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(t: &str) -> Result<(String, String), u16> {
        normalize(t.as_bytes()).map(|(u, a)| {
            (
                String::from_utf8_lossy(&u).into_owned(),
                String::from_utf8_lossy(&a).into_owned(),
            )
        })
    }

    fn uri(t: &str) -> String {
        norm(t).unwrap().0
    }

    #[test]
    fn normalizes_like_nginx() {
        assert_eq!(uri("/containers/json"), "/containers/json");
        assert_eq!(uri("//containers//json"), "/containers/json");
        assert_eq!(uri("/_ping/../containers/json"), "/containers/json");
        assert_eq!(uri("/_ping/%2e%2e/containers/json"), "/containers/json");
        assert_eq!(uri("/version/..%2fcontainers/json"), "/containers/json");
        assert_eq!(uri("/%63ontainers%2Fjson"), "/containers/json");
        assert_eq!(uri("/a/."), "/a/");
        assert_eq!(uri("/a/.."), "/");
        assert_eq!(uri("/a/b/.."), "/a/");
        assert_eq!(uri("/a/./b/"), "/a/b/");
        assert_eq!(uri("/."), "/");
        assert_eq!(uri("/..."), "/...");
        assert_eq!(uri("/..a/.b"), "/..a/.b");
        assert_eq!(uri("/%2525"), "/%25");
        assert_eq!(uri("/..%3F"), "/..?");
        assert_eq!(uri("/.%23x"), "/.#x");
        assert_eq!(uri("/a%5cb"), "/a\\b");
        assert_eq!(uri("http://docker"), "/");
        assert_eq!(
            norm("http://docker?x=/c"),
            Ok(("/".to_string(), "x=/c".to_string()))
        );
        assert_eq!(
            norm("/_ping?/containers/json#f"),
            Ok(("/_ping".to_string(), "/containers/json".to_string()))
        );
        assert_eq!(
            norm("/_ping/.?a"),
            Ok(("/_ping/".to_string(), "a".to_string()))
        );
        assert_eq!(norm("/_ping#?a"), Ok(("/_ping".to_string(), String::new())));
        for bad in [
            "/..",
            "/%2e%2e/x",
            "/a/../..",
            "/_ping%00",
            "/%zz",
            "/%4",
            "/a%",
            "/a%?x",
            "/a%2#x",
            "/a b",
            "x",
        ] {
            assert_eq!(norm(bad), Err(400), "{bad}");
        }
    }

    fn grants(list: &AllowList, pairs: &[(&str, &str)]) -> Grants {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Grants::from_env(list, &env)
    }

    #[test]
    fn verdicts_of_the_hand_written_table() {
        let list = AllowList::load();
        let defaults = grants(&list, &[]);
        let containers = grants(&list, &[("CONTAINERS", "1")]);
        let start = grants(&list, &[("ALLOW_START", "1"), ("POST", "1")]);
        let writer = grants(
            &list,
            &[
                ("CONTAINERS", "1"),
                ("POST", "1"),
                ("ALLOW_PRIVILEGED", "1"),
            ],
        );
        let read_only = "denied: read-only, POST requests need POST=1";
        let ws = "denied: the attach WebSocket writes to the container and needs POST=1";
        #[rustfmt::skip]
        let table: &[(&Grants, &str, &str, &str)] = &[
            (&defaults, "GET", "/v1.41/_ping", "allowed"),
            (&defaults, "HEAD", "/_ping?/containers/json", "allowed"),
            (&defaults, "GET", "//containers/json", "refused: this image allows it with CONTAINERS=1"),
            (&defaults, "POST", "/containers/x/stop", read_only),
            (&start, "POST", "/containers/x/stop",
             "refused: this image allows it with ALLOW_STOP=1 or ALLOW_RESTARTS=1"),
            (&start, "POST", "/containers/x/kill", "refused: this image allows it with ALLOW_KILL=1"),
            (&defaults, "GET", "/CONTAINERS/json", "refused: the path is no Docker API endpoint"),
            (&defaults, "GET", "/debug/vars", "refused: no setting of this image allows it"),
            (&defaults, "GET", "/_ping%0a", "denied: malformed path"),
            (&defaults, "GET", "/_ping%5c", "denied: malformed path"),
            (&defaults, "POST", "/_ping", read_only),
            (&defaults, "DELETE", "/containers/x", "denied: DELETE requests need DELETE=1"),
            (&defaults, "get", "/_ping", "400"),
            (&defaults, "TRACE", "/_ping", "405"),
            (&defaults, "TRACE", "/%2e%2e/x", "400"),
            (&containers, "GET", "/containers%2fjson", "allowed"),
            (&containers, "GET", "/v1.41/containers/json/",
             "refused: the path is no Docker API endpoint"),
            (&containers, "GET", "/containers/x/logs", "refused: this image allows it with ALLOW_LOGS=1"),
            (&containers, "GET", "/containers/../exec/x/json",
             "refused: this image allows it with EXEC=1 or ALLOW_EXEC=1"),
            (&containers, "GET", "/containers/x/attach/ws?stream=1", ws),
            // dockerd's /containers/{name:.*}/attach/ws: a legacy link's parent/alias.
            (&containers, "GET", "/v1.41/containers/nds-parent/alias/attach/ws", ws),
            (&start, "POST", "/v1.41/containers/x/start", "allowed"),
            (&start, "POST", "/containers/.../start", "allowed"),
            // dockerd's /containers/{name:.*}/start: a name may have slashes.
            (&start, "POST", "/containers/a/b/start", "allowed"),
            (&start, "POST", "/containers/x/start/",
             "refused: the path is no Docker API endpoint"),
            (&writer, "POST", "/containers/x/stop", "allowed"),
            (&writer, "POST", "/containers/create",
             "refused: ContainerCreate is refused by this proxy: the request body is not valid JSON"),
        ];
        for (grants, method, target, want) in table {
            let got = match list.verdict(grants, method, target) {
                Verdict::Allowed { .. } => "allowed".to_string(),
                Verdict::Denied(msg) => format!("denied: {}", &msg[DENIED.len() + 2..]),
                Verdict::Refused(msg) => format!("refused: {msg}"),
                Verdict::Rejected(status) => status.to_string(),
            };
            let ok = match want.strip_prefix("refused: ") {
                Some(w) if !w.starts_with("ContainerCreate") => {
                    got.starts_with("refused: ") && got.ends_with(&format!("; {w}"))
                }
                Some(w) => got.starts_with(&format!("refused: {w}")),
                None => got == *want,
            };
            assert!(ok, "{method} {target}: got {got:?}, want {want:?}");
        }
        assert_eq!(
            list.verdict(&containers, "GET", "/containers/json?all=1#x"),
            Verdict::Allowed {
                path: b"/containers/json".to_vec(),
                args: b"all=1".to_vec()
            }
        );
    }

    #[test]
    fn switches_and_spellings() {
        let list = AllowList::load();
        let g = grants(
            &list,
            &[
                ("PING", "off"),
                ("IMAGES", "TRUE"),
                ("POST", "yes"),
                ("EXEC", ""),
                ("ALLOW_PRIVILEGED", "1"),
                ("ALLOW_BIND_MOUNTS", "/srv/a,/srv/b"),
            ],
        );
        assert_eq!(g.methods.iter().collect::<Vec<_>>(), ["POST"]);
        let on: Vec<&str> = g.on.iter().map(String::as_str).collect();
        assert_eq!(on, ["EVENTS", "IMAGES", "VERSION"]);
        let guards = g.guards.as_ref().unwrap();
        assert_eq!(guards.bind_mounts, ["/srv/a", "/srv/b"]);
        assert!(grants(&list, &[]).guards.is_none());
        // The POST-only switches are there for their writes: each selector grants one.
        for s in &list.switches {
            if s.post_only {
                for g in &s.grants {
                    let sel = Selector::parse(g).unwrap();
                    assert!(
                        docker_stream_logic::operation::OPERATIONS
                            .iter()
                            .any(|op| sel.matches(Some(op)) && op.writes),
                        "{} ({g}) grants no write",
                        s.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_generator_is_reproducible_and_varied() {
        let a = requests(7, 500);
        let b = requests(7, 500);
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.target == y.target && x.method == y.method));
        let list = AllowList::load();
        let g = grants(
            &list,
            &[
                ("CONTAINERS", "1"),
                ("IMAGES", "1"),
                ("EXEC", "1"),
                ("POST", "1"),
                ("DELETE", "1"),
            ],
        );
        let mut kinds = [0; 3];
        for r in &a {
            kinds[match list.verdict(&g, &r.method, &r.target) {
                Verdict::Allowed { .. } => 0,
                Verdict::Denied(_) | Verdict::Refused(_) => 1,
                Verdict::Rejected(_) => 2,
            }] += 1;
        }
        assert!(kinds.iter().all(|&k| k >= 25), "{kinds:?}");
    }
}
