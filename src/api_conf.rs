//! Directives of the Docker API rules: `docker_api_allow` / `docker_api_deny` (rules of a
//! level), `docker_api_policy NAME { allow ...; deny ...; }` (a named rule set, http
//! level) and `docker_api_rules POLICY` (a level checked against the policy that
//! `POLICY`, which may hold variables, names for each request). `api_rules` checks them.

use core::ffi::{c_char, c_void};
use core::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_parse, ngx_conf_t, ngx_http_compile_complex_value,
    ngx_http_compile_complex_value_t, ngx_http_complex_value_t, ngx_parse_size, ngx_pcalloc,
    ngx_shm_zone_t, ngx_str_t, NGX_ERROR, NGX_LOG_EMERG, NGX_OK,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::HttpModuleMainConf;
use ngx::ngx_conf_log_error;

use docker_stream_logic::guards::{GuardConfError, Guards};
use docker_stream_logic::rules::{check_policy_name, Action, Policy, Rule};

use crate::conf::{LocConf, IS_DUPLICATE};
use crate::guard::catch_conf;
use crate::DockerStreamModule;

/// What a level checks requests against.
#[derive(Clone, Debug)]
pub enum Access {
    /// Its own `docker_api_allow` / `docker_api_deny` lines, in order.
    Rules(Vec<Rule>),
    /// `docker_api_rules`: the policy named by this value, evaluated per request (in the
    /// configuration's pool, which outlives every request).
    Policy(*mut ngx_http_complex_value_t),
}

/// The module's http-level configuration.
#[derive(Debug)]
pub struct MainConf {
    pub policies: Vec<Policy>,
    /// The `docker_api_metrics` zone; null when no location shows the counters.
    pub metrics_zone: *mut ngx_shm_zone_t,
    /// Policy names given to `docker_api_rules` without variables, with where they were
    /// given: checked once the whole `http {}` block is read.
    static_names: Vec<(String, String)>,
}

impl Default for MainConf {
    fn default() -> Self {
        MainConf {
            policies: Vec::new(),
            metrics_zone: ptr::null_mut(),
            static_names: Vec::new(),
        }
    }
}

impl MainConf {
    pub fn policy(&self, name: &[u8]) -> Option<&Policy> {
        docker_stream_logic::rules::find_policy(&self.policies, name)
    }
}

/// The directive's values as strings (nginx does not promise UTF-8; selectors and names
/// are ASCII, so a lossy conversion only affects names that are refused anyway).
///
/// # Safety
/// `cf` is the configuration being parsed, with `cf->args` holding a directive line.
unsafe fn args(cf: *mut ngx_conf_t) -> Vec<String> {
    (*(*cf).args)
        .as_slice::<ngx_str_t>()
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        .collect()
}

/// `file:line` of the directive being parsed.
///
/// # Safety
/// As for [`args`].
unsafe fn position(cf: *mut ngx_conf_t) -> String {
    let file = (*cf).conf_file;
    if file.is_null() {
        return String::new();
    }
    format!(
        "{}:{}",
        String::from_utf8_lossy((*file).file.name.as_bytes()),
        (*file).line
    )
}

pub extern "C" fn set_allow(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    add_rule(cf, conf, Action::Allow)
}

pub extern "C" fn set_deny(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    add_rule(cf, conf, Action::Deny)
}

fn add_rule(cf: *mut ngx_conf_t, conf: *mut c_void, action: Action) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: called by nginx as a 1MORE directive handler of this module, with its
        // LocConf and cf->args holding the directive and its values.
        let (conf, words) = unsafe { (&mut *conf.cast::<LocConf>(), args(cf)) };
        let name = words[0].as_str();
        let values: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let access = conf.access.get_or_insert(Access::Rules(Vec::new()));
        let Access::Rules(rules) = access else {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"{name}\" cannot be combined with \"docker_api_rules\" at one level"
            );
            return NGX_CONF_ERROR;
        };
        match Rule::parse(name, action, &values) {
            Ok(rule) => {
                rules.push(rule);
                NGX_CONF_OK
            }
            Err(e) => {
                ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{name}\": {e}");
                NGX_CONF_ERROR
            }
        }
    })
}

/// `docker_api_policy NAME { ... }`: parses the block's lines with [`policy_line`].
pub extern "C" fn set_policy(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: called by nginx for this module's http-level block directive with its
        // MainConf; cf->args holds the directive and the name.
        let (main, words) = unsafe { (&mut *conf.cast::<MainConf>(), args(cf)) };
        let name = &words[1];
        if let Err(e) = check_policy_name(name) {
            ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"docker_api_policy\": {e}");
            return NGX_CONF_ERROR;
        }
        if main.policies.iter().any(|p| &p.name == name) {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"docker_api_policy\": \"{name}\" is already defined"
            );
            return NGX_CONF_ERROR;
        }
        main.policies.push(Policy {
            name: name.clone(),
            rules: Vec::new(),
            guards: None,
        });
        // The block's lines cannot define policies, so the vector does not grow while
        // nginx holds this pointer.
        let policy: *mut Policy = main.policies.last_mut().unwrap();
        // SAFETY: the usual way to parse a block of one's own (as `map` and `types` do):
        // nginx calls cf->handler for each line; cf is restored afterwards.
        let rv = unsafe {
            let saved = *cf;
            (*cf).handler = Some(policy_line);
            (*cf).handler_conf = policy.cast();
            let rv = ngx_conf_parse(cf, ptr::null_mut());
            *cf = saved;
            rv
        };
        if rv != NGX_CONF_OK {
            return rv;
        }
        if main.policies.last().is_some_and(|p| p.rules.is_empty()) {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"docker_api_policy\": \"{name}\" has no rules (write \"deny all;\" for a policy that refuses everything)"
            );
            return NGX_CONF_ERROR;
        }
        NGX_CONF_OK
    })
}

/// One `allow ...;` or `deny ...;` line of a `docker_api_policy` block.
unsafe extern "C" fn policy_line(
    cf: *mut ngx_conf_t,
    _dummy: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: nginx calls cf->handler with cf->handler_conf, the policy being parsed
        // (set_policy), and the line's words in cf->args.
        let (policy, words) = unsafe { (&mut *conf.cast::<Policy>(), args(cf)) };
        if let Some(which) = guard_setting(&words[0]) {
            let values: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            let guards = policy.guards.get_or_insert_with(Guards::default);
            if let Err(e) = apply_guard_setting(guards, which, &values) {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"{}\" in \"docker_api_policy\" \"{}\": {e}",
                    words[0],
                    policy.name
                );
                return NGX_CONF_ERROR;
            }
            return NGX_CONF_OK;
        }
        let action = match words[0].as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            other => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "unknown directive \"{other}\" in \"docker_api_policy\" \"{}\", use \"allow\", \"deny\", \"guard\", \"guard_capabilities\" or \"guard_bind_mounts\"",
                    policy.name
                );
                return NGX_CONF_ERROR;
            }
        };
        if words.len() < 2 {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"{}\" in \"docker_api_policy\" \"{}\" needs an operation, group or section",
                words[0],
                policy.name
            );
            return NGX_CONF_ERROR;
        }
        let values: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        match Rule::parse(&words[0], action, &values) {
            Ok(rule) => {
                policy.rules.push(rule);
                NGX_CONF_OK
            }
            Err(e) => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"{}\" in \"docker_api_policy\" \"{}\": {e}",
                    words[0],
                    policy.name
                );
                NGX_CONF_ERROR
            }
        }
    })
}

/// `docker_api_rules POLICY`.
pub extern "C" fn set_rules(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: called by nginx as a TAKE1 directive handler of this module with its
        // LocConf.
        let conf = unsafe { &mut *conf.cast::<LocConf>() };
        match conf.access {
            Some(Access::Policy(_)) => {
                return IS_DUPLICATE;
            }
            Some(Access::Rules(_)) => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"docker_api_rules\" cannot be combined with \"docker_api_allow\" or \"docker_api_deny\" at one level"
                );
                return NGX_CONF_ERROR;
            }
            None => {}
        }
        // SAFETY: cf is the configuration being parsed; the complex value lives in its
        // pool, as nginx's own complex values do; cf->args holds the directive and one
        // value.
        let cv = unsafe {
            let cv = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_http_complex_value_t>())
                .cast::<ngx_http_complex_value_t>();
            if cv.is_null() {
                return NGX_CONF_ERROR;
            }
            // All-zero is the initial state nginx's own callers give it (ngx_memzero).
            let mut ccv: ngx_http_compile_complex_value_t = core::mem::zeroed();
            ccv.cf = cf;
            ccv.value = (*(*cf).args).elts.cast::<ngx_str_t>().add(1);
            ccv.complex_value = cv;
            if ngx_http_compile_complex_value(&mut ccv) != NGX_OK as isize {
                return NGX_CONF_ERROR;
            }
            cv
        };
        // SAFETY: compiled above.
        let (is_static, text) = unsafe {
            (
                (*cv).lengths.is_null(),
                String::from_utf8_lossy((*cv).value.as_bytes()).into_owned(),
            )
        };
        if is_static {
            if let Err(e) = check_policy_name(&text) {
                ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"docker_api_rules\": {e}");
                return NGX_CONF_ERROR;
            }
            // SAFETY: cf is the configuration being parsed, inside http {}.
            let Some(main) = DockerStreamModule::main_conf_mut(unsafe { &*cf }) else {
                return NGX_CONF_ERROR;
            };
            // SAFETY: as above.
            let at = unsafe { position(cf) };
            main.static_names.push((text, at));
        }
        conf.access = Some(Access::Policy(cv));
        NGX_CONF_OK
    })
}

/// At the end of `http {}`: every policy named without variables exists.
///
/// # Safety
/// Called by nginx as this module's init_main_conf, with its MainConf.
pub unsafe extern "C" fn init_main_conf(cf: *mut ngx_conf_t, conf: *mut c_void) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: see the function's contract.
        let main = unsafe { &*conf.cast::<MainConf>() };
        for (name, at) in &main.static_names {
            if main.policy(name.as_bytes()).is_none() {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"docker_api_rules\" in {at} names \"{name}\", which no \"docker_api_policy\" defines"
                );
                return NGX_CONF_ERROR;
            }
        }
        NGX_CONF_OK
    })
}

/// Which part of the guards a directive (or a policy line) sets: the guards that are on,
/// the capabilities allowed, the host paths allowed.
#[derive(Clone, Copy)]
enum GuardSetting {
    On = 0,
    Capabilities = 1,
    BindMounts = 2,
}

fn guard_setting(word: &str) -> Option<GuardSetting> {
    match word {
        "guard" | "docker_api_guard" => Some(GuardSetting::On),
        "guard_capabilities" | "docker_api_guard_capabilities" => Some(GuardSetting::Capabilities),
        "guard_bind_mounts" | "docker_api_guard_bind_mounts" => Some(GuardSetting::BindMounts),
        _ => None,
    }
}

fn apply_guard_setting(
    guards: &mut Guards,
    which: GuardSetting,
    values: &[&str],
) -> Result<(), GuardConfError> {
    match which {
        GuardSetting::On => guards.set_guards(values),
        GuardSetting::Capabilities => guards.set_capabilities(values),
        GuardSetting::BindMounts => guards.set_bind_mounts(values),
    }
}

/// `docker_api_guard`, `docker_api_guard_capabilities`, `docker_api_guard_bind_mounts`.
pub extern "C" fn set_guard(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: called by nginx as a 1MORE directive handler of this module with its
        // LocConf.
        let (conf, words) = unsafe { (&mut *conf.cast::<LocConf>(), args(cf)) };
        let name = words[0].as_str();
        let Some(which) = guard_setting(name) else {
            return NGX_CONF_ERROR;
        };
        if conf.guards_set[which as usize] {
            return IS_DUPLICATE;
        }
        conf.guards_set[which as usize] = true;
        let values: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        match apply_guard_setting(&mut conf.guards, which, &values) {
            Ok(()) => NGX_CONF_OK,
            Err(e) => {
                ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{name}\": {e}");
                NGX_CONF_ERROR
            }
        }
    })
}

/// `docker_api_guard_body_size size`.
pub extern "C" fn set_body_size(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    catch_conf(cf, || {
        // SAFETY: called by nginx as a TAKE1 directive handler of this module with its
        // LocConf; cf->args holds the directive and one value.
        let (conf, mut value) = unsafe {
            (
                &mut *conf.cast::<LocConf>(),
                (*(*cf).args).as_slice::<ngx_str_t>()[1],
            )
        };
        if conf.body_limit.is_some() {
            return IS_DUPLICATE;
        }
        // SAFETY: value is a string of the configuration, as nginx's size slot parses.
        let size = unsafe { ngx_parse_size(&mut value) };
        if size == NGX_ERROR as isize || size <= 0 {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"docker_api_guard_body_size\": invalid size \"{}\"",
                String::from_utf8_lossy(value.as_bytes())
            );
            return NGX_CONF_ERROR;
        }
        conf.body_limit = Some(size as usize);
        NGX_CONF_OK
    })
}
