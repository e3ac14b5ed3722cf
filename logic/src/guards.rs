//! Body guards: what a created container (or exec, update, volume, build) may do, read
//! from the request body as dockerd decodes it ([`crate::gojson`]).
//!
//! | guard | refuses |
//! |---|---|
//! | `privileged` | `HostConfig.Privileged`; an exec's `Privileged` |
//! | `capabilities` | `HostConfig.CapAdd` (and `Capabilities`) entries outside the allowed set; `ALL` |
//! | `devices` | `Devices`, `DeviceRequests` (GPUs), `DeviceCgroupRules`, in a create or an update |
//! | `host_namespaces` | `NetworkMode`, `PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`, `CgroupnsMode` of `host`; an endpoint on the network `host`; a build's `networkmode=host` |
//! | `unconfined` | `SecurityOpt` `seccomp`, `apparmor` or `systempaths` `unconfined`, `label` `disable`; `MaskedPaths`/`ReadonlyPaths` given by the client |
//! | `bind_mounts` | host paths outside the allowed list: `HostConfig.Binds` sources, `Mounts` of type `bind`, volume driver options `device` (in `Mounts` and `VolumeCreate`); `VolumesFrom` |
//!
//! Host paths are compared segment by segment after resolving `.` and `..` as Go's
//! `path.Clean` does: `/srv/data` allows `/srv/data` and `/srv/data/x`, not
//! `/srv/database`, and `/srv/data/../../etc` is `/etc`. Symbolic links on the host are
//! not resolved: a link inside an allowed directory reaches wherever it points.
//!
//! A body that cannot be decoded, or a guarded field of the wrong type (which dockerd
//! would also refuse), is refused.

use crate::gojson::{Json, Struct, TypeError};
use thiserror::Error;

/// One guard, by its directive name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Privileged,
    Capabilities,
    Devices,
    HostNamespaces,
    Unconfined,
    BindMounts,
}

impl Guard {
    pub const ALL: [Guard; 6] = [
        Guard::Privileged,
        Guard::Capabilities,
        Guard::Devices,
        Guard::HostNamespaces,
        Guard::Unconfined,
        Guard::BindMounts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Guard::Privileged => "privileged",
            Guard::Capabilities => "capabilities",
            Guard::Devices => "devices",
            Guard::HostNamespaces => "host_namespaces",
            Guard::Unconfined => "unconfined",
            Guard::BindMounts => "bind_mounts",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GuardConfError {
    #[error("unknown guard \"{0}\" (privileged, capabilities, devices, host_namespaces, unconfined, bind_mounts, all, off)")]
    Unknown(String),
    #[error("\"off\" and \"all\" stand alone")]
    NotAlone,
    #[error("invalid capability \"{0}\"")]
    Capability(String),
    #[error("\"{0}\" is not an absolute path")]
    NotAbsolute(String),
}

/// The guards of a level and what they let through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guards {
    on: u8,
    /// Capabilities `CapAdd` may name, normalized (`NET_ADMIN`).
    pub capabilities: Vec<String>,
    /// Host paths bind mounts may use, cleaned.
    pub bind_mounts: Vec<String>,
}

impl Guards {
    pub fn is_on(&self, g: Guard) -> bool {
        self.on & g.bit() != 0
    }

    pub fn any(&self) -> bool {
        self.on != 0
    }

    /// `docker_api_guard` values: guard names, `all`, or `off`.
    pub fn set_guards(&mut self, args: &[&str]) -> Result<(), GuardConfError> {
        if args.len() > 1 && args.iter().any(|a| *a == "off" || *a == "all") {
            return Err(GuardConfError::NotAlone);
        }
        let mut on = 0;
        for a in args {
            match *a {
                "off" => {}
                "all" => Guard::ALL.iter().for_each(|g| on |= g.bit()),
                name => match Guard::ALL.iter().find(|g| g.name() == name) {
                    Some(g) => on |= g.bit(),
                    None => return Err(GuardConfError::Unknown(name.to_owned())),
                },
            }
        }
        self.on = on;
        Ok(())
    }

    pub fn set_capabilities(&mut self, args: &[&str]) -> Result<(), GuardConfError> {
        self.capabilities = args
            .iter()
            .map(|a| {
                let c = normalize_capability(a);
                let valid = !c.is_empty()
                    && c != "ALL"
                    && c.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if valid {
                    Ok(c)
                } else {
                    Err(GuardConfError::Capability((*a).to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    pub fn set_bind_mounts(&mut self, args: &[&str]) -> Result<(), GuardConfError> {
        self.bind_mounts = args
            .iter()
            .map(|a| {
                if a.starts_with('/') {
                    Ok(clean_path(a))
                } else {
                    Err(GuardConfError::NotAbsolute((*a).to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Takes from `prev` what this level did not set itself (`set`: guards, capabilities,
    /// bind mounts), as nginx merges a directive per level.
    pub fn inherit(&mut self, prev: &Guards, set: [bool; 3]) {
        if !set[0] {
            self.on = prev.on;
        }
        if !set[1] {
            self.capabilities.clone_from(&prev.capabilities);
        }
        if !set[2] {
            self.bind_mounts.clone_from(&prev.bind_mounts);
        }
    }

    /// The message of a refusal for operation `op`.
    pub fn message(op: &str, r: &Refusal) -> String {
        match r.guard {
            Some(g) => format!(
                "{op} with {} is refused by this proxy (docker_api_guard {})",
                r.message,
                g.name()
            ),
            None => format!(
                "{op} is refused by this proxy: {}; a guarded request is checked whole or not at all",
                r.message
            ),
        }
    }

    fn bind_allowed(&self, host_path: &str) -> bool {
        let p = clean_path(host_path);
        self.bind_mounts.iter().any(|allowed| {
            allowed == "/"
                || p == *allowed
                || (p.starts_with(allowed.as_str()) && p.as_bytes()[allowed.len()] == b'/')
        })
    }
}

/// As dockerd normalizes `CapAdd`: upper case, without a `CAP_` prefix.
fn normalize_capability(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_owned).unwrap_or(up)
}

/// Go's `path.Clean` for an absolute path.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Why a guard refused a request: the message, and the guard that would have to be
/// lifted.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub guard: Option<Guard>,
    pub message: String,
}

impl Refusal {
    fn by(guard: Guard, what: String) -> Refusal {
        Refusal {
            guard: Some(guard),
            message: what,
        }
    }

    fn unreadable(message: String) -> Refusal {
        Refusal {
            guard: None,
            message,
        }
    }
}

impl From<TypeError> for Refusal {
    fn from(e: TypeError) -> Refusal {
        Refusal::unreadable(e.to_string())
    }
}

/// The bodies guards read, by operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    ContainerCreate,
    ContainerExec,
    ContainerUpdate,
    VolumeCreate,
    /// `ServiceCreate`, `ServiceUpdate`: a swarm service spec.
    Service,
    /// `PluginPull`, `PluginUpgrade`: the privileges granted to the plugin.
    PluginPrivileges,
    /// `PluginSet`: settings, some of which point mounts and devices at the host.
    PluginSet,
    /// `ContainerStart` with a body: API versions before 1.24 (which dockerd 24 and
    /// older still accept) take a HostConfig there, applied at the start.
    ContainerStart,
}

impl Body {
    /// The body to read for operation `name` under `guards`; `None` when no guard that
    /// is on looks at it.
    pub fn of(name: &str, guards: &Guards) -> Option<Body> {
        use Guard::*;
        let (body, relevant): (Body, &[Guard]) = match name {
            "ContainerCreate" => (Body::ContainerCreate, &Guard::ALL),
            "ContainerExec" => (Body::ContainerExec, &[Privileged]),
            "ContainerUpdate" => (Body::ContainerUpdate, &[Devices]),
            "VolumeCreate" => (Body::VolumeCreate, &[BindMounts]),
            "ServiceCreate" | "ServiceUpdate" => (Body::Service, &Guard::ALL),
            "PluginPull" | "PluginUpgrade" => (Body::PluginPrivileges, &Guard::ALL),
            "PluginSet" => (Body::PluginSet, &[BindMounts, Devices]),
            "ContainerStart" => (Body::ContainerStart, &Guard::ALL),
            _ => return None,
        };
        relevant.iter().any(|g| guards.is_on(*g)).then_some(body)
    }
}

/// Checks a body of `kind` against `guards`.
pub fn check_body(kind: Body, guards: &Guards, body: &[u8]) -> Result<(), Refusal> {
    // A start without a body is every start of API 1.24 and later.
    if kind == Body::ContainerStart && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let json = Json::parse(body)
        .map_err(|e| Refusal::unreadable(format!("the request body is not valid JSON ({e})")))?;
    match kind {
        Body::PluginPrivileges => return check_plugin_privileges(guards, &json, ""),
        Body::PluginSet => return check_plugin_settings(guards, &json),
        _ => {}
    }
    let root = Struct::root(&json, "")?;
    match kind {
        Body::ContainerCreate => check_create(guards, &root),
        Body::ContainerExec => {
            if guards.is_on(Guard::Privileged) && root.bool("Privileged")? {
                return Err(Refusal::by(
                    Guard::Privileged,
                    "a privileged exec (Privileged)".into(),
                ));
            }
            Ok(())
        }
        Body::ContainerUpdate => check_devices(guards, &root),
        Body::VolumeCreate => check_driver_options(guards, &root, "DriverOpts"),
        Body::Service => check_service(guards, &root),
        Body::ContainerStart => check_host_config(guards, &root),
        Body::PluginPrivileges | Body::PluginSet => unreachable!("checked above"),
    }
}

/// A swarm service spec: its containers' mounts, capabilities, confinement and networks,
/// and the privileges of a plugin it would install on every node.
fn check_service(guards: &Guards, root: &Struct<'_>) -> Result<(), Refusal> {
    let task = root.child("TaskTemplate")?;
    let cs = task.child("ContainerSpec")?;
    if guards.is_on(Guard::Capabilities) {
        check_capabilities(guards, &cs, "CapabilityAdd")?;
    }
    if guards.is_on(Guard::Unconfined) {
        let privileges = cs.child("Privileges")?;
        let seccomp = privileges.child("Seccomp")?;
        let apparmor = privileges.child("AppArmor")?;
        let selinux = privileges.child("SELinuxContext")?;
        let unconfined = seccomp
            .string("Mode")?
            .is_some_and(|m| m.eq_ignore_ascii_case("unconfined"))
            || apparmor
                .string("Mode")?
                .is_some_and(|m| m.eq_ignore_ascii_case("disabled"))
            || selinux.bool("Disable")?;
        if unconfined {
            return Err(Refusal::by(
                Guard::Unconfined,
                format!("unconfined containers ({})", privileges.field_name("")),
            ));
        }
    }
    if guards.is_on(Guard::HostNamespaces) {
        for networks in [task.structs("Networks")?, root.structs("Networks")?] {
            for n in networks {
                if n.string("Target")?
                    .is_some_and(|t| t.eq_ignore_ascii_case("host"))
                {
                    return Err(Refusal::by(
                        Guard::HostNamespaces,
                        format!("the host's network ({} host)", n.field_name("Target")),
                    ));
                }
            }
        }
    }
    check_mounts(guards, &cs)?;
    let plugin = task.child("PluginSpec")?;
    match plugin.last_value("Privileges") {
        None | Some(Json::Null) => Ok(()),
        Some(p) => check_plugin_privileges(guards, p, &plugin.field_name("Privileges")),
    }
}

/// Plugin privileges (`[{"Name": "network", "Value": ["host"]}, ...]`), as the daemon
/// compares them with what the plugin asks for: each one granted must be allowed.
fn check_plugin_privileges(guards: &Guards, v: &Json, path: &str) -> Result<(), Refusal> {
    let items = match v {
        Json::Array(items) => items,
        Json::Null => return Ok(()),
        _ => {
            return Err(Refusal::unreadable(format!(
                "the plugin privileges{} are not an array",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" ({path})")
                }
            )))
        }
    };
    for (i, item) in items.iter().enumerate() {
        let p = Struct::root(item, &format!("{path}[{i}]"))?;
        let name = p.string("Name")?.unwrap_or("");
        let values = p.strings("Value")?;
        if name == "mount" && guards.is_on(Guard::BindMounts) {
            if let Some(m) = values.iter().find(|m| !guards.bind_allowed(m)) {
                return Err(bind_refusal(m, &p.field_name("Value")));
            }
        }
        let refused = match name {
            "network" if values.iter().any(|v| v.eq_ignore_ascii_case("host")) => {
                Some((Guard::HostNamespaces, "the host's network".to_owned()))
            }
            "host pid" | "host ipc" => {
                Some((Guard::HostNamespaces, "a namespace of the host".to_owned()))
            }
            "device" | "allow-all-devices" => Some((Guard::Devices, "host devices".to_owned())),
            "capabilities" => values
                .iter()
                .map(|c| normalize_capability(c))
                .find(|c| !guards.capabilities.contains(c))
                .map(|c| (Guard::Capabilities, format!("the capability {c}"))),
            _ => None,
        };
        if let Some((g, text)) = refused {
            if guards.is_on(g) {
                return Err(Refusal::by(
                    g,
                    format!("a plugin granted {text} ({} {name})", p.field_name("Name")),
                ));
            }
        }
    }
    Ok(())
}

fn check_create(guards: &Guards, root: &Struct<'_>) -> Result<(), Refusal> {
    check_host_config(guards, &root.child("HostConfig")?)?;
    if guards.is_on(Guard::HostNamespaces) {
        let nc = root.child("NetworkingConfig")?;
        if nc
            .map_keys("EndpointsConfig")?
            .iter()
            .any(|k| k.eq_ignore_ascii_case("host"))
        {
            return Err(Refusal::by(
                Guard::HostNamespaces,
                "the host's network (NetworkingConfig.EndpointsConfig host)".into(),
            ));
        }
    }
    Ok(())
}

fn check_host_config(guards: &Guards, hc: &Struct<'_>) -> Result<(), Refusal> {
    if guards.is_on(Guard::Privileged) && hc.bool("Privileged")? {
        return Err(Refusal::by(
            Guard::Privileged,
            "a privileged container (HostConfig.Privileged)".into(),
        ));
    }
    if guards.is_on(Guard::Capabilities) {
        for field in ["CapAdd", "Capabilities"] {
            check_capabilities(guards, hc, field)?;
        }
    }
    check_devices(guards, hc)?;
    if guards.is_on(Guard::HostNamespaces) {
        for field in [
            "NetworkMode",
            "PidMode",
            "IpcMode",
            "UTSMode",
            "UsernsMode",
            "CgroupnsMode",
        ] {
            if hc
                .string(field)?
                .is_some_and(|m| m.eq_ignore_ascii_case("host"))
            {
                return Err(Refusal::by(
                    Guard::HostNamespaces,
                    format!("the host's namespace (HostConfig.{field} host)"),
                ));
            }
        }
    }
    if guards.is_on(Guard::Unconfined) {
        for opt in hc.strings("SecurityOpt")? {
            // dockerd splits on "=", and on ":" in the old form.
            let (k, v) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .unwrap_or((opt, ""));
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().to_ascii_lowercase();
            let bad = match k.as_str() {
                // A custom seccomp profile (the CLI sends the file's JSON) can allow
                // everything: the proxy cannot judge it, so only the built-in one passes.
                "seccomp" => v != "builtin",
                "apparmor" | "systempaths" => v == "unconfined",
                // spc_t is SELinux's "super privileged container" type.
                "label" => {
                    v == "disable"
                        || v.strip_prefix("type:")
                            .is_some_and(|t| t == "spc_t" || t == "unconfined_t")
                }
                _ => false,
            };
            if bad {
                return Err(Refusal::by(
                    Guard::Unconfined,
                    format!("an unconfined container (HostConfig.SecurityOpt {opt})"),
                ));
            }
        }
        for field in ["MaskedPaths", "ReadonlyPaths"] {
            if !matches!(hc.last_value(field), None | Some(Json::Null)) {
                return Err(Refusal::by(
                    Guard::Unconfined,
                    format!("paths of /proc unmasked (HostConfig.{field})"),
                ));
            }
        }
    }
    if guards.is_on(Guard::BindMounts) {
        for bind in hc.strings("Binds")? {
            let source = bind.split(':').next().unwrap_or("");
            if source.starts_with('/') && !guards.bind_allowed(source) {
                return Err(bind_refusal(source, "HostConfig.Binds"));
            }
        }
        check_mounts(guards, hc)?;
        if !hc.strings("VolumesFrom")?.is_empty() {
            return Err(Refusal::by(
                Guard::BindMounts,
                "the mounts of another container (HostConfig.VolumesFrom)".into(),
            ));
        }
    }
    Ok(())
}

fn check_capabilities(guards: &Guards, s: &Struct<'_>, field: &str) -> Result<(), Refusal> {
    for cap in s.str_slice(field)? {
        let c = normalize_capability(cap);
        if !guards.capabilities.contains(&c) {
            return Err(Refusal::by(
                Guard::Capabilities,
                format!("the capability {c} ({})", s.field_name(field)),
            ));
        }
    }
    Ok(())
}

/// `Mounts` of a container or service spec: binds, and volumes whose driver options
/// name a device.
fn check_mounts(guards: &Guards, s: &Struct<'_>) -> Result<(), Refusal> {
    if !guards.is_on(Guard::BindMounts) {
        return Ok(());
    }
    for m in s.structs("Mounts")? {
        let ty = m.string("Type")?.unwrap_or("");
        if ty.eq_ignore_ascii_case("bind") {
            let source = m.string("Source")?.unwrap_or("");
            if !guards.bind_allowed(source) {
                return Err(bind_refusal(source, &s.field_name("Mounts")));
            }
        }
        let dc = m.child("VolumeOptions")?.child("DriverConfig")?;
        check_driver_options(guards, &dc, "Options")?;
    }
    Ok(())
}

/// `PluginSet` values `name=value`: `<mount>.source` points a plugin's mount at a host
/// path, `<device>.path` a device.
fn check_plugin_settings(guards: &Guards, v: &Json) -> Result<(), Refusal> {
    let Json::Array(items) = v else {
        return Err(Refusal::unreadable(
            "the plugin settings are not an array of strings".into(),
        ));
    };
    for item in items {
        let Json::String(setting) = item else {
            return Err(Refusal::unreadable(
                "the plugin settings are not an array of strings".into(),
            ));
        };
        let (name, value) = setting.split_once('=').unwrap_or((setting, ""));
        if name.ends_with(".source")
            && guards.is_on(Guard::BindMounts)
            && !guards.bind_allowed(value)
        {
            return Err(bind_refusal(value, name));
        }
        if name.ends_with(".path") && guards.is_on(Guard::Devices) {
            return Err(Refusal::by(
                Guard::Devices,
                format!("host devices (plugin setting {name})"),
            ));
        }
    }
    Ok(())
}

/// Operations refused whole while guards are on, because what they grant is not in a
/// body the proxy can read: a plugin created from an archive declares its own
/// privileges, granted when it is enabled.
pub fn refuse_unreadable(op: &str, guards: &Guards) -> Option<Refusal> {
    let g = [
        Guard::Privileged,
        Guard::Capabilities,
        Guard::Devices,
        Guard::HostNamespaces,
        Guard::BindMounts,
    ]
    .into_iter()
    .find(|g| guards.is_on(*g))?;
    (op == "PluginCreate").then(|| {
        Refusal::by(
            g,
            "a plugin from an archive, whose privileges the proxy cannot read".into(),
        )
    })
}

fn check_devices(guards: &Guards, s: &Struct<'_>) -> Result<(), Refusal> {
    if !guards.is_on(Guard::Devices) {
        return Ok(());
    }
    for field in ["Devices", "DeviceRequests", "DeviceCgroupRules"] {
        if s.len(field)? > 0 {
            return Err(Refusal::by(
                Guard::Devices,
                format!("host devices ({})", s.field_name(field)),
            ));
        }
    }
    Ok(())
}

/// The `local` volume driver mounts `device` (with `o=bind`, any host path).
fn check_driver_options(guards: &Guards, s: &Struct<'_>, field: &str) -> Result<(), Refusal> {
    if !guards.is_on(Guard::BindMounts) {
        return Ok(());
    }
    for (k, v) in s.map(field)? {
        if k != "device" {
            continue;
        }
        let device = match v {
            Json::String(d) => d.as_str(),
            Json::Null => "",
            _ => {
                return Err(Refusal::unreadable(format!(
                    "{}: device is not a string",
                    s.field_name(field)
                )))
            }
        };
        if device.starts_with('/') && !guards.bind_allowed(device) {
            return Err(bind_refusal(device, &s.field_name(field)));
        }
    }
    Ok(())
}

fn bind_refusal(source: &str, field: &str) -> Refusal {
    Refusal::by(
        Guard::BindMounts,
        format!(
            "a bind mount of {} ({field}) outside the allowed host paths",
            clean_path(source)
        ),
    )
}

/// A build's query string: `networkmode=host` runs the build's steps in the host's
/// network namespace. Every spelling of the key and every value is checked (dockerd
/// takes the first).
pub fn check_build_query(guards: &Guards, query: &[u8]) -> Result<(), Refusal> {
    if !guards.is_on(Guard::HostNamespaces) {
        return Ok(());
    }
    for pair in query.split(|b| *b == b'&') {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if percent_decode(k).eq_ignore_ascii_case(b"networkmode")
            && percent_decode(v).eq_ignore_ascii_case(b"host")
        {
            return Err(Refusal::by(
                Guard::HostNamespaces,
                "a build in the host's network (networkmode=host)".into(),
            ));
        }
    }
    Ok(())
}

/// Form decoding (`+` is a space); invalid escapes are kept as they are.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => match (
                s.get(i + 1).and_then(|b| hex(*b)),
                s.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guards(on: &[&str], caps: &[&str], binds: &[&str]) -> Guards {
        let mut g = Guards::default();
        g.set_guards(on).unwrap();
        g.set_capabilities(caps).unwrap();
        g.set_bind_mounts(binds).unwrap();
        g
    }

    fn create(g: &Guards, body: &str) -> Result<(), Refusal> {
        check_body(Body::ContainerCreate, g, body.as_bytes())
    }

    fn refused_by(r: Result<(), Refusal>) -> Option<Guard> {
        r.err().map(|r| r.guard.expect("a guard"))
    }

    #[test]
    fn privileged_in_any_spelling() {
        let g = guards(&["privileged"], &[], &[]);
        for body in [
            r#"{"HostConfig":{"Privileged":true}}"#,
            r#"{"hostconfig":{"privileged":true}}"#,
            r#"{"HostConfig":{"Privileged":false,"PRIVILEGED":true}}"#,
            r#"{"HostConfig":{"Privileged":true,"Privileged":null}}"#,
            r#"{"HostConfig":{"Privileged":true},"HostConfig":{"CapAdd":null}}"#,
        ] {
            assert_eq!(
                refused_by(create(&g, body)),
                Some(Guard::Privileged),
                "{body}"
            );
        }
        for body in [
            r#"{"HostConfig":{"Privileged":false}}"#,
            r#"{"HostConfig":{"Privileged":true,"privileged":false}}"#,
            r#"{"HostConfig":{"Privileged":true},"HostConfig":null}"#,
            r#"{"Image":"x"}"#,
            r#"{"Privileged":true}"#,
        ] {
            assert!(create(&g, body).is_ok(), "{body}");
        }
        // Off: nothing is looked at.
        assert!(create(
            &guards(&["off"], &[], &[]),
            r#"{"HostConfig":{"Privileged":true}}"#
        )
        .is_ok());
        let exec = |b: &str| check_body(Body::ContainerExec, &g, b.as_bytes());
        assert!(exec(r#"{"Cmd":["sh"],"privileged":true}"#).is_err());
        assert!(exec(r#"{"Cmd":["sh"]}"#).is_ok());
    }

    #[test]
    fn capabilities_outside_the_allowed_set() {
        let g = guards(&["capabilities"], &["chown", "CAP_NET_BIND_SERVICE"], &[]);
        assert_eq!(g.capabilities, ["CHOWN", "NET_BIND_SERVICE"]);
        for ok in [
            r#"{"HostConfig":{"CapAdd":["CHOWN","cap_net_bind_service"]}}"#,
            r#"{"HostConfig":{"CapAdd":"chown"}}"#,
            r#"{"HostConfig":{"CapAdd":null,"CapDrop":["ALL"]}}"#,
        ] {
            assert!(create(&g, ok).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#,
            r#"{"HostConfig":{"capadd":"ALL"}}"#,
            r#"{"HostConfig":{"CapAdd":["CHOWN"],"CAPADD":["CAP_SYS_PTRACE"]}}"#,
            r#"{"HostConfig":{"Capabilities":["CAP_SYS_ADMIN"]}}"#,
        ] {
            assert_eq!(
                refused_by(create(&g, bad)),
                Some(Guard::Capabilities),
                "{bad}"
            );
        }
        let mut g = Guards::default();
        assert!(g.set_capabilities(&["ALL"]).is_err());
        assert!(g.set_capabilities(&["net admin"]).is_err());
    }

    #[test]
    fn devices_namespaces_and_confinement() {
        let g = guards(&["devices", "host_namespaces", "unconfined"], &[], &[]);
        for (bad, guard) in [
            (
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}]}}"#,
                Guard::Devices,
            ),
            (
                r#"{"HostConfig":{"DeviceRequests":[{"Count":-1}]}}"#,
                Guard::Devices,
            ),
            (
                r#"{"HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}"#,
                Guard::Devices,
            ),
            (
                r#"{"HostConfig":{"NetworkMode":"host"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"pidmode":"host"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"IpcMode":"HOST"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"UTSMode":"host"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"UsernsMode":"host"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"CgroupnsMode":"host"}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#,
                Guard::HostNamespaces,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["seccomp:unconfined"]}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["apparmor=unconfined"]}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["label=disable"]}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["systempaths=unconfined"]}}"#,
                Guard::Unconfined,
            ),
            (r#"{"HostConfig":{"MaskedPaths":[]}}"#, Guard::Unconfined),
            (
                r#"{"HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"HostConfig":{"SecurityOpt":["label=type:spc_t"]}}"#,
                Guard::Unconfined,
            ),
        ] {
            assert_eq!(refused_by(create(&g, bad)), Some(guard), "{bad}");
        }
        for ok in [
            r#"{"HostConfig":{"Devices":[],"NetworkMode":"none","PidMode":"container:x"}}"#,
            r#"{"HostConfig":{"NetworkMode":"bridge","SecurityOpt":["no-new-privileges"]}}"#,
            r#"{"HostConfig":{"SecurityOpt":["seccomp=builtin","label=level:s0:c1,c2"],"MaskedPaths":null}}"#,
        ] {
            assert!(create(&g, ok).is_ok(), "{ok}");
        }
        let update = |b: &str| check_body(Body::ContainerUpdate, &g, b.as_bytes());
        assert!(update(r#"{"devices":[{"PathOnHost":"/dev/mem"}]}"#).is_err());
        assert!(update(r#"{"Memory":1000000}"#).is_ok());
    }

    #[test]
    fn bind_mounts_outside_the_allowed_paths() {
        let g = guards(&["bind_mounts"], &[], &["/srv/data/", "/var/lib/app"]);
        assert_eq!(g.bind_mounts, ["/srv/data", "/var/lib/app"]);
        for ok in [
            r#"{"HostConfig":{"Binds":["/srv/data:/data","/srv/data/x/../y:/y:ro","named:/v"]}}"#,
            r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/var/lib/app","Target":"/a"}]}}"#,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/a"},{"Type":"tmpfs","Target":"/t"}]}}"#,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind","device":"/srv/data/v"}}}}]}}"#,
        ] {
            assert!(create(&g, ok).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"HostConfig":{"Binds":["/:/host"]}}"#,
            r#"{"HostConfig":{"Binds":["/srv/database:/d"]}}"#,
            r#"{"HostConfig":{"Binds":["/srv/data/../../etc:/etc"]}}"#,
            r#"{"HostConfig":{"Bind\u017f":["/etc:/etc"]}}"#,
            r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"}]}}"#,
            r#"{"HostConfig":{"Mounts":[{"type":"bind","source":"/srv/data","SOURCE":"/"}]}}"#,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind","device":"/"}}}}]}}"#,
            r#"{"HostConfig":{"VolumesFrom":["other"]}}"#,
        ] {
            assert_eq!(
                refused_by(create(&g, bad)),
                Some(Guard::BindMounts),
                "{bad}"
            );
        }
        let volume = |b: &str| check_body(Body::VolumeCreate, &g, b.as_bytes());
        assert!(
            volume(r#"{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/etc"}}"#)
                .is_err()
        );
        assert!(volume(r#"{"Name":"v","DriverOpts":{"device":"/srv/data/v"}}"#).is_ok());
        assert!(volume(r#"{"Name":"v"}"#).is_ok());
        assert_eq!(clean_path("/a/./b//../c/"), "/a/c");
        assert_eq!(clean_path("/../.."), "/");
        assert!(Guards::default().set_bind_mounts(&["srv"]).is_err());
        // "/" allows every path.
        let all = guards(&["bind_mounts"], &[], &["/"]);
        assert!(create(&all, r#"{"HostConfig":{"Binds":["/etc:/etc"]}}"#).is_ok());
    }

    #[test]
    fn unreadable_bodies_and_wrong_types_are_refused() {
        let g = guards(&["all"], &[], &[]);
        for bad in [
            "",
            "{",
            r#"{"HostConfig":{"Privileged":"true"}}"#,
            r#"{"HostConfig":[]}"#,
            r#"{"HostConfig":{"Binds":"/:/host"}}"#,
            r#"{"HostConfig":{"CapAdd":[1]}}"#,
            r#"[]"#,
            r#"{"Image":"x"} {"HostConfig":{"Privileged":true}}"#,
        ] {
            let r = create(&g, bad).unwrap_err();
            assert_eq!(r.guard, None, "{bad}: {r:?}");
        }
        assert!(create(&g, r#"{"Image":"x","HostConfig":{"NetworkMode":"bridge"}}"#).is_ok());
    }

    #[test]
    fn services_and_plugins() {
        let g = guards(&["all"], &["CHOWN"], &["/srv"]);
        let service = |b: &str| check_body(Body::Service, &g, b.as_bytes());
        for (bad, guard) in [
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind","Source":"/"}]}}}"#,
                Guard::BindMounts,
            ),
            (
                r#"{"tasktemplate":{"containerspec":{"capabilityadd":["SYS_ADMIN"]}}}"#,
                Guard::Capabilities,
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"Seccomp":{"Mode":"unconfined"}}}}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"AppArmor":{"Mode":"disabled"}}}}}"#,
                Guard::Unconfined,
            ),
            (
                r#"{"TaskTemplate":{"Networks":[{"Target":"host"}]}}"#,
                Guard::HostNamespaces,
            ),
            (r#"{"Networks":[{"target":"host"}]}"#, Guard::HostNamespaces),
            (
                r#"{"TaskTemplate":{"Runtime":"plugin","PluginSpec":{"Privileges":[{"Name":"allow-all-devices","Value":["true"]}]}}}"#,
                Guard::Devices,
            ),
        ] {
            assert_eq!(refused_by(service(bad)), Some(guard), "{bad}");
        }
        for ok in [
            r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"x","CapabilityAdd":["CHOWN"],"Mounts":[{"Type":"bind","Source":"/srv/x"}]},"Networks":[{"Target":"overlay1"}]}}"#,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"Seccomp":{"Mode":"default"}}}}}"#,
        ] {
            assert!(service(ok).is_ok(), "{ok}");
        }
        let plugin = |b: &str| check_body(Body::PluginPrivileges, &g, b.as_bytes());
        for (bad, guard) in [
            (
                r#"[{"Name":"network","Value":["host"]}]"#,
                Guard::HostNamespaces,
            ),
            (
                r#"[{"name":"mount","value":["/var/lib/docker"]}]"#,
                Guard::BindMounts,
            ),
            (
                r#"[{"Name":"capabilities","Value":["CAP_SYS_ADMIN"]}]"#,
                Guard::Capabilities,
            ),
            (
                r#"[{"Name":"device","Value":["/dev/fuse"]}]"#,
                Guard::Devices,
            ),
            (
                r#"[{"Name":"host pid","Value":["true"]}]"#,
                Guard::HostNamespaces,
            ),
        ] {
            assert_eq!(refused_by(plugin(bad)), Some(guard), "{bad}");
        }
        for ok in [
            "[]",
            "null",
            r#"[{"Name":"network","Value":["bridge"]},{"Name":"mount","Value":["/srv/p"]},{"Name":"capabilities","Value":["CAP_CHOWN"]}]"#,
        ] {
            assert!(plugin(ok).is_ok(), "{ok}");
        }
        assert_eq!(plugin(r#"{"Name":"network"}"#).unwrap_err().guard, None);
        assert_eq!(Body::of("ServiceUpdate", &g), Some(Body::Service));
        assert_eq!(Body::of("PluginUpgrade", &g), Some(Body::PluginPrivileges));
    }

    #[test]
    fn legacy_start_bodies_plugin_settings_and_archives() {
        let g = guards(&["all"], &[], &["/srv"]);
        let start = |b: &str| check_body(Body::ContainerStart, &g, b.as_bytes());
        assert!(start("").is_ok());
        assert!(start(" \r\n").is_ok());
        assert!(start("{}").is_ok());
        assert_eq!(
            refused_by(start(r#"{"Privileged":true}"#)),
            Some(Guard::Privileged)
        );
        assert_eq!(
            refused_by(start(r#"{"binds":["/:/h"]}"#)),
            Some(Guard::BindMounts)
        );
        let set = |b: &str| check_body(Body::PluginSet, &g, b.as_bytes());
        assert!(set(r#"["DEBUG=1","data.source=/srv/p"]"#).is_ok());
        assert_eq!(
            refused_by(set(r#"["data.source=/etc"]"#)),
            Some(Guard::BindMounts)
        );
        assert_eq!(
            refused_by(set(r#"["dev.path=/dev/sda"]"#)),
            Some(Guard::Devices)
        );
        assert_eq!(set(r#"{"a":1}"#).unwrap_err().guard, None);
        assert!(refuse_unreadable("PluginCreate", &g).is_some());
        assert!(refuse_unreadable("PluginCreate", &guards(&["unconfined"], &[], &[])).is_none());
        assert!(refuse_unreadable("ContainerCreate", &g).is_none());
        assert_eq!(Body::of("ContainerStart", &g), Some(Body::ContainerStart));
        assert_eq!(
            Body::of("PluginSet", &guards(&["privileged"], &[], &[])),
            None
        );
    }

    #[test]
    fn which_bodies_are_read() {
        let g = guards(&["privileged"], &[], &[]);
        assert_eq!(Body::of("ContainerCreate", &g), Some(Body::ContainerCreate));
        assert_eq!(Body::of("ContainerExec", &g), Some(Body::ContainerExec));
        assert_eq!(Body::of("ContainerUpdate", &g), None);
        assert_eq!(Body::of("VolumeCreate", &g), None);
        assert_eq!(Body::of("ContainerList", &g), None);
        assert_eq!(Body::of("ContainerCreate", &Guards::default()), None);
        let mut bad = Guards::default();
        assert!(bad.set_guards(&["all", "devices"]).is_err());
        assert!(bad.set_guards(&["everything"]).is_err());
    }

    #[test]
    fn build_in_the_host_network() {
        let g = guards(&["host_namespaces"], &[], &[]);
        for bad in [
            "networkmode=host",
            "t=x&networkmode=HOST",
            "NetworkMode=host",
            "networkmod%65=%68ost",
        ] {
            assert!(check_build_query(&g, bad.as_bytes()).is_err(), "{bad}");
        }
        for ok in [
            "networkmode=default",
            "t=host",
            "",
            "networkmode=none&x=host",
        ] {
            assert!(check_build_query(&g, ok.as_bytes()).is_ok(), "{ok}");
        }
        assert!(check_build_query(&Guards::default(), b"networkmode=host").is_ok());
    }
}
