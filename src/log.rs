//! The module's log lines: nginx's log macros with the prefix that names the part of the
//! module speaking, `docker_stream:` (the relay and its filters) or `docker_api:` (the
//! rules and guards), so that every line can be found by it and no call site spells it.

/// An error-log line of the relay: `docker_stream: ...` at `level`.
macro_rules! stream_log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, "docker_stream: {}", format_args!($($arg)+))
    };
}

/// A debug line of the relay (`error_log ... debug` with nginx built `--with-debug`).
macro_rules! stream_debug {
    ($log:expr, $($arg:tt)+) => {
        ngx::ngx_log_debug!($log, "docker_stream: {}", format_args!($($arg)+))
    };
}

/// An error-log line of the rules and guards: `docker_api: ...` at `level`.
macro_rules! api_log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, "docker_api: {}", format_args!($($arg)+))
    };
}
