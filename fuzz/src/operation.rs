//! `classify` on arbitrary method and path bytes (the input up to its first space is the
//! method, the rest the path; without a space all of it is the path, with `GET`): never
//! panics, and agrees with a plain reference that does what dockerd's gorilla/mux does,
//! step by step: Go's `path.Clean` (a redirect unless it leaves the path as it is), then
//! each table entry's template, with and without `/v{version:[0-9.]+}` in front, matched
//! by backtracking over the template's parts in table order. Also: the object, version and
//! checkpoint are slices of the input; a found operation's method matches the request's;
//! putting `/v1.41` or `/v1.51` in front of a path classified without a version gives the
//! same operation and object.

use docker_stream_logic::operation::{classify, Classified, OPERATIONS};

/// Longer paths are checked for the invariants only, to keep the backtracking cheap.
const REFERENCE_MAX: usize = 4096;

/// A part of a template.
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    Lit(&'a [u8]),
    Var(&'a str, Pattern),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pattern {
    /// `.*` (Go's `.` is any character but a newline).
    DotStar,
    /// `.+`
    DotPlus,
    /// `[^/]+`, gorilla/mux's default.
    NotSlash,
    /// `[0-9.]+`, dockerd's versionMatcher.
    DockerVersion,
    /// `[0-9][0-9A-Za-z.-]*`, podman's VersionedPath.
    PodmanVersion,
    /// Any bytes: what follows `/libpod/`.
    Rest,
}

impl Pattern {
    fn accepts(self, i: usize, b: u8) -> bool {
        match self {
            Pattern::DotStar | Pattern::DotPlus => b != b'\n',
            Pattern::NotSlash => b != b'/',
            Pattern::DockerVersion => b.is_ascii_digit() || b == b'.',
            Pattern::PodmanVersion if i == 0 => b.is_ascii_digit(),
            Pattern::PodmanVersion => b.is_ascii_alphanumeric() || b == b'.' || b == b'-',
            Pattern::Rest => true,
        }
    }

    fn min_len(self) -> usize {
        match self {
            Pattern::DotStar | Pattern::Rest => 0,
            _ => 1,
        }
    }
}

/// Parses a gorilla/mux template (`/a/{name:.*}/b`) into parts.
fn parse(template: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("closed variable");
        if open > 0 {
            parts.push(Part::Lit(&rest.as_bytes()[..open]));
        }
        let spec = &rest[open + 1..close];
        let (name, pattern) = match spec.split_once(':') {
            None => (spec, Pattern::NotSlash),
            Some((name, ".*")) => (name, Pattern::DotStar),
            Some((name, ".+")) => (name, Pattern::DotPlus),
            Some((name, "[0-9.]+")) => (name, Pattern::DockerVersion),
            Some((name, "[0-9][0-9A-Za-z.-]*")) => (name, Pattern::PodmanVersion),
            Some((name, "rest")) => (name, Pattern::Rest),
            Some(other) => panic!("pattern {other:?}"),
        };
        parts.push(Part::Var(name, pattern));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.as_bytes()));
    }
    parts
}

/// Anchored match of all of `s` by backtracking, longest variable first as Go's
/// leftmost-first semantics prefer; records each variable's byte range.
fn matches<'t>(
    parts: &[Part<'t>],
    s: &[u8],
    at: usize,
    vars: &mut Vec<(&'t str, usize, usize)>,
) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return at == s.len();
    };
    match *first {
        Part::Lit(lit) => s[at..].starts_with(lit) && matches(rest, s, at + lit.len(), vars),
        Part::Var(name, pattern) => {
            let run = s[at..]
                .iter()
                .enumerate()
                .take_while(|&(i, &b)| pattern.accepts(i, b))
                .count();
            for len in (pattern.min_len()..=run).rev() {
                if let Some(Part::Lit(lit)) = rest.first() {
                    if !s[at + len..].starts_with(lit) {
                        continue;
                    }
                }
                vars.push((name, at, at + len));
                if matches(rest, s, at + len, vars) {
                    return true;
                }
                vars.pop();
            }
            false
        }
    }
}

/// Go's `path.Clean`, byte for byte.
fn go_path_clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::new();
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        // An empty or `.` element.
        if path[r] == b'/' || (path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/')) {
            r += 1;
        } else if path[r] == b'.' && path[r + 1] == b'.' && (r + 2 == n || path[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// gorilla/mux's cleanPath: the path it redirects to when it differs from the request's.
fn mux_clean_path(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut p = path.to_vec();
    if p[0] != b'/' {
        p.insert(0, b'/');
    }
    let mut np = go_path_clean(&p);
    if p.ends_with(b"/") && np != b"/" {
        np.push(b'/');
    }
    np
}

/// (operation index, version, object, checkpoint) as byte ranges of the path.
type Expected = (
    Option<usize>,
    Option<(usize, usize)>,
    Option<(usize, usize)>,
    Option<(usize, usize)>,
);

fn reference(method: &[u8], path: &[u8]) -> Expected {
    if mux_clean_path(path) != path {
        return (None, None, None, None);
    }
    for (i, op) in OPERATIONS.iter().enumerate() {
        let method_ok = op.method.as_str() == "*" || op.method.as_str().as_bytes() == method;
        if !method_ok {
            continue;
        }
        let templates: Vec<String> = if op.section == "libpod" {
            vec![
                "/v{version:[0-9][0-9A-Za-z.-]*}/libpod/{path:rest}".into(),
                "/libpod/{path:rest}".into(),
            ]
        } else if op.versioned {
            vec![format!("/v{{version:[0-9.]+}}{}", op.path), op.path.into()]
        } else {
            vec![op.path.into()]
        };
        for t in &templates {
            let mut vars = Vec::new();
            if matches(&parse(t), path, 0, &mut vars) {
                let var = |f: &dyn Fn(&str) -> bool| {
                    vars.iter().find(|(n, _, _)| f(n)).map(|&(_, a, b)| (a, b))
                };
                let object = if op.section == "libpod" {
                    None
                } else {
                    var(&|n| !matches!(n, "version" | "checkpoint" | "anyroute"))
                };
                return (
                    Some(i),
                    var(&|n| n == "version"),
                    object,
                    var(&|n| n == "checkpoint"),
                );
            }
        }
    }
    let mut vars = Vec::new();
    let version = matches(
        &parse("/v{version:[0-9.]+}/{path:rest}"),
        path,
        0,
        &mut vars,
    )
    .then(|| (vars[0].1, vars[0].2));
    (None, version, None, None)
}

/// The byte range of `part` within `whole`; panics when it is not a slice of it.
fn range_in(whole: &[u8], part: &[u8]) -> (usize, usize) {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    assert!(
        start <= whole.len() && part.len() <= whole.len() - start,
        "not a slice of the input"
    );
    (start, start + part.len())
}

fn describe(c: &Classified<'_>) -> String {
    format!(
        "{:?} version {:?} object {:?} checkpoint {:?}",
        c.operation.map(|o| (o.method, o.path, o.name)),
        c.version,
        c.object.map(String::from_utf8_lossy),
        c.checkpoint.map(String::from_utf8_lossy),
    )
}

/// The fuzz target's body: panics when an invariant does not hold.
pub fn check(data: &[u8]) {
    let (method, path) = match data.iter().position(|&b| b == b' ') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"GET"[..], data),
    };
    let c = classify(method, path);
    let ctx = || {
        format!(
            "{:?} {:?}: {}",
            String::from_utf8_lossy(method),
            String::from_utf8_lossy(path),
            describe(&c)
        )
    };

    let version = c.version.map(|v| range_in(path, v.as_bytes()));
    let object = c.object.map(|o| range_in(path, o));
    let checkpoint = c.checkpoint.map(|o| range_in(path, o));
    if let Some(op) = c.operation {
        assert!(op.method.matches(method), "{}", ctx());
    } else {
        assert_eq!((object, checkpoint), (None, None), "{}", ctx());
    }

    if path.len() <= REFERENCE_MAX {
        let index = c.operation.map(|op| {
            OPERATIONS
                .iter()
                .position(|o| std::ptr::eq(o, op))
                .expect("an operation of the table")
        });
        assert_eq!(
            (index, version, object, checkpoint),
            reference(method, path),
            "{}",
            ctx()
        );
    }

    if let (Some(op), None) = (c.operation, c.version) {
        if op.versioned {
            for prefix in ["/v1.41", "/v1.51"] {
                let mut prefixed = prefix.as_bytes().to_vec();
                prefixed.extend_from_slice(path);
                let p = classify(method, &prefixed);
                assert!(
                    p.operation.is_some_and(|o| std::ptr::eq(o, op)),
                    "{prefix}: {} then {}",
                    ctx(),
                    describe(&p)
                );
                assert_eq!(p.version, Some(&prefix[2..]), "{}", ctx());
                assert_eq!(
                    (p.object, p.checkpoint),
                    (c.object, c.checkpoint),
                    "{}",
                    ctx()
                );
            }
        }
    }
}
