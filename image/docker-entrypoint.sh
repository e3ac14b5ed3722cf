#!/usr/bin/env bash
# Entrypoint of the nginx Docker API proxy image: checks the settings in the
# environment, renders /etc/nginx/nginx.conf and the allow-list, and runs nginx in the
# foreground as PID 1 (SIGTERM: fast stop; SIGQUIT: graceful stop). Every variable is
# described in image/README.md. A command other than nginx runs as is.
set -euo pipefail

share=/usr/local/share/nds
conf=${NDS_NGINX_CONF:-/etc/nginx/nginx.conf}
allow_conf=/etc/nginx/nds-allowlist.conf

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() {
    printf 'docker-entrypoint: refusing to start: %s\n' "$*" >&2
    exit 64
}

if [ "${1#-}" != "${1:-}" ]; then
    set -- nginx "$@"
fi
if [ "${1:-}" != nginx ] && [ "${1:-}" != /usr/sbin/nginx ]; then
    exec "$@"
fi

# --- switches -------------------------------------------------------------------------

# Sets the variable named $1 to 0 or 1 from its value (default $2 when unset or empty).
bool() {
    local name=$1 v=${!1-}
    [ -n "$v" ] || v=$2
    case ${v,,} in
        1 | true | yes | on) printf -v "$name" 1 ;;
        0 | false | no | off) printf -v "$name" 0 ;;
        *) die "$name=${!1}: use 1 (grant) or 0 (deny)" ;;
    esac
}

# The switch names are those of the allow-list; Tecnativa's defaults.
switches=()
while read -r vars _; do
    case $vars in '' | '#'*) continue ;; esac
    IFS=, read -r -a names <<<"$vars"
    for n in "${names[@]}"; do
        case " ${switches[*]} " in *" $n "*) ;; *) switches+=("$n") ;; esac
    done
done <"$share/allowlist"
for n in "${switches[@]}" POST; do
    case $n in
        EVENTS | PING | VERSION) bool "$n" 1 ;;
        *) bool "$n" 0 ;;
    esac
done
bool DISABLE_IPV6 0
bool ACCESS_LOG 1
bool FORCE_INSECURE 0

# Switches whose endpoints only take POST: without POST=1 they grant nothing.
if [ "$POST" = 0 ]; then
    for n in ALLOW_START ALLOW_STOP ALLOW_RESTARTS ALLOW_PAUSE ALLOW_UNPAUSE AUTH BUILD COMMIT SESSION GRPC; do
        [ "${!n}" = 0 ] || die "$n=1 has no effect with POST=0 (its endpoints are POST requests); set POST=1 too, or drop $n"
    done
    [ "$EXEC" = 0 ] || log "note: EXEC=1 with POST=0 allows inspecting execs only; 'docker exec' needs POST=1 and CONTAINERS=1"
fi

# --- upstream: the Docker daemon ------------------------------------------------------

socket_default=/var/run/docker.sock
if [ -n "${UPSTREAM:-}" ] && [ -n "${SOCKET_PATH:-}" ]; then
    case $UPSTREAM in
        "unix://$SOCKET_PATH" | "unix:$SOCKET_PATH") ;;
        *) die "UPSTREAM=$UPSTREAM and SOCKET_PATH=$SOCKET_PATH disagree; set only one" ;;
    esac
fi
upstream=${UPSTREAM:-unix://${SOCKET_PATH:-$socket_default}}
worker_user=www-data
worker_group=www-data
case $upstream in
    unix://* | unix:/*)
        path=${upstream#unix:}
        while [[ $path == //* ]]; do path=${path#/}; done
        [[ $path =~ ^/[A-Za-z0-9._/@+-]+$ ]] || die "unsupported characters in the socket path '$path'"
        if [ ! -S "$path" ]; then
            die "no Docker socket at $path: mount the daemon's socket there (-v /var/run/docker.sock:$path), or set SOCKET_PATH or UPSTREAM"
        fi
        # Workers run as www-data with the socket's group, so they can connect to it.
        gid=$(stat -c %g "$path")
        worker_group=$(getent group "$gid" | cut -d: -f1 || true)
        if [ -z "$worker_group" ]; then
            worker_group=docker-sock
            echo "$worker_group:x:$gid:" >>/etc/group
        fi
        proxy_pass="http://unix:$path:/"
        upstream_display="unix://$path"
        ;;
    tcp://* | http://*)
        hostport=${upstream#*://}
        hostport=${hostport%/}
        [[ $hostport =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
            || die "UPSTREAM=$upstream: expected tcp://HOST:PORT"
        proxy_pass="http://$hostport/"
        upstream_display="tcp://$hostport"
        ;;
    https://* | tcp+tls://*)
        die "UPSTREAM=$upstream: TLS towards the daemon is not supported yet"
        ;;
    *) die "UPSTREAM=$upstream: expected unix:///path/to/docker.sock or tcp://HOST:PORT" ;;
esac

# --- listener -------------------------------------------------------------------------

listen=${LISTEN:-2375}
all_interfaces=0
loopback=0
if [[ $listen =~ ^[0-9]+$ ]]; then
    port=$listen host=
elif [[ $listen =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]+)$ ]]; then
    host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
else
    die "LISTEN=$listen: expected PORT, ADDRESS:PORT or [IPV6]:PORT"
fi
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "LISTEN=$listen: port out of range"
case $host in
    '' | '*' | 0.0.0.0 | '[::]') all_interfaces=1 ;;
    127.* | '[::1]' | localhost) loopback=1 ;;
esac
if [ -z "$host" ] || [ "$host" = '*' ]; then
    if [ "$DISABLE_IPV6" = 0 ] && [ -s /proc/net/if_inet6 ]; then
        listen_directives="listen [::]:$port ipv6only=off;"
    else
        listen_directives="listen $port;"
    fi
else
    listen_directives="listen $host:$port;"
fi

# No TLS and no authentication yet: write access must not be reachable from other hosts.
if [ "$loopback" = 0 ] && [ "$POST" = 1 ]; then
    where="on all interfaces"
    [ "$all_interfaces" = 1 ] || where="on $host, not loopback"
    if [ "$FORCE_INSECURE" = 1 ]; then
        log "warning: LISTEN=$listen listens $where without TLS or authentication and POST=1 grants write access (FORCE_INSECURE=1)"
    else
        die "LISTEN=$listen listens $where without TLS or authentication, and POST=1 lets anyone who reaches it change state (with CONTAINERS=1: root on the host). Listen on loopback (LISTEN=127.0.0.1:$port), keep POST=0 (read-only), or, on a network you trust (an internal Docker network), set FORCE_INSECURE=1"
    fi
fi

# --- logging and processes ------------------------------------------------------------

level=${LOG_LEVEL:-notice}
case ${level,,} in
    debug | info | notice | crit | alert | emerg) level=${level,,} ;;
    warn | warning) level=warn ;;
    err | error) level=error ;;
    *) die "LOG_LEVEL=$LOG_LEVEL: use debug, info, notice, warn(ing), err(or), crit, alert or emerg" ;;
esac
workers=${WORKER_PROCESSES:-auto}
[[ $workers =~ ^(auto|[1-9][0-9]?)$ ]] || die "WORKER_PROCESSES=$workers: use auto or a number"
shutdown_timeout=${SHUTDOWN_TIMEOUT:-5s}
[[ $shutdown_timeout =~ ^[0-9]+(ms|s|m)?$ ]] || die "SHUTDOWN_TIMEOUT=$shutdown_timeout: use an nginx time (5s, 500ms)"
if [ "$ACCESS_LOG" = 1 ]; then access_log="/dev/stdout nds"; else access_log=off; fi

# --- render ---------------------------------------------------------------------------

export NDS_WORKER_USER="$worker_user $worker_group" NDS_WORKER_PROCESSES=$workers \
    NDS_ERROR_LOG_LEVEL=$level NDS_SHUTDOWN_TIMEOUT=$shutdown_timeout \
    NDS_ACCESS_LOG=$access_log NDS_LISTEN_DIRECTIVES=$listen_directives \
    NDS_PROXY_PASS=$proxy_pass NDS_UPSTREAM_DISPLAY=$upstream_display
envsubst '${NDS_WORKER_USER} ${NDS_WORKER_PROCESSES} ${NDS_ERROR_LOG_LEVEL}
    ${NDS_SHUTDOWN_TIMEOUT} ${NDS_ACCESS_LOG} ${NDS_LISTEN_DIRECTIVES} ${NDS_PROXY_PASS}
    ${NDS_UPSTREAM_DISPLAY}' <"$share/nginx.conf.template" >"$conf.tmp"
mv "$conf.tmp" "$conf"

# The allow-list as nginx maps. $uri is nginx's normalized path (percent-decoded, dot
# segments resolved, slashes merged): the path proxy_pass sends to the daemon.
prefix='^(?:/v[0-9.]+)?'
deny='access denied by the Docker API proxy'
{
    echo "# Rendered by docker-entrypoint.sh from $share/allowlist. Do not edit."
    echo "# Granted: POST=$POST$(for n in "${switches[@]}"; do [ "${!n}" = 0 ] || printf ' %s' "$n"; done)"
    echo
    echo '# The allow-list line that governs the path: "ok" when granted, else what grants it.'
    echo 'map $uri $nds_rule {'
    echo '    default "none";'
    echo '    # Control characters, backslashes, dot segments: never valid API paths.'
    echo '    "~[\x00-\x1f\x7f\\\\]" "bad";'
    echo '    "~(^|/)\.\.?(/|$)" "bad";'
    while read -r vars frag; do
        case $vars in '' | '#'*) continue ;; esac
        IFS=, read -r -a names <<<"$vars"
        value=
        for n in "${names[@]}"; do [ "${!n}" = 0 ] || value=ok; done
        if [ -z "$value" ]; then
            if [ ${#names[@]} = 1 ]; then
                value="${names[0]}=1"
            else
                value="one of $(printf '%s=1, ' "${names[@]}")"
                value=${value%, }
            fi
        fi
        printf '    "~%s%s$" "%s";\n' "$prefix" "$frag" "$value"
    done <"$share/allowlist"
    echo '}'
    echo
    echo '# Requests that change state: any method but GET and HEAD, and the attach WebSocket.'
    echo 'map "$request_method $uri" $nds_writes {'
    echo '    default 1;'
    echo "    \"~^(?:GET|HEAD) ${prefix#^}/containers/[^/]+/attach/ws(/.*)?$\" 1;"
    echo '    "~^(?:GET|HEAD) " 0;'
    echo '}'
    echo
    echo '# Why the request is denied; empty when it is allowed.'
    echo 'map "$nds_writes:$nds_rule" $nds_denied {'
    if [ "$POST" = 0 ]; then
        echo "    \"~^1:\" \"$deny: read-only, requests that change state need POST=1\";"
    fi
    echo '    "~^[01]:ok$" "";'
    echo "    \"~:none\$\" \"$deny: endpoint not in the allow-list\";"
    echo "    \"~:bad\$\" \"$deny: malformed path\";"
    echo "    default \"$deny: this endpoint needs \$nds_rule\";"
    echo '}'
} >"$allow_conf"

log "Docker API proxy: $listen_directives -> $upstream_display; POST=$POST; granted:$(for n in "${switches[@]}"; do [ "${!n}" = 0 ] || printf ' %s' "$n"; done)"
exec "$@"
