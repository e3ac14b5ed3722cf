//! A reference model of the image's allow-list, and a generator of request targets to
//! hold the image against it (tests/image_allowlist_gen.rs).
//!
//! The model is written from the documented behaviour, not from the rendered nginx
//! configuration:
//! - nginx's request line and `$uri`: percent-decoding (a `%` without two hex digits and
//!   `%00` are a 400; a decoded `%`, `?` or `#` is data), `//` merged, `.` and `..`
//!   segments resolved (a `..` above the root is a 400), the query string and a fragment
//!   cut off at the first raw `?` or `#`;
//! - image/allowlist: the first line whose pattern matches the whole `$uri`, after an
//!   optional `/v<version>` prefix, decides; control characters, backslashes and dot
//!   segments are never allowed; no line: denied;
//! - writes (any method but GET and HEAD, and the attach WebSocket, which dockerd routes
//!   as `/containers/{name:.*}/attach/ws`, a name with slashes included: a legacy link's
//!   `parent/alias`) need POST=1;
//! - the switches, their defaults and spellings as docker-entrypoint.sh reads them.

use std::collections::BTreeSet;

use regex::bytes::{Regex, RegexBuilder};

pub const DENIED: &str = "access denied by the Docker API proxy";

/// The optional API version prefix of every path.
const VERSION_PREFIX: &str = "(?:/v[0-9.]+)?";

/// Switches on by default (Tecnativa's defaults).
const DEFAULT_ON: &[&str] = &["EVENTS", "PING", "VERSION"];

/// Switches whose endpoints only take POST: the entrypoint refuses them with POST=0.
pub const POST_ONLY: &[&str] = &[
    "ALLOW_START",
    "ALLOW_STOP",
    "ALLOW_RESTARTS",
    "ALLOW_PAUSE",
    "ALLOW_UNPAUSE",
    "AUTH",
    "BUILD",
    "COMMIT",
    "SESSION",
    "GRPC",
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
pub struct Rule {
    pub names: Vec<String>,
    pub pattern: String,
    re: Regex,
}

pub struct AllowList {
    pub rules: Vec<Rule>,
    /// Every switch name, in order of first appearance.
    pub switches: Vec<String>,
    bad_chars: Regex,
    bad_dots: Regex,
    attach_ws: Regex,
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
        let mut rules = Vec::new();
        let mut switches: Vec<String> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split_whitespace();
            let (Some(vars), Some(pattern), None) = (cols.next(), cols.next(), cols.next()) else {
                panic!("allowlist line {line:?}: expected two columns");
            };
            let names: Vec<String> = vars.split(',').map(str::to_string).collect();
            for n in &names {
                if !switches.contains(n) {
                    switches.push(n.clone());
                }
            }
            rules.push(Rule {
                re: pcre(&format!("^{VERSION_PREFIX}{pattern}$")),
                names,
                pattern: pattern.to_string(),
            });
        }
        AllowList {
            rules,
            switches,
            bad_chars: pcre(r"[\x00-\x1f\x7f\\]"),
            bad_dots: pcre(r"(^|/)\.\.?(/|$)"),
            attach_ws: pcre(&format!("^{VERSION_PREFIX}/containers/.+/attach/ws(/.*)?$")),
        }
    }

    /// What the image does with `method target` under `grants`.
    pub fn verdict(&self, grants: &Grants, method: &str, target: &str) -> Verdict {
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
        let writes = !matches!(method, "GET" | "HEAD") || self.attach_ws.is_match(&uri);
        if writes && !grants.post {
            return Verdict::Denied(format!(
                "{DENIED}: read-only, requests that change state need POST=1"
            ));
        }
        let reason = if self.bad_chars.is_match(&uri) || self.bad_dots.is_match(&uri) {
            "malformed path".to_string()
        } else {
            match self.rules.iter().find(|r| r.re.is_match(&uri)) {
                None => "endpoint not in the allow-list".to_string(),
                Some(r) if r.names.iter().any(|n| grants.on.contains(n)) => {
                    return Verdict::Allowed { path: uri, args };
                }
                Some(r) if r.names.len() == 1 => format!("this endpoint needs {}=1", r.names[0]),
                Some(r) => {
                    let all: Vec<String> = r.names.iter().map(|n| format!("{n}=1")).collect();
                    format!("this endpoint needs one of {}", all.join(", "))
                }
            }
        };
        Verdict::Denied(format!("{DENIED}: {reason}"))
    }
}

/// The switches granted by an environment, as docker-entrypoint.sh reads it.
#[derive(Debug, Clone)]
pub struct Grants {
    pub post: bool,
    pub on: BTreeSet<String>,
}

impl Grants {
    pub fn from_env(list: &AllowList, env: &[(String, String)]) -> Grants {
        let value = |name: &str| -> bool {
            let v = env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default();
            match v.as_str() {
                "" => DEFAULT_ON.contains(&name),
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => panic!("{name}={v}: not a switch value"),
            }
        };
        Grants {
            post: value("POST"),
            on: list.switches.iter().filter(|n| value(n)).cloned().collect(),
        }
    }
}

/// The image's answer to one request, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// nginx refuses the request line or the URI itself (400), or the method (405).
    Rejected(u16),
    /// 403 with `{"message": "<this>"}`; nothing reaches the daemon.
    Denied(String),
    /// Passed to the daemon as `path` (re-escaped) and `args` (as sent).
    Allowed { path: Vec<u8>, args: Vec<u8> },
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
pub fn request(rng: &mut Rng) -> Request {
    let mut segs = segments(rng);
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
/// refuses (a POST-only switch without POST=1).
pub fn random_env(list: &AllowList, rng: &mut Rng) -> Vec<(String, String)> {
    let post = rng.chance(50);
    let mut env = Vec::new();
    for n in &list.switches {
        let default_on = DEFAULT_ON.contains(&n.as_str());
        let on = if default_on {
            !rng.chance(25)
        } else {
            rng.chance(20)
        };
        if on && !post && POST_ONLY.contains(&n.as_str()) {
            continue;
        }
        let value = if on {
            rng.pick(&["1", "1", "true", "yes", "on", "TRUE"])
        } else if default_on {
            rng.pick(&["0", "false", "no", "off"])
        } else if rng.chance(80) {
            continue;
        } else {
            rng.pick(&["0", "", "no"])
        };
        env.push((n.clone(), value.to_string()));
    }
    env.push(("POST".into(), if post { "1" } else { "0" }.into()));
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

    #[test]
    fn verdicts_of_the_hand_written_table() {
        let list = AllowList::load();
        let env = |pairs: &[(&str, &str)]| -> Grants {
            let env: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Grants::from_env(&list, &env)
        };
        let defaults = env(&[]);
        let containers = env(&[("CONTAINERS", "1")]);
        let start = env(&[("ALLOW_START", "1"), ("POST", "1")]);
        let read_only = "read-only, requests that change state need POST=1";
        #[rustfmt::skip]
        let table: &[(&Grants, &str, &str, &str)] = &[
            (&defaults, "GET", "/v1.41/_ping", "allowed"),
            (&defaults, "HEAD", "/_ping?/containers/json", "allowed"),
            (&defaults, "GET", "//containers/json", "this endpoint needs CONTAINERS=1"),
            (&defaults, "GET", "/containers/x/stop",
             "this endpoint needs one of CONTAINERS=1, ALLOW_STOP=1, ALLOW_RESTARTS=1"),
            (&defaults, "GET", "/CONTAINERS/json", "endpoint not in the allow-list"),
            (&defaults, "GET", "/_ping%0a", "malformed path"),
            (&defaults, "GET", "/_ping%5c", "malformed path"),
            (&defaults, "POST", "/_ping", read_only),
            (&defaults, "get", "/_ping", "400"),
            (&defaults, "TRACE", "/_ping", "405"),
            (&defaults, "TRACE", "/%2e%2e/x", "400"),
            (&containers, "GET", "/containers%2fjson", "allowed"),
            (&containers, "GET", "/v1.41/containers/json/", "allowed"),
            (&containers, "GET", "/containers/../exec/x/json", "this endpoint needs EXEC=1"),
            (&containers, "GET", "/containers/x/attach/ws?stream=1", read_only),
            // dockerd's /containers/{name:.*}/attach/ws: a legacy link's parent/alias.
            (&containers, "GET", "/v1.41/containers/nds-parent/alias/attach/ws", read_only),
            (&containers, "GET", "/containers/a%2fb/attach/ws", read_only),
            (&start, "POST", "/v1.41/containers/x/start", "allowed"),
            (&start, "POST", "/containers/.../start", "allowed"),
            (&start, "POST", "/containers/x/start/", "this endpoint needs CONTAINERS=1"),
            (&start, "POST", "/containers/a/b/start", "this endpoint needs CONTAINERS=1"),
        ];
        for (grants, method, target, want) in table {
            let got = match list.verdict(grants, method, target) {
                Verdict::Allowed { .. } => "allowed".to_string(),
                Verdict::Denied(msg) => msg[DENIED.len() + 2..].to_string(),
                Verdict::Rejected(status) => status.to_string(),
            };
            assert_eq!(got, *want, "{method} {target}");
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
        let g = Grants::from_env(
            &list,
            &[
                ("PING".into(), "off".into()),
                ("IMAGES".into(), "TRUE".into()),
                ("POST".into(), "yes".into()),
                ("EXEC".into(), String::new()),
            ],
        );
        assert!(g.post);
        let on: Vec<&str> = g.on.iter().map(String::as_str).collect();
        assert_eq!(on, ["EVENTS", "IMAGES", "VERSION"]);
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
        let g = Grants::from_env(&list, &[("CONTAINERS".into(), "1".into())]);
        let mut kinds = [0; 3];
        for r in &a {
            kinds[match list.verdict(&g, &r.method, &r.target) {
                Verdict::Allowed { .. } => 0,
                Verdict::Denied(_) => 1,
                Verdict::Rejected(_) => 2,
            }] += 1;
        }
        assert!(kinds.iter().all(|&k| k >= 25), "{kinds:?}");
    }
}
