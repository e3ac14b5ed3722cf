//! Classifies a request as a Docker Engine API operation, as dockerd's router would route
//! it, so that access rules can name operations, sections and groups instead of paths.
//!
//! # Input
//!
//! [`classify`] takes the request method and the request path as nginx has normalized it
//! (`r->uri`): percent-decoded, `.` and `..` segments resolved, without the query string.
//! It allocates nothing and does not assume UTF-8.
//!
//! dockerd cleans the path it receives in the same way and redirects when cleaning changes
//! it (below). So if nginx passes the client's raw URI upstream (`proxy_pass` without a
//! URI part) and that differs from the normalized one, dockerd answers a redirect to the
//! path classified here rather than running anything: a client has to send that path
//! anew, and it is then classified again.
//!
//! # How dockerd routes, and so how this module does
//!
//! dockerd serves the API with one gorilla/mux router (`api/server/server.go`, in moby
//! master `daemon/server/server.go`). Every route is registered twice, as
//! `/v{version:[0-9.]+}<path>` and as `<path>`, with its single method, in the order of
//! the routers (`buildRouters`, in 20.10 `initRouter`): checkpoint, container, image,
//! system, volume, build, session, swarm, plugin, distribution, network, debug, grpc (20.10:
//! grpc before network, debug last). The first route whose method and path both match
//! wins. The consequences this module
//! reproduces:
//!
//! - **Path cleaning.** The router does not `SkipClean`: a path that Go's `path.Clean`
//!   would change (a doubled slash, a `.` or `..` segment, no leading `/`) is answered
//!   with a 301 redirect to the cleaned path, never routed. Such a path is unknown here.
//!   A trailing slash is kept by the cleaning and is part of the path: `/containers/json/`
//!   is no route, while `DELETE /containers/` is `ContainerDelete` of the empty name.
//! - **Case.** Routes and methods are case-sensitive: `/Containers/json` and `get` are
//!   not routed.
//! - **Versions.** `/v` followed by one or more digits and dots and a `/` is a version
//!   prefix, whatever its value: `/v1.41/`, `/v1.41.0/`, `/v1..2/` and `/v./` all route
//!   (dockerd's version middleware then refuses versions out of range, after routing);
//!   `/v/` and `/vabc/` do not. [`Classified::version`] gives the version as written.
//! - **Variables.** `{name:.*}` takes any bytes but a newline (Go's `.`), so image names
//!   with slashes, tags and digests are objects: `/images/library/busybox:latest/json`
//!   names `library/busybox:latest`. Patterns are anchored at both ends, so a variable
//!   runs up to the route's fixed suffix: `/images/a/json/json` inspects `a/json`.
//!   `{id}` (the swarm objects, checkpoints, pprof profiles) is one segment: no `/`, not
//!   empty; `{id:.+}` (`GET /networks/{id}`) is not empty.
//! - **Overlaps** resolve by registration order: `GET /images/json` is `ImageList`, not an
//!   inspect of `json`; `GET /images/get` is `ImageGetAll`; `DELETE
//!   /containers/a/checkpoints/b` is `CheckpointDelete` (the checkpoint router comes
//!   first), while `DELETE /containers/a/b/checkpoints/c` deletes the container
//!   `a/b/checkpoints/c`; `GET /volumes/` inspects the volume named `` (only
//!   `GET /networks/` has its own list route).
//! - **OPTIONS** on any path is routed (to a CORS preflight handler that does nothing):
//!   operation `Options`, section `ping`.
//! - **HEAD** is only routed where registered (`/_ping`, `/containers/{name}/archive`):
//!   `HEAD /containers/json` is unknown. Any other method not registered for a path is
//!   unknown too (dockerd answers 404/405).
//!
//! A path dockerd would redirect or answer with 404 gives no operation (unknown), never a
//! wrong one. The object, version and checkpoint are slices of the input.
//!
//! # Routes
//!
//! [`OPERATIONS`] is the union of the routes of dockerd 20.10 (`v20.10.24`, API 1.41),
//! dockerd 28 (`v28.5.2`, API 1.51) and moby master (API 1.56), read from each router's
//! `initRoutes` (`api/server/router/*/*.go`, in master `daemon/server/router/*/*.go`),
//! in dockerd's registration order. Names are the `operationId`s of `api/swagger.yaml`;
//! routes without one got a name in the same style: `CheckpointList`, `CheckpointCreate`,
//! `CheckpointDelete` (experimental), `ContainerCopy` (20.10 only, deprecated),
//! `BuildCancel`, `Grpc`, `Options`, and the `Debug*` routes. Only in some versions:
//! `ContainerCopy` (20.10), `VolumeUpdate` (28 and later), `ImageAttestations` (master,
//! API 1.55). The debug routes are registered for `GET` with and without a version since
//! 28, and for any method without a version in 20.10: both forms are in the table
//! ([`Operation::versioned`]). `logic/tests/data/docker-routes.txt` lists the same routes
//! for the tests.
//!
//! # Sections and groups
//!
//! A section is the first path segment, as in Tecnativa's docker-socket-proxy
//! (`CONTAINERS=1` etc.), plus `debug` and `libpod`. A group refines a section into the
//! switches users ask for; every operation is in exactly one group, named
//! `<section>.<word>`:
//!
//! | group | operations |
//! |---|---|
//! | `containers.read` | ContainerList, ContainerInspect, ContainerTop, ContainerChanges, ContainerStats |
//! | `containers.logs` | ContainerLogs |
//! | `containers.create` | ContainerCreate |
//! | `containers.lifecycle` | ContainerStart, ContainerStop, ContainerRestart, ContainerPause, ContainerUnpause, ContainerWait |
//! | `containers.kill` | ContainerKill |
//! | `containers.update` | ContainerRename, ContainerUpdate |
//! | `containers.delete` | ContainerDelete, ContainerPrune |
//! | `containers.attach` | ContainerAttach, ContainerAttachWebsocket, ContainerResize |
//! | `containers.exec` | ContainerExec (creates an exec instance; `exec.start` runs it) |
//! | `containers.archive` | ContainerArchive, ContainerArchiveInfo, PutContainerArchive, ContainerCopy |
//! | `containers.export` | ContainerExport |
//! | `containers.checkpoint` | CheckpointList, CheckpointCreate, CheckpointDelete |
//! | `exec.read` | ExecInspect |
//! | `exec.start` | ExecStart, ExecResize |
//! | `images.read` | ImageList, ImageInspect, ImageHistory, ImageSearch, ImageAttestations |
//! | `images.export` | ImageGet, ImageGetAll |
//! | `images.write` | ImageCreate (pull, import), ImageLoad, ImageTag |
//! | `images.push` | ImagePush |
//! | `images.delete` | ImageDelete, ImagePrune |
//! | `networks.read` | NetworkList, NetworkInspect |
//! | `networks.write` | NetworkCreate, NetworkConnect, NetworkDisconnect |
//! | `networks.delete` | NetworkDelete, NetworkPrune |
//! | `volumes.read` | VolumeList, VolumeInspect |
//! | `volumes.write` | VolumeCreate, VolumeUpdate |
//! | `volumes.delete` | VolumeDelete, VolumePrune |
//! | `build.write` | ImageBuild, BuildCancel |
//! | `build.delete` | BuildPrune |
//! | `commit.write` | ImageCommit |
//! | `auth.write` | SystemAuth |
//! | `events.read` | SystemEvents |
//! | `ping.read` | SystemPing, SystemPingHead, Options |
//! | `version.read` | SystemVersion |
//! | `info.read` | SystemInfo |
//! | `system.read` | SystemDataUsage |
//! | `swarm.read` | SwarmInspect |
//! | `swarm.unlockkey` | SwarmUnlockkey (returns the key that unlocks the swarm's secrets) |
//! | `swarm.write` | SwarmInit, SwarmJoin, SwarmLeave, SwarmUpdate, SwarmUnlock |
//! | `nodes.read` | NodeList, NodeInspect |
//! | `nodes.write` | NodeUpdate |
//! | `nodes.delete` | NodeDelete |
//! | `services.read` | ServiceList, ServiceInspect |
//! | `services.logs` | ServiceLogs |
//! | `services.write` | ServiceCreate, ServiceUpdate |
//! | `services.delete` | ServiceDelete |
//! | `tasks.read` | TaskList, TaskInspect |
//! | `tasks.logs` | TaskLogs |
//! | `secrets.read` | SecretList, SecretInspect |
//! | `secrets.write` | SecretCreate, SecretUpdate |
//! | `secrets.delete` | SecretDelete |
//! | `configs.read` | ConfigList, ConfigInspect |
//! | `configs.write` | ConfigCreate, ConfigUpdate |
//! | `configs.delete` | ConfigDelete |
//! | `plugins.read` | PluginList, PluginInspect, GetPluginPrivileges |
//! | `plugins.write` | PluginPull, PluginCreate, PluginEnable, PluginDisable, PluginUpgrade, PluginSet |
//! | `plugins.push` | PluginPush |
//! | `plugins.delete` | PluginDelete |
//! | `distribution.read` | DistributionInspect |
//! | `session.write` | Session |
//! | `grpc.write` | Grpc |
//! | `debug.read` | DebugVars, DebugPprofIndex, DebugPprofCmdline, DebugPprofProfile, DebugPprofSymbol, DebugPprofTrace, DebugPprof |
//! | `libpod.read` | Libpod with GET or HEAD |
//! | `libpod.write` | Libpod with POST, PUT or DELETE |
//!
//! # Writes
//!
//! [`Operation::writes`] is true when the operation can change the state of the daemon,
//! of an object or of the host, or sends data into a container. That is every `POST`,
//! `PUT` and `DELETE`, except `ContainerWait` (it only waits) and the old `ContainerCopy`
//! (it copies out); and of the reads (`GET`, `HEAD`, `OPTIONS`), only
//! `ContainerAttachWebsocket`, which carries stdin into the container. The debug routes
//! only read, whatever the method dockerd 20.10 accepts them with. `SystemAuth`, which
//! only checks credentials, counts as a write: it makes the daemon log in to a registry
//! of the client's choosing.
//!
//! # Podman
//!
//! Podman's own API lives under `/libpod/`, optionally behind podman's version prefix
//! `/v{version:[0-9][0-9A-Za-z.-]*}` (`/v4.0.0/libpod/...`). Any such path is the single
//! operation `Libpod` (section `libpod`) for GET, HEAD, POST, PUT and DELETE, checked before
//! dockerd's routes, so that rules can refuse podman's extensions wholesale; the version
//! is recorded, no object. Podman's Docker-compatible routes are classified as dockerd's.

use memchr::memchr;

/// An HTTP method a route is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    /// Any method: dockerd 20.10 registered its debug routes without one.
    Any,
}

impl Method {
    /// The method's name as sent on the wire; `*` for [`Method::Any`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Any => "*",
        }
    }

    /// Whether a request method matches; case-sensitive, as gorilla/mux compares.
    pub fn matches(self, method: &[u8]) -> bool {
        self == Method::Any || Method::parse(method) == Some(self)
    }

    /// The method a request names, if a route is registered for it.
    fn parse(method: &[u8]) -> Option<Method> {
        Some(match method {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            _ => return None,
        })
    }
}

/// One route of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation {
    /// The swagger operationId, or a name in the same style (see the module doc).
    pub name: &'static str,
    pub method: Method,
    /// The path template as dockerd registers it, e.g. `/containers/{name:.*}/json`.
    pub path: &'static str,
    /// The Tecnativa docker-socket-proxy section: the group up to its `.`.
    pub section: &'static str,
    pub group: &'static str,
    /// See "Writes" in the module doc.
    pub writes: bool,
    /// Whether dockerd also routes the path behind a `/vX.Y` prefix (all but 20.10's
    /// any-method debug routes).
    pub versioned: bool,
    route: Route,
}

/// What [`classify`] found. Every slice borrows from the input path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classified<'a> {
    /// None for a path dockerd would not route (404, 405 or a redirect).
    pub operation: Option<&'static Operation>,
    /// The version of a `/v<version>/` prefix, as written (digits and dots; for `Libpod`
    /// podman's form). Also given for an unknown route behind such a prefix.
    pub version: Option<&'a str>,
    /// The object the path names: the container (id or name), exec id, image name,
    /// network, volume, node, service, task, secret, config, plugin, distribution
    /// reference or pprof profile. None for routes without one; may be empty where
    /// dockerd routes an empty name (`DELETE /containers/`).
    pub object: Option<&'a [u8]>,
    /// The checkpoint of `CheckpointDelete`.
    pub checkpoint: Option<&'a [u8]>,
}

/// The sections, in the order of the module doc's table.
pub const SECTIONS: &[&str] = &[
    "containers",
    "exec",
    "images",
    "networks",
    "volumes",
    "build",
    "commit",
    "auth",
    "events",
    "ping",
    "version",
    "info",
    "system",
    "swarm",
    "nodes",
    "services",
    "tasks",
    "secrets",
    "configs",
    "plugins",
    "distribution",
    "session",
    "grpc",
    "debug",
    "libpod",
];

/// The groups, in the order of the module doc's table.
pub const GROUPS: &[&str] = &[
    "containers.read",
    "containers.logs",
    "containers.create",
    "containers.lifecycle",
    "containers.kill",
    "containers.update",
    "containers.delete",
    "containers.attach",
    "containers.exec",
    "containers.archive",
    "containers.export",
    "containers.checkpoint",
    "exec.read",
    "exec.start",
    "images.read",
    "images.export",
    "images.write",
    "images.push",
    "images.delete",
    "networks.read",
    "networks.write",
    "networks.delete",
    "volumes.read",
    "volumes.write",
    "volumes.delete",
    "build.write",
    "build.delete",
    "commit.write",
    "auth.write",
    "events.read",
    "ping.read",
    "version.read",
    "info.read",
    "system.read",
    "swarm.read",
    "swarm.unlockkey",
    "swarm.write",
    "nodes.read",
    "nodes.write",
    "nodes.delete",
    "services.read",
    "services.logs",
    "services.write",
    "services.delete",
    "tasks.read",
    "tasks.logs",
    "secrets.read",
    "secrets.write",
    "secrets.delete",
    "configs.read",
    "configs.write",
    "configs.delete",
    "plugins.read",
    "plugins.write",
    "plugins.push",
    "plugins.delete",
    "distribution.read",
    "session.write",
    "grpc.write",
    "debug.read",
    "libpod.read",
    "libpod.write",
];

/// Whether `name` is the name of some operation (for validating configuration).
pub fn is_operation_name(name: &str) -> bool {
    OPERATIONS.iter().any(|op| op.name == name)
}

use Method::{Any, Delete, Get, Head, Options, Post, Put};

/// Every route, podman's first, then dockerd's in registration order (the first match
/// wins).
#[rustfmt::skip]
pub static OPERATIONS: &[Operation] = &[
    // Podman (see the module doc); not a dockerd route.
    libpod(Get),
    libpod(Head),
    libpod(Post),
    libpod(Put),
    libpod(Delete),
    // checkpoint router (experimental). Registered before the container router so that its
    // DELETE is not taken by `DELETE /containers/{name:.*}`.
    op(Get, "/containers/{name:.*}/checkpoints", "CheckpointList", "containers.checkpoint"),
    op(Post, "/containers/{name:.*}/checkpoints", "CheckpointCreate", "containers.checkpoint"),
    op(Delete, "/containers/{name}/checkpoints/{checkpoint}", "CheckpointDelete", "containers.checkpoint"),
    // container router
    op(Head, "/containers/{name:.*}/archive", "ContainerArchiveInfo", "containers.archive"),
    op(Get, "/containers/json", "ContainerList", "containers.read"),
    op(Get, "/containers/{name:.*}/export", "ContainerExport", "containers.export"),
    op(Get, "/containers/{name:.*}/changes", "ContainerChanges", "containers.read"),
    op(Get, "/containers/{name:.*}/json", "ContainerInspect", "containers.read"),
    op(Get, "/containers/{name:.*}/top", "ContainerTop", "containers.read"),
    op(Get, "/containers/{name:.*}/logs", "ContainerLogs", "containers.logs"),
    op(Get, "/containers/{name:.*}/stats", "ContainerStats", "containers.read"),
    // A GET that carries stdin into the container.
    op(Get, "/containers/{name:.*}/attach/ws", "ContainerAttachWebsocket", "containers.attach").writing(),
    op(Get, "/exec/{id:.*}/json", "ExecInspect", "exec.read"),
    op(Get, "/containers/{name:.*}/archive", "ContainerArchive", "containers.archive"),
    op(Post, "/containers/create", "ContainerCreate", "containers.create"),
    op(Post, "/containers/{name:.*}/kill", "ContainerKill", "containers.kill"),
    op(Post, "/containers/{name:.*}/pause", "ContainerPause", "containers.lifecycle"),
    op(Post, "/containers/{name:.*}/unpause", "ContainerUnpause", "containers.lifecycle"),
    op(Post, "/containers/{name:.*}/restart", "ContainerRestart", "containers.lifecycle"),
    op(Post, "/containers/{name:.*}/start", "ContainerStart", "containers.lifecycle"),
    op(Post, "/containers/{name:.*}/stop", "ContainerStop", "containers.lifecycle"),
    // Only waits for the container to stop.
    op(Post, "/containers/{name:.*}/wait", "ContainerWait", "containers.lifecycle").reading(),
    op(Post, "/containers/{name:.*}/resize", "ContainerResize", "containers.attach"),
    op(Post, "/containers/{name:.*}/attach", "ContainerAttach", "containers.attach"),
    // 20.10 only, no operationId: copies a path out of the container (API < 1.24).
    op(Post, "/containers/{name:.*}/copy", "ContainerCopy", "containers.archive").reading(),
    op(Post, "/containers/{name:.*}/exec", "ContainerExec", "containers.exec"),
    op(Post, "/exec/{name:.*}/start", "ExecStart", "exec.start"),
    op(Post, "/exec/{name:.*}/resize", "ExecResize", "exec.start"),
    op(Post, "/containers/{name:.*}/rename", "ContainerRename", "containers.update"),
    op(Post, "/containers/{name:.*}/update", "ContainerUpdate", "containers.update"),
    op(Post, "/containers/prune", "ContainerPrune", "containers.delete"),
    op(Post, "/commit", "ImageCommit", "commit.write"),
    op(Put, "/containers/{name:.*}/archive", "PutContainerArchive", "containers.archive"),
    op(Delete, "/containers/{name:.*}", "ContainerDelete", "containers.delete"),
    // image router
    op(Get, "/images/json", "ImageList", "images.read"),
    op(Get, "/images/search", "ImageSearch", "images.read"),
    op(Get, "/images/get", "ImageGetAll", "images.export"),
    op(Get, "/images/{name:.*}/get", "ImageGet", "images.export"),
    op(Get, "/images/{name:.*}/history", "ImageHistory", "images.read"),
    op(Get, "/images/{name:.*}/json", "ImageInspect", "images.read"),
    // master only (API 1.55).
    op(Get, "/images/{name:.*}/attestations", "ImageAttestations", "images.read"),
    op(Post, "/images/load", "ImageLoad", "images.write"),
    op(Post, "/images/create", "ImageCreate", "images.write"),
    op(Post, "/images/{name:.*}/push", "ImagePush", "images.push"),
    op(Post, "/images/{name:.*}/tag", "ImageTag", "images.write"),
    op(Post, "/images/prune", "ImagePrune", "images.delete"),
    op(Delete, "/images/{name:.*}", "ImageDelete", "images.delete"),
    // system router
    // No operationId: the CORS preflight handler, on every path.
    op(Options, "/{anyroute:.*}", "Options", "ping.read"),
    op(Get, "/_ping", "SystemPing", "ping.read"),
    op(Head, "/_ping", "SystemPingHead", "ping.read"),
    op(Get, "/events", "SystemEvents", "events.read"),
    op(Get, "/info", "SystemInfo", "info.read"),
    op(Get, "/version", "SystemVersion", "version.read"),
    op(Get, "/system/df", "SystemDataUsage", "system.read"),
    op(Post, "/auth", "SystemAuth", "auth.write"),
    // volume router
    op(Get, "/volumes", "VolumeList", "volumes.read"),
    op(Get, "/volumes/{name:.*}", "VolumeInspect", "volumes.read"),
    op(Post, "/volumes/create", "VolumeCreate", "volumes.write"),
    op(Post, "/volumes/prune", "VolumePrune", "volumes.delete"),
    // 28 and later (cluster volumes).
    op(Put, "/volumes/{name:.*}", "VolumeUpdate", "volumes.write"),
    op(Delete, "/volumes/{name:.*}", "VolumeDelete", "volumes.delete"),
    // build router
    op(Post, "/build", "ImageBuild", "build.write"),
    op(Post, "/build/prune", "BuildPrune", "build.delete"),
    // No operationId.
    op(Post, "/build/cancel", "BuildCancel", "build.write"),
    // session router
    op(Post, "/session", "Session", "session.write"),
    // swarm router
    op(Post, "/swarm/init", "SwarmInit", "swarm.write"),
    op(Post, "/swarm/join", "SwarmJoin", "swarm.write"),
    op(Post, "/swarm/leave", "SwarmLeave", "swarm.write"),
    op(Get, "/swarm", "SwarmInspect", "swarm.read"),
    op(Get, "/swarm/unlockkey", "SwarmUnlockkey", "swarm.unlockkey"),
    op(Post, "/swarm/update", "SwarmUpdate", "swarm.write"),
    op(Post, "/swarm/unlock", "SwarmUnlock", "swarm.write"),
    op(Get, "/services", "ServiceList", "services.read"),
    op(Get, "/services/{id}", "ServiceInspect", "services.read"),
    op(Post, "/services/create", "ServiceCreate", "services.write"),
    op(Post, "/services/{id}/update", "ServiceUpdate", "services.write"),
    op(Delete, "/services/{id}", "ServiceDelete", "services.delete"),
    op(Get, "/services/{id}/logs", "ServiceLogs", "services.logs"),
    op(Get, "/nodes", "NodeList", "nodes.read"),
    op(Get, "/nodes/{id}", "NodeInspect", "nodes.read"),
    op(Delete, "/nodes/{id}", "NodeDelete", "nodes.delete"),
    op(Post, "/nodes/{id}/update", "NodeUpdate", "nodes.write"),
    op(Get, "/tasks", "TaskList", "tasks.read"),
    op(Get, "/tasks/{id}", "TaskInspect", "tasks.read"),
    op(Get, "/tasks/{id}/logs", "TaskLogs", "tasks.logs"),
    op(Get, "/secrets", "SecretList", "secrets.read"),
    op(Post, "/secrets/create", "SecretCreate", "secrets.write"),
    op(Delete, "/secrets/{id}", "SecretDelete", "secrets.delete"),
    op(Get, "/secrets/{id}", "SecretInspect", "secrets.read"),
    op(Post, "/secrets/{id}/update", "SecretUpdate", "secrets.write"),
    op(Get, "/configs", "ConfigList", "configs.read"),
    op(Post, "/configs/create", "ConfigCreate", "configs.write"),
    op(Delete, "/configs/{id}", "ConfigDelete", "configs.delete"),
    op(Get, "/configs/{id}", "ConfigInspect", "configs.read"),
    op(Post, "/configs/{id}/update", "ConfigUpdate", "configs.write"),
    // plugin router
    op(Get, "/plugins", "PluginList", "plugins.read"),
    op(Get, "/plugins/{name:.*}/json", "PluginInspect", "plugins.read"),
    op(Get, "/plugins/privileges", "GetPluginPrivileges", "plugins.read"),
    op(Delete, "/plugins/{name:.*}", "PluginDelete", "plugins.delete"),
    op(Post, "/plugins/{name:.*}/enable", "PluginEnable", "plugins.write"),
    op(Post, "/plugins/{name:.*}/disable", "PluginDisable", "plugins.write"),
    op(Post, "/plugins/pull", "PluginPull", "plugins.write"),
    op(Post, "/plugins/{name:.*}/push", "PluginPush", "plugins.push"),
    op(Post, "/plugins/{name:.*}/upgrade", "PluginUpgrade", "plugins.write"),
    op(Post, "/plugins/{name:.*}/set", "PluginSet", "plugins.write"),
    op(Post, "/plugins/create", "PluginCreate", "plugins.write"),
    // distribution router
    op(Get, "/distribution/{name:.*}/json", "DistributionInspect", "distribution.read"),
    // network router (after grpc in 20.10; no path overlaps, so the order does not matter)
    op(Get, "/networks", "NetworkList", "networks.read"),
    op(Get, "/networks/", "NetworkList", "networks.read"),
    op(Get, "/networks/{id:.+}", "NetworkInspect", "networks.read"),
    op(Post, "/networks/create", "NetworkCreate", "networks.write"),
    op(Post, "/networks/{id:.*}/connect", "NetworkConnect", "networks.write"),
    op(Post, "/networks/{id:.*}/disconnect", "NetworkDisconnect", "networks.write"),
    op(Post, "/networks/prune", "NetworkPrune", "networks.delete"),
    op(Delete, "/networks/{id:.*}", "NetworkDelete", "networks.delete"),
    // debug router (28 and later; no operationIds)
    op(Get, "/debug/vars", "DebugVars", "debug.read"),
    op(Get, "/debug/pprof/", "DebugPprofIndex", "debug.read"),
    op(Get, "/debug/pprof/cmdline", "DebugPprofCmdline", "debug.read"),
    op(Get, "/debug/pprof/profile", "DebugPprofProfile", "debug.read"),
    op(Get, "/debug/pprof/symbol", "DebugPprofSymbol", "debug.read"),
    op(Get, "/debug/pprof/trace", "DebugPprofTrace", "debug.read"),
    op(Get, "/debug/pprof/{name}", "DebugPprof", "debug.read"),
    // grpc router. No operationId.
    op(Post, "/grpc", "Grpc", "grpc.write"),
    // 20.10's debug routes: added after all routers, any method, no version prefix. They
    // only read (POST /debug/pprof/symbol looks symbols up).
    op(Any, "/debug/vars", "DebugVars", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/", "DebugPprofIndex", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/cmdline", "DebugPprofCmdline", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/profile", "DebugPprofProfile", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/symbol", "DebugPprofSymbol", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/trace", "DebugPprofTrace", "debug.read").reading().unversioned(),
    op(Any, "/debug/pprof/{name}", "DebugPprof", "debug.read").reading().unversioned(),
];

/// Classifies a request; see the module doc for what `path` must be and how it routes.
pub fn classify<'a>(method: &[u8], path: &'a [u8]) -> Classified<'a> {
    if !is_clean(path) {
        // dockerd redirects instead of routing.
        return Classified::default();
    }
    let docker = split_version(path, is_docker_version_byte, is_docker_version_byte);
    let podman = split_version(path, |b| b.is_ascii_digit(), is_podman_version_byte);
    // Go's `.` stops at a newline; most paths have none, which spares the per-route scans.
    let has_newline = memchr(b'\n', path).is_some();
    let method = Method::parse(method);
    for op in OPERATIONS {
        if op.method != Any && Some(op.method) != method {
            continue;
        }
        match op.route {
            Route::Libpod => {
                if let Some((version, rest)) = podman {
                    if rest.starts_with(LIBPOD) {
                        return found(op, Some(version), None);
                    }
                }
                if path.starts_with(LIBPOD) {
                    return found(op, None, None);
                }
            }
            Route::Template(ref t) => {
                if op.versioned {
                    if let Some((version, rest)) = docker {
                        if let Some(vars) = t.matches(rest, has_newline) {
                            return found(op, Some(version), Some(vars));
                        }
                    }
                }
                if let Some(vars) = t.matches(path, has_newline) {
                    return found(op, None, Some(vars));
                }
            }
        }
    }
    Classified {
        version: docker.map(|(v, _)| v),
        ..Classified::default()
    }
}

type Vars<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn found<'a>(
    op: &'static Operation,
    version: Option<&'a str>,
    vars: Option<Vars<'a>>,
) -> Classified<'a> {
    let (object, checkpoint) = vars.unwrap_or_default();
    Classified {
        operation: Some(op),
        version,
        object,
        checkpoint,
    }
}

const LIBPOD: &[u8] = b"/libpod/";

/// Whether gorilla/mux's cleanPath (Go's `path.Clean`, keeping a trailing slash) leaves
/// the path as it is; where it does not, mux answers with a redirect.
fn is_clean(path: &[u8]) -> bool {
    let Some(mut rest) = path.strip_prefix(b"/") else {
        return false;
    };
    loop {
        match memchr(b'/', rest) {
            Some(i) => {
                let segment = &rest[..i];
                if segment.is_empty() || segment == b"." || segment == b".." {
                    return false;
                }
                rest = &rest[i + 1..];
            }
            // The last segment may be empty: a trailing slash survives the cleaning.
            None => return rest != b"." && rest != b"..",
        }
    }
}

/// dockerd's versionMatcher: `/v{version:[0-9.]+}`.
fn is_docker_version_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

/// podman's VersionedPath: `/v{version:[0-9][0-9A-Za-z.-]*}`.
fn is_podman_version_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Splits `/v<version>/rest` into the version and `/rest`. The version's bytes can never
/// be `/`, so the version ends at the first `/` whichever route follows.
fn split_version(
    path: &[u8],
    first: impl Fn(u8) -> bool,
    rest: impl Fn(u8) -> bool,
) -> Option<(&str, &[u8])> {
    let after_v = path.strip_prefix(b"/v")?;
    let end = memchr(b'/', after_v)?;
    let version = &after_v[..end];
    match version.split_first() {
        Some((&b, tail)) if first(b) && tail.iter().all(|&b| rest(b)) => {
            // Always ASCII here, so the conversion cannot fail.
            let version = std::str::from_utf8(version).ok()?;
            Some((version, &after_v[end..]))
        }
        _ => None,
    }
}

/// A compiled path template.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Template(Template),
    /// `/libpod/...`, behind podman's version prefix or none.
    Libpod,
}

/// A template `prefix{var1}lit1{var2}lit2`, each variable optional (`var2` only after
/// `var1`). With two variables the first is one segment and `lit1` starts with `/`,
/// so that the split is unambiguous, as for the one such route.
#[derive(Debug, PartialEq, Eq)]
struct Template {
    prefix: &'static [u8],
    var1: Option<Var>,
    lit1: &'static [u8],
    var2: Option<Var>,
    lit2: &'static [u8],
    /// False for `{anyroute}`, which is the whole path, not an object.
    object: bool,
}

/// The variable patterns dockerd's routes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    /// `{name:.*}`: any bytes but a newline, possibly none.
    Any,
    /// `{id:.+}`: the same, at least one.
    NonEmpty,
    /// `{id}`: gorilla/mux's default `[^/]+`.
    Segment,
}

impl Var {
    fn accepts(self, value: &[u8], has_newline: bool) -> bool {
        let no_newline = || !has_newline || memchr(b'\n', value).is_none();
        match self {
            Var::Any => no_newline(),
            Var::NonEmpty => !value.is_empty() && no_newline(),
            Var::Segment => !value.is_empty() && memchr(b'/', value).is_none(),
        }
    }
}

impl Template {
    /// Matches the whole of `s`, as mux's anchored regexp does. A variable sits between
    /// two fixed strings that end the template or (with two variables) cannot occur
    /// inside it, so the match is unique and needs no backtracking.
    fn matches<'a>(&self, s: &'a [u8], has_newline: bool) -> Option<Vars<'a>> {
        // Most routes differ from the path in the byte after the first `/`: a cheap
        // rejection before the comparison.
        if let (Some(a), Some(b)) = (self.prefix.get(1), s.get(1)) {
            if a != b {
                return None;
            }
        }
        let s = s.strip_prefix(self.prefix)?;
        let Some(var1) = self.var1 else {
            return s.is_empty().then_some((None, None));
        };
        let Some(var2) = self.var2 else {
            let value = s.strip_suffix(self.lit1)?;
            return var1
                .accepts(value, has_newline)
                .then_some((self.object.then_some(value), None));
        };
        let end = memchr(b'/', s).unwrap_or(s.len());
        let (first, s) = s.split_at(end);
        let second = s.strip_prefix(self.lit1)?.strip_suffix(self.lit2)?;
        (var1.accepts(first, has_newline) && var2.accepts(second, has_newline))
            .then_some((Some(first), Some(second)))
    }
}

// Table construction, evaluated at compile time: a malformed template or group fails the
// build.

const fn op(
    method: Method,
    path: &'static str,
    name: &'static str,
    group: &'static str,
) -> Operation {
    Operation {
        name,
        method,
        path,
        section: section_of(group),
        group,
        writes: !matches!(method, Get | Head | Options),
        versioned: true,
        route: Route::Template(template(path)),
    }
}

const fn libpod(method: Method) -> Operation {
    let reads = matches!(method, Get | Head);
    Operation {
        name: "Libpod",
        method,
        path: "/libpod/{path:.*}",
        section: "libpod",
        group: if reads { "libpod.read" } else { "libpod.write" },
        writes: !reads,
        versioned: true,
        route: Route::Libpod,
    }
}

impl Operation {
    const fn reading(self) -> Self {
        Operation {
            writes: false,
            ..self
        }
    }

    const fn writing(self) -> Self {
        Operation {
            writes: true,
            ..self
        }
    }

    const fn unversioned(self) -> Self {
        Operation {
            versioned: false,
            ..self
        }
    }
}

const fn section_of(group: &'static str) -> &'static str {
    let b = group.as_bytes();
    let dot = find(b, b'.', 0);
    assert!(dot < b.len(), "a group is <section>.<word>");
    match std::str::from_utf8(b.split_at(dot).0) {
        Ok(s) => s,
        Err(_) => panic!("non-UTF-8 section"),
    }
}

const fn template(path: &'static str) -> Template {
    let b = path.as_bytes();
    assert!(!b.is_empty() && b[0] == b'/', "a template starts with /");
    let open1 = find(b, b'{', 0);
    if open1 == b.len() {
        return Template {
            prefix: b,
            var1: None,
            lit1: b"",
            var2: None,
            lit2: b"",
            object: false,
        };
    }
    let close1 = find(b, b'}', open1);
    assert!(close1 < b.len(), "unclosed {{");
    let (var1, object) = var_spec(sub(b, open1 + 1, close1));
    let open2 = find(b, b'{', close1);
    if open2 == b.len() {
        return Template {
            prefix: sub(b, 0, open1),
            var1: Some(var1),
            lit1: sub(b, close1 + 1, b.len()),
            var2: None,
            lit2: b"",
            object,
        };
    }
    let close2 = find(b, b'}', open2);
    assert!(close2 < b.len(), "unclosed {{");
    assert!(find(b, b'{', close2) == b.len(), "at most two variables");
    let (var2, _) = var_spec(sub(b, open2 + 1, close2));
    let lit1 = sub(b, close1 + 1, open2);
    assert!(
        matches!(var1, Var::Segment) && !lit1.is_empty() && lit1[0] == b'/',
        "with two variables the first must be a segment followed by /"
    );
    Template {
        prefix: sub(b, 0, open1),
        var1: Some(var1),
        lit1,
        var2: Some(var2),
        lit2: sub(b, close2 + 1, b.len()),
        object: true,
    }
}

/// Parses `name` or `name:pattern`; returns the pattern and whether it names an object.
const fn var_spec(spec: &'static [u8]) -> (Var, bool) {
    let colon = find(spec, b':', 0);
    let object = !bytes_eq(sub(spec, 0, colon), b"anyroute");
    if colon == spec.len() {
        return (Var::Segment, object);
    }
    let pattern = sub(spec, colon + 1, spec.len());
    if bytes_eq(pattern, b".*") {
        (Var::Any, object)
    } else if bytes_eq(pattern, b".+") {
        (Var::NonEmpty, object)
    } else {
        panic!("unsupported variable pattern")
    }
}

const fn find(b: &[u8], c: u8, from: usize) -> usize {
    let mut i = from;
    while i < b.len() && b[i] != c {
        i += 1;
    }
    i
}

const fn sub(b: &'static [u8], start: usize, end: usize) -> &'static [u8] {
    b.split_at(end).0.split_at(start).1
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = include_str!("../tests/data/docker-routes.txt");

    /// A line of the route list.
    struct Line<'a> {
        method: &'a str,
        path: &'a str,
        name: &'a str,
        versioned: bool,
    }

    fn lines() -> Vec<Line<'static>> {
        ROUTES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 5, "bad line {l:?}");
                assert!(
                    f[3].split(',')
                        .all(|v| ["20.10", "28", "master"].contains(&v)),
                    "bad versions in {l:?}"
                );
                Line {
                    method: f[0],
                    path: f[1],
                    name: f[2],
                    versioned: match f[4] {
                        "yes" => true,
                        "no" => false,
                        _ => panic!("bad line {l:?}"),
                    },
                }
            })
            .collect()
    }

    fn name(method: &str, path: &[u8]) -> Option<&'static str> {
        classify(method.as_bytes(), path).operation.map(|o| o.name)
    }

    const SHA: &str = "sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1";

    /// Sample values for a variable of the given pattern.
    fn samples(pattern: Var) -> Vec<String> {
        match pattern {
            Var::Segment => vec!["c0ffee".into(), "x-1_y.z".into(), "odd:name@x=y".into()],
            Var::Any | Var::NonEmpty => vec![
                "4f2a9c0e1b7d".into(),
                "my_container-1.x".into(),
                "library/busybox:latest".into(),
                "registry.example:5000/a/b:tag".into(),
                format!("a/b@{SHA}"),
                "caf\u{e9} \u{1F40B}".into(),
            ],
        }
    }

    /// Fills the template's variables with every combination of samples; yields the path
    /// and the values.
    fn fill(template: &str) -> Vec<(String, Vec<String>)> {
        let mut out = vec![(String::new(), Vec::new())];
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').unwrap() + open;
            let spec = &rest[open + 1..close];
            let pattern = match spec.split_once(':') {
                None => Var::Segment,
                Some((_, ".*")) => Var::Any,
                Some((_, ".+")) => Var::NonEmpty,
                Some(_) => panic!("pattern in {template}"),
            };
            let lit = &rest[..open];
            out = out
                .into_iter()
                .flat_map(|(p, vals)| {
                    samples(pattern).into_iter().map(move |s| {
                        let mut vals = vals.clone();
                        vals.push(s.clone());
                        (format!("{p}{lit}{s}"), vals)
                    })
                })
                .collect();
            rest = &rest[close + 1..];
        }
        for (p, _) in &mut out {
            p.push_str(rest);
        }
        out
    }

    #[test]
    fn every_listed_route_classifies() {
        let lines = lines();
        assert!(lines.len() > 100);
        let mut checked = 0;
        for line in &lines {
            let methods: Vec<&str> = if line.method == "*" {
                vec!["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "FOO"]
            } else {
                vec![line.method]
            };
            for (path, vals) in fill(line.path) {
                for method in &methods {
                    for prefix in ["", "/v1.41", "/v1.51", "/v1.41.0", "/v1", "/v1.56"] {
                        let full = format!("{prefix}{path}");
                        let c = classify(method.as_bytes(), full.as_bytes());
                        let ctx = format!("{method} {full}");
                        if !prefix.is_empty() && !line.versioned {
                            // dockerd 20.10 routed these without a version only; with one
                            // only 28's GET form routes.
                            if *method != "GET" {
                                assert_eq!(c.operation, None, "{ctx}");
                            }
                            continue;
                        }
                        let op = c.operation.unwrap_or_else(|| panic!("{ctx}: unknown"));
                        assert_eq!(op.name, line.name, "{ctx}");
                        assert!(op.method.matches(method.as_bytes()), "{ctx}");
                        let version = prefix.strip_prefix("/v");
                        assert_eq!(c.version, version, "{ctx}");
                        if line.name == "Options" {
                            assert_eq!(c.object, None, "{ctx}");
                        } else {
                            assert_eq!(c.object, vals.first().map(|v| v.as_bytes()), "{ctx}");
                        }
                        assert_eq!(c.checkpoint, vals.get(1).map(|v| v.as_bytes()), "{ctx}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 2000, "{checked}");
    }

    /// The list and the table agree entry for entry, in order (podman's entries aside).
    #[test]
    fn table_is_the_route_list() {
        let table: Vec<(&str, &str, &str, bool)> = OPERATIONS
            .iter()
            .filter(|op| op.route != Route::Libpod)
            .map(|op| (op.method.as_str(), op.path, op.name, op.versioned))
            .collect();
        let listed: Vec<(&str, &str, &str, bool)> = lines()
            .iter()
            .map(|l| (l.method, l.path, l.name, l.versioned))
            .collect();
        assert_eq!(table, listed);
    }

    #[test]
    fn sections_and_groups() {
        for op in OPERATIONS {
            assert!(SECTIONS.contains(&op.section), "{op:?}");
            assert!(GROUPS.contains(&op.group), "{op:?}");
            assert_eq!(op.group.split_once('.').unwrap().0, op.section);
            assert!(is_operation_name(op.name));
        }
        for g in GROUPS {
            assert!(OPERATIONS.iter().any(|op| op.group == *g), "unused {g}");
        }
        for s in SECTIONS {
            assert!(OPERATIONS.iter().any(|op| op.section == *s), "unused {s}");
        }
        // Sections follow the path's first segment, as in docker-socket-proxy.
        for op in OPERATIONS.iter().filter(|op| op.name != "Options") {
            let first = op.path[1..].split(['/', '{']).next().unwrap();
            let expected = match first {
                "_ping" => "ping",
                "containers" | "images" | "networks" | "volumes" | "exec" | "build" | "commit"
                | "auth" | "events" | "version" | "info" | "system" | "swarm" | "nodes"
                | "services" | "tasks" | "secrets" | "configs" | "plugins" | "distribution"
                | "session" | "grpc" | "debug" | "libpod" => first,
                _ => panic!("{op:?}"),
            };
            assert_eq!(op.section, expected, "{op:?}");
        }
        assert!(!is_operation_name("containerlist"));
    }

    #[test]
    fn write_rule() {
        for op in OPERATIONS {
            let reads_by_method = matches!(op.method, Get | Head | Options | Any);
            let exception = matches!(
                op.name,
                "ContainerWait" | "ContainerCopy" | "ContainerAttachWebsocket"
            );
            let debug = op.section == "debug";
            assert_eq!(op.writes, !(reads_by_method || debug) ^ exception, "{op:?}");
        }
    }

    /// Method, path, expected operation and object.
    type Case = (
        &'static str,
        &'static [u8],
        Option<&'static str>,
        Option<&'static [u8]>,
    );

    #[test]
    #[rustfmt::skip]
    fn overlaps_resolve_as_dockerd() {
        let cases: &[Case] = &[
            ("GET", b"/images/json", Some("ImageList"), None),
            ("GET", b"/images/json/json", Some("ImageInspect"), Some(b"json")),
            ("GET", b"/images/a/json/json", Some("ImageInspect"), Some(b"a/json")),
            ("GET", b"/images/get", Some("ImageGetAll"), None),
            ("GET", b"/images/get/get", Some("ImageGet"), Some(b"get")),
            ("GET", b"/images/search", Some("ImageSearch"), None),
            ("GET", b"/images/search/json", Some("ImageInspect"), Some(b"search")),
            ("GET", b"/images/a/get/json", Some("ImageInspect"), Some(b"a/get")),
            ("GET", b"/images/library/busybox:latest/json", Some("ImageInspect"), Some(b"library/busybox:latest")),
            ("POST", b"/images/create", Some("ImageCreate"), None),
            ("POST", b"/images/create/tag", Some("ImageTag"), Some(b"create")),
            ("DELETE", b"/images/a/b:c", Some("ImageDelete"), Some(b"a/b:c")),
            ("DELETE", b"/images/", Some("ImageDelete"), Some(b"")),
            ("GET", b"/containers/json", Some("ContainerList"), None),
            ("GET", b"/containers/json/json", Some("ContainerInspect"), Some(b"json")),
            ("POST", b"/containers/create", Some("ContainerCreate"), None),
            ("POST", b"/containers/create/start", Some("ContainerStart"), Some(b"create")),
            ("POST", b"/containers/a/kill/start", Some("ContainerStart"), Some(b"a/kill")),
            ("POST", b"/containers/prune", Some("ContainerPrune"), None),
            ("POST", b"/containers/x/attach", Some("ContainerAttach"), Some(b"x")),
            ("POST", b"/containers/x/attach/ws", None, None),
            ("GET", b"/containers/x/attach/ws", Some("ContainerAttachWebsocket"), Some(b"x")),
            ("GET", b"/containers/x/attach", None, None),
            ("HEAD", b"/containers/x/archive", Some("ContainerArchiveInfo"), Some(b"x")),
            ("PUT", b"/containers/x/archive", Some("PutContainerArchive"), Some(b"x")),
            ("GET", b"/containers/x/checkpoints", Some("CheckpointList"), Some(b"x")),
            ("DELETE", b"/containers/x", Some("ContainerDelete"), Some(b"x")),
            ("DELETE", b"/containers/", Some("ContainerDelete"), Some(b"")),
            ("DELETE", b"/containers/a/b/checkpoints/c", Some("ContainerDelete"), Some(b"a/b/checkpoints/c")),
            ("DELETE", b"/containers/a/checkpoints/", Some("ContainerDelete"), Some(b"a/checkpoints/")),
            ("DELETE", b"/containers/a/checkpoints/b/", Some("ContainerDelete"), Some(b"a/checkpoints/b/")),
            ("POST", b"/containers/x/exec", Some("ContainerExec"), Some(b"x")),
            ("POST", b"/exec/e1/start", Some("ExecStart"), Some(b"e1")),
            ("POST", b"/exec/e1/resize", Some("ExecResize"), Some(b"e1")),
            ("GET", b"/exec/e1/json", Some("ExecInspect"), Some(b"e1")),
            ("GET", b"/exec/e1", None, None),
            ("GET", b"/networks", Some("NetworkList"), None),
            ("GET", b"/networks/", Some("NetworkList"), None),
            ("GET", b"/networks/create", Some("NetworkInspect"), Some(b"create")),
            ("DELETE", b"/networks/", Some("NetworkDelete"), Some(b"")),
            ("GET", b"/volumes", Some("VolumeList"), None),
            ("GET", b"/volumes/", Some("VolumeInspect"), Some(b"")),
            ("GET", b"/volumes/a/b", Some("VolumeInspect"), Some(b"a/b")),
            ("GET", b"/services/a/b", None, None),
            ("GET", b"/services/", None, None),
            ("GET", b"/services/a/logs", Some("ServiceLogs"), Some(b"a")),
            ("GET", b"/services/logs", Some("ServiceInspect"), Some(b"logs")),
            ("POST", b"/services/create", Some("ServiceCreate"), None),
            ("POST", b"/secrets/create/update", Some("SecretUpdate"), Some(b"create")),
            ("GET", b"/plugins/privileges", Some("GetPluginPrivileges"), None),
            ("GET", b"/plugins/privileges/json", Some("PluginInspect"), Some(b"privileges")),
            ("POST", b"/plugins/pull", Some("PluginPull"), None),
            ("POST", b"/plugins/create", Some("PluginCreate"), None),
            ("GET", b"/distribution/a/b:c/json", Some("DistributionInspect"), Some(b"a/b:c")),
            ("GET", b"/debug/pprof/", Some("DebugPprofIndex"), None),
            ("GET", b"/debug/pprof/heap", Some("DebugPprof"), Some(b"heap")),
            ("GET", b"/debug/pprof", None, None),
            ("POST", b"/debug/pprof/symbol", Some("DebugPprofSymbol"), None),
            ("POST", b"/v1.41/debug/pprof/symbol", None, None),
            ("GET", b"/v1.41/debug/pprof/symbol", Some("DebugPprofSymbol"), None),
            ("OPTIONS", b"/", Some("Options"), None),
            ("OPTIONS", b"/anything/at/all", Some("Options"), None),
            ("OPTIONS", b"/v1.41", Some("Options"), None),
            ("HEAD", b"/_ping", Some("SystemPingHead"), None),
            ("GET", b"/_ping", Some("SystemPing"), None),
            ("POST", b"/session", Some("Session"), None),
            ("POST", b"/grpc", Some("Grpc"), None),
            ("POST", b"/build", Some("ImageBuild"), None),
            ("POST", b"/build/", None, None),
        ];
        for &(method, path, want, object) in cases {
            let c = classify(method.as_bytes(), path);
            let ctx = format!("{method} {}", String::from_utf8_lossy(path));
            assert_eq!(c.operation.map(|o| o.name), want, "{ctx}");
            assert_eq!(c.object, object, "{ctx}");
        }
        let c = classify(b"DELETE", b"/v1.51/containers/a/checkpoints/b");
        assert_eq!(c.operation.map(|o| o.name), Some("CheckpointDelete"));
        assert_eq!((c.object, c.checkpoint), (Some(&b"a"[..]), Some(&b"b"[..])));
        assert_eq!(c.version, Some("1.51"));
        let c = classify(b"OPTIONS", b"/v1.41/x");
        assert_eq!(
            (c.operation.map(|o| o.name), c.version),
            (Some("Options"), Some("1.41"))
        );
        let c = classify(b"OPTIONS", b"/v1.41");
        assert_eq!(c.version, None);
    }

    #[test]
    #[rustfmt::skip]
    fn path_tricks() {
        // Each is unknown: dockerd redirects (not clean) or has no route.
        for (method, path) in [
            ("GET", &b"//containers/json"[..]),
            ("GET", b"/containers//json"),
            ("GET", b"/v1.41//containers/json"),
            ("POST", b"/containers//start"),
            ("POST", b"/containers/a//start"),
            ("GET", b"/containers/json/"),
            ("GET", b"/containers/json//"),
            ("GET", b"/Containers/json"),
            ("GET", b"/CONTAINERS/JSON"),
            ("GET", b"/containers/JSON"),
            ("GET", b"/V1.41/containers/json"),
            ("GET", b"/v1.41/../containers/json"),
            ("GET", b"/containers/./json"),
            ("GET", b"/containers/json/."),
            ("GET", b"/containers/json/.."),
            ("GET", b"/containers/../images/json"),
            ("GET", b"/./_ping"),
            ("GET", b"/.."),
            ("GET", b"containers/json"),
            ("GET", b""),
            ("GET", b"/"),
            ("GET", b"/vabc/containers/json"),
            ("GET", b"/v/containers/json"),
            ("GET", b"/v1.41a/containers/json"),
            ("GET", b"/v-1/containers/json"),
            ("GET", b"/v1.41/v1.41/containers/json"),
            ("GET", b"/v1.41"),
            ("GET", b"/v1.41/"),
            ("GET", b"/containers/json\0"),
            ("GET", b"/containers/json?all=1"),
            ("GET", b"/containers/json "),
            ("GET", b"/containers/\n/json"),
            ("GET", b"/networks/\n"),
            ("GET", b"/networks/\xff\n"),
            ("DELETE", b"/images/a\nb"),
            ("POST", b"/containers/a/../start"),
        ] {
            let c = classify(method.as_bytes(), path);
            assert_eq!(
                c.operation,
                None,
                "{method} {:?}",
                String::from_utf8_lossy(path)
            );
            assert_eq!((c.object, c.checkpoint), (None, None));
        }
        // Routed, though odd.
        for (method, path, want, version, object) in [
            ("GET", &b"/v1.41.0/containers/json"[..], "ContainerList", Some("1.41.0"), None),
            ("GET", b"/v1..2/containers/json", "ContainerList", Some("1..2"), None),
            ("GET", b"/v./containers/json", "ContainerList", Some("."), None),
            ("GET", b"/v0/_ping", "SystemPing", Some("0"), None),
            ("GET", b"/v99999999999999999999.1/info", "SystemInfo", Some("99999999999999999999.1"), None),
            ("GET", b"/containers/\xff\xfe/json", "ContainerInspect", None, Some(&b"\xff\xfe"[..])),
            ("GET", b"/containers/ /json", "ContainerInspect", None, Some(b" ")),
            ("GET", b"/containers/\0/json", "ContainerInspect", None, Some(b"\0")),
            ("GET", b"/containers/\r/logs", "ContainerLogs", None, Some(b"\r")),
            // `{id}` is `[^/]+`, which takes a newline where `.*` does not.
            ("GET", b"/services/a\nb", "ServiceInspect", None, Some(b"a\nb")),
            ("GET", b"/services/\n/logs", "ServiceLogs", None, Some(b"\n")),
            ("GET", b"/v1.41/containers/%2e%2e/json", "ContainerInspect", Some("1.41"), Some(b"%2e%2e")),
            ("GET", b"/containers/.../json", "ContainerInspect", None, Some(b"...")),
            ("GET", b"/containers/a.b/json", "ContainerInspect", None, Some(b"a.b")),
        ] {
            let c = classify(method.as_bytes(), path);
            let ctx = format!("{method} {:?}", String::from_utf8_lossy(path));
            assert_eq!(c.operation.map(|o| o.name), Some(want), "{ctx}");
            assert_eq!((c.version, c.object), (version, object), "{ctx}");
        }
        // The version is reported even without a route behind it.
        assert_eq!(classify(b"GET", b"/v1.41/nothing").version, Some("1.41"));
        assert_eq!(classify(b"GET", b"/v1.41//x").version, None);
    }

    #[test]
    fn unknown_methods_on_known_paths() {
        for (method, path) in [
            ("PUT", &b"/containers/json"[..]),
            ("POST", b"/containers/json"),
            ("HEAD", b"/containers/json"),
            ("get", b"/containers/json"),
            ("Get", b"/_ping"),
            ("PATCH", b"/containers/x/update"),
            ("GET", b"/containers/create"),
            ("GET", b"/containers/x/start"),
            ("PUT", b"/_ping"),
            ("POST", b"/_ping"),
            ("HEAD", b"/containers/x/json"),
            ("CONNECT", b"/containers/x/attach"),
            ("", b"/_ping"),
            ("GET ", b"/_ping"),
            ("GET", b"/auth"),
            ("GET", b"/build"),
            ("GET", b"/commit"),
            ("GET", b"/grpc"),
            ("GET", b"/session"),
            ("POST", b"/events"),
            ("PUT", b"/images/x"),
            ("PUT", b"/networks/x"),
            ("POST", b"/volumes/x"),
        ] {
            let c = classify(method.as_bytes(), path);
            assert_eq!(
                c.operation,
                None,
                "{method} {:?}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn podman_libpod() {
        for (method, path, version, writes) in [
            ("GET", &b"/libpod/containers/json"[..], None, false),
            ("HEAD", b"/libpod/_ping", None, false),
            (
                "POST",
                b"/v4.0.0/libpod/containers/x/start",
                Some("4.0.0"),
                true,
            ),
            (
                "DELETE",
                b"/v5.2.1-rc1/libpod/pods/p",
                Some("5.2.1-rc1"),
                true,
            ),
            ("PUT", b"/v1.41/libpod/x", Some("1.41"), true),
            ("POST", b"/v4/libpod/", Some("4"), true),
            ("GET", b"/libpod/containers/a\nb/json", None, false),
        ] {
            let c = classify(method.as_bytes(), path);
            let ctx = format!("{method} {:?}", String::from_utf8_lossy(path));
            let op = c.operation.unwrap_or_else(|| panic!("{ctx}"));
            assert_eq!(
                (op.name, op.section, op.writes),
                ("Libpod", "libpod", writes),
                "{ctx}"
            );
            assert_eq!((c.version, c.object), (version, None), "{ctx}");
        }
        assert_eq!(name("OPTIONS", b"/libpod/x"), Some("Options"));
        for (method, path) in [
            ("PATCH", &b"/libpod/x"[..]),
            ("GET", b"/libpod"),
            ("GET", b"/libpodx/y"),
            ("GET", b"/LIBPOD/x"),
            ("GET", b"/v.1/libpod/x"),
            ("GET", b"/va/libpod/x"),
            ("GET", b"/v4.0_0/libpod/x"),
            ("GET", b"/libpod//x"),
            ("GET", b"/x/libpod/y"),
        ] {
            assert_eq!(name(method, path), None, "{method} {path:?}");
        }
    }

    #[test]
    fn long_paths() {
        let long = "a".repeat(1 << 20);
        let path = format!("/v1.41/images/{long}/json");
        let c = classify(b"GET", path.as_bytes());
        assert_eq!(c.operation.map(|o| o.name), Some("ImageInspect"));
        assert_eq!(c.object.map(<[u8]>::len), Some(1 << 20));
        let slashes = "/x".repeat(1 << 18);
        assert_eq!(
            name("GET", format!("/containers{slashes}/json").as_bytes()),
            Some("ContainerInspect")
        );
        assert_eq!(name("GET", format!("/services{slashes}").as_bytes()), None);
        let version = format!("/v{}/_ping", "1.".repeat(1 << 16));
        assert_eq!(name("GET", version.as_bytes()), Some("SystemPing"));
        assert_eq!(name("GET", "/".repeat(1 << 16).as_bytes()), None);
    }

    #[test]
    fn templates_compile() {
        assert_eq!(
            template("/containers/{name}/checkpoints/{checkpoint}"),
            Template {
                prefix: b"/containers/",
                var1: Some(Var::Segment),
                lit1: b"/checkpoints/",
                var2: Some(Var::Segment),
                lit2: b"",
                object: true,
            }
        );
        assert_eq!(
            template("/networks/{id:.+}"),
            Template {
                prefix: b"/networks/",
                var1: Some(Var::NonEmpty),
                lit1: b"",
                var2: None,
                lit2: b"",
                object: true,
            }
        );
        assert!(!template("/{anyroute:.*}").object);
        assert_eq!(section_of("containers.read"), "containers");
    }
}
