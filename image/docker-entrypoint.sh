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
upstream_tls=0 upstream_host=
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
        hostport=${upstream#*://}
        hostport=${hostport%/}
        [[ $hostport =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
            || die "UPSTREAM=$upstream: expected https://HOST:PORT"
        upstream_host=${BASH_REMATCH[1]}
        proxy_pass="https://$hostport/"
        upstream_display="https://$hostport"
        upstream_tls=1
        ;;
    *) die "UPSTREAM=$upstream: expected unix:///path/to/docker.sock, tcp://HOST:PORT or https://HOST:PORT" ;;
esac

# --- TLS ----------------------------------------------------------------------------

# Server side names of Docker's "Protect the Docker daemon socket" guide (dockerd
# --tlscacert=ca.pem --tlscert=server-cert.pem --tlskey=server-key.pem); the client
# side (DOCKER_CERT_PATH) has ca.pem, cert.pem and key.pem.
certdir=${TLS_CERTDIR:-/certs}
if [ -n "${TLS_CERTDIR:-}" ] && [ ! -d "$certdir" ]; then
    die "TLS_CERTDIR=$certdir: no such directory (mount the certificates there)"
fi
# Sets the variable named $1 to the file given by variable $2, or ${4:-$certdir}/$3;
# empty when that default file does not exist. A file named explicitly must exist.
tls_file() {
    local out=$1 var=$2 f=${!2:-}
    if [ -n "$f" ]; then
        [ -e "$f" ] || die "$var=$f: no such file (mount it into the container)"
    else
        f=${4:-$certdir}/$3
        [ -e "$f" ] || f=
    fi
    [ -z "$f" ] || [[ $f =~ ^/[A-Za-z0-9._/@+-]+$ ]] || die "$var=$f: use an absolute path of letters, digits and ._/@+-"
    printf -v "$out" %s "$f"
}
tls_file tls_cert TLS_CERT server-cert.pem
tls_file tls_key TLS_KEY server-key.pem
tls_file tls_ca TLS_CACERT ca.pem
if [ -n "$tls_cert" ] && [ -z "$tls_key" ]; then
    die "server certificate $tls_cert without its key: mount the key at $certdir/server-key.pem or set TLS_KEY"
fi
if [ -z "$tls_cert" ] && [ -n "$tls_key" ]; then
    die "server key $tls_key without its certificate: mount the certificate at $certdir/server-cert.pem or set TLS_CERT"
fi
if [ -z "$tls_cert" ] && [ -n "$tls_ca" ]; then
    die "CA certificate $tls_ca (to verify client certificates) but no server certificate: mount server-cert.pem and server-key.pem in $certdir, or set TLS_CERT and TLS_KEY"
fi
tls_file tls_crl TLS_CRL crl.pem
if [ -n "$tls_crl" ] && [ -z "$tls_ca" ]; then
    die "certificate revocation list $tls_crl but no CA for client certificates: mount ca.pem in $certdir or set TLS_CACERT"
fi
tls=0 verify=0
[ -z "$tls_cert" ] || tls=1
[ -z "$tls_ca" ] || verify=1

# TLS towards the daemon (UPSTREAM=https://): the client side of Docker's guide, as
# DOCKER_CERT_PATH has it (ca.pem, cert.pem, key.pem).
upstream_certdir=${UPSTREAM_TLS_CERTDIR:-/upstream-certs}
if [ -n "${UPSTREAM_TLS_CERTDIR:-}" ] && [ ! -d "$upstream_certdir" ]; then
    die "UPSTREAM_TLS_CERTDIR=$upstream_certdir: no such directory (mount the daemon's client certificates there)"
fi
bool UPSTREAM_TLS_VERIFY 1
upstream_tls_conf=
if [ "$upstream_tls" = 1 ]; then
    tls_file up_cert UPSTREAM_TLS_CERT cert.pem "$upstream_certdir"
    tls_file up_key UPSTREAM_TLS_KEY key.pem "$upstream_certdir"
    tls_file up_ca UPSTREAM_TLS_CACERT ca.pem "$upstream_certdir"
    if [ -n "$up_cert" ] && [ -z "$up_key" ]; then
        die "client certificate $up_cert for the daemon without its key: mount it at $upstream_certdir/key.pem or set UPSTREAM_TLS_KEY"
    fi
    if [ -z "$up_cert" ] && [ -n "$up_key" ]; then
        die "client key $up_key for the daemon without its certificate: mount it at $upstream_certdir/cert.pem or set UPSTREAM_TLS_CERT"
    fi
    up_name=${UPSTREAM_TLS_NAME:-$upstream_host}
    [[ $up_name =~ ^[A-Za-z0-9.-]+$ ]] || die "UPSTREAM_TLS_NAME=$up_name: expected a DNS name"
    if [ "$UPSTREAM_TLS_VERIFY" = 1 ]; then
        [ -n "$up_ca" ] || die "UPSTREAM=$upstream: no CA to verify the daemon's certificate: mount ca.pem in $upstream_certdir, set UPSTREAM_TLS_CACERT, or (not recommended) UPSTREAM_TLS_VERIFY=0"
        if [[ $up_name =~ ^[0-9.]+$ ]]; then
            die "UPSTREAM=$upstream: nginx verifies the daemon's certificate by DNS name, not by IP address; set UPSTREAM_TLS_NAME to a DNS name in its certificate (subjectAltName DNS:...)"
        fi
    fi
    upstream_tls_conf=/etc/nginx/nds-upstream-tls.conf
    export NDS_UP_CERT=$up_cert NDS_UP_KEY=$up_key NDS_UP_CA=$up_ca NDS_UP_NAME=$up_name
    export NDS_UP_VERIFY=$([ "$UPSTREAM_TLS_VERIFY" = 1 ] && echo on || echo off)
    {
        envsubst '${NDS_UP_VERIFY} ${NDS_UP_NAME}' <"$share/upstream-tls.conf.template"
        [ -z "$up_cert" ] || printf 'proxy_ssl_certificate %s;\nproxy_ssl_certificate_key %s;\n' "$up_cert" "$up_key"
        [ -z "$up_ca" ] || printf 'proxy_ssl_trusted_certificate %s;\n' "$up_ca"
    } >"$upstream_tls_conf"
fi

# --- authentication -------------------------------------------------------------------

auth_url=${AUTH_URL:-}
auth=0
if [ -n "$auth_url" ]; then
    [[ $auth_url =~ ^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/%!*+,=:@-]*)?$ ]] \
        || die "AUTH_URL=$auth_url: expected http(s)://HOST[:PORT][/PATH] (no query string)"
    auth=1
fi
auth_timeout=${AUTH_TIMEOUT:-5s}
[[ $auth_timeout =~ ^[0-9]+(ms|s|m)?$ ]] || die "AUTH_TIMEOUT=$auth_timeout: use an nginx time (5s, 500ms)"

# --- listeners ------------------------------------------------------------------------

listen_directives=
# add_listener VAR VALUE SSL: one listen directive, and the check that write access is
# not reachable from the network without TLS client certificates or authentication.
add_listener() {
    local var=$1 value=$2 ssl=$3 host port all_interfaces=0 loopback=0 params=
    if [[ $value =~ ^[0-9]+$ ]]; then
        port=$value host=
    elif [[ $value =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]+)$ ]]; then
        host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
    else
        die "$var=$value: expected PORT, ADDRESS:PORT or [IPV6]:PORT"
    fi
    [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "$var=$value: port out of range"
    case $host in
        '' | '*' | 0.0.0.0 | '[::]') all_interfaces=1 ;;
        127.* | '[::1]' | localhost) loopback=1 ;;
    esac
    [ "$ssl" = 0 ] || params=" ssl"
    local d
    if [ -z "$host" ] || [ "$host" = '*' ]; then
        if [ "$DISABLE_IPV6" = 0 ] && [ -s /proc/net/if_inet6 ]; then
            d="listen [::]:$port$params ipv6only=off;"
        else
            d="listen $port$params;"
        fi
    else
        d="listen $host:$port$params;"
    fi
    listen_directives+="${listen_directives:+ }$d"

    # Write access is root on the host: from the network only with a client
    # certificate or an authentication service in front of it.
    [ "$loopback" = 0 ] && [ "$POST" = 1 ] || return 0
    [ "$auth" = 0 ] || return 0
    [ "$ssl" = 0 ] || [ "$verify" = 0 ] || return 0
    local where="on all interfaces" how="without TLS or authentication"
    [ "$all_interfaces" = 1 ] || where="on $host, not loopback"
    [ "$ssl" = 0 ] || how="with TLS but without client certificates (no CA: $certdir/ca.pem or TLS_CACERT) or authentication"
    if [ "$FORCE_INSECURE" = 1 ]; then
        log "warning: $var=$value listens $where $how and POST=1 grants write access (FORCE_INSECURE=1)"
    else
        die "$var=$value listens $where $how, and POST=1 lets anyone who reaches it change state (with CONTAINERS=1: root on the host). Listen on loopback ($var=127.0.0.1:$port), keep POST=0 (read-only), require client certificates (server-cert.pem, server-key.pem and ca.pem in $certdir), set AUTH_URL, or, on a network you trust (an internal Docker network), set FORCE_INSECURE=1"
    fi
}

if [ "$tls" = 1 ]; then
    add_listener LISTEN "${LISTEN:-2376}" 1
    if [ -n "${LISTEN_PLAIN:-}" ]; then
        [ "$LISTEN_PLAIN" != "${LISTEN:-2376}" ] || die "LISTEN_PLAIN=$LISTEN_PLAIN: the same as the TLS listener (LISTEN)"
        add_listener LISTEN_PLAIN "$LISTEN_PLAIN" 0
    fi
else
    [ -z "${LISTEN_PLAIN:-}" ] || die "LISTEN_PLAIN=$LISTEN_PLAIN is a plain listener next to the TLS one, but there is no server certificate ($certdir/server-cert.pem or TLS_CERT); without TLS, LISTEN is plain"
    add_listener LISTEN "${LISTEN:-2375}" 0
fi

tls_directives=
if [ "$tls" = 1 ]; then
    tls_directives="
        # TLS (docker --tlsverify, DOCKER_TLS_VERIFY=1). No HTTP/2: hijacked streams need
        # HTTP/1.1, and the docker CLI does not offer h2.
        ssl_certificate $tls_cert;
        ssl_certificate_key $tls_key;
        ssl_protocols TLSv1.2 TLSv1.3;
        error_page 497 = @nds_tls_plain;
        location @nds_tls_plain {
            return 400 '{\"message\": \"plain HTTP request sent to the TLS listener of the Docker API proxy: use docker --tlsverify (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)\"}\\n';
        }"
    if [ "$verify" = 1 ]; then
        tls_directives+="
        # Client certificates signed by this CA only, as dockerd --tlsverify.
        ssl_client_certificate $tls_ca;
        ssl_verify_client on;
        ssl_verify_depth 3;${tls_crl:+
        ssl_crl $tls_crl;}
        error_page 495 = @nds_tls_bad_cert;
        error_page 496 = @nds_tls_no_cert;
        location @nds_tls_bad_cert {
            return 403 '{\"message\": \"the Docker API proxy rejected the client certificate (\$ssl_client_verify)\"}\\n';
        }
        location @nds_tls_no_cert {
            return 403 '{\"message\": \"the Docker API proxy requires a client certificate: docker --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH\"}\\n';
        }"
    fi
fi

auth_location= auth_server=
if [ "$auth" = 1 ]; then
    auth_location="
            # Every request, hijacked ones included, is first checked by the
            # authentication service (AUTH_URL) with the client's headers.
            auth_request /_nds_auth;
            auth_request_set \$nds_auth_status \$upstream_status;
            error_page 401 = @nds_auth_401;
            error_page 403 = @nds_auth_403;
            error_page 500 = @nds_auth_error;"
    auth_server="
        location = /_nds_auth {
            internal;
            proxy_pass $auth_url;
            # The client's headers (a token from config.json \"HttpHeaders\",
            # Authorization), not its body.
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header Transfer-Encoding \"\";
            # What is asked, by whom (set here, so a client cannot forge them).
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Client-Cert-Subject \$ssl_client_s_dn;
            proxy_set_header X-Client-Cert-Verify \$ssl_client_verify;
            proxy_connect_timeout $auth_timeout;
            proxy_send_timeout $auth_timeout;
            proxy_read_timeout $auth_timeout;
        }
        location @nds_auth_401 {
            return 401 '{\"message\": \"the Docker API proxy: authentication required, the authentication service refused the request (401)\"}\\n';
        }
        location @nds_auth_403 {
            return 403 '{\"message\": \"the Docker API proxy: the authentication service denied the request (403)\"}\\n';
        }
        location @nds_auth_error {
            # An authentication service that is down, slow or answers anything but
            # 2xx, 401 or 403: refused, never let through.
            if (\$nds_auth_status = \"\") {
                return 500 '{\"message\": \"internal error in the Docker API proxy\"}\\n';
            }
            return 502 '{\"message\": \"the Docker API proxy could not check the request with the authentication service (status \$nds_auth_status); refused\"}\\n';
        }"
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
    NDS_PROXY_PASS=$proxy_pass NDS_UPSTREAM_DISPLAY=$upstream_display \
    NDS_TLS_DIRECTIVES=$tls_directives NDS_AUTH_LOCATION=$auth_location \
    NDS_AUTH_SERVER=$auth_server \
    NDS_UPSTREAM_TLS=${upstream_tls_conf:+include $upstream_tls_conf;}
envsubst '${NDS_WORKER_USER} ${NDS_WORKER_PROCESSES} ${NDS_ERROR_LOG_LEVEL}
    ${NDS_SHUTDOWN_TIMEOUT} ${NDS_ACCESS_LOG} ${NDS_LISTEN_DIRECTIVES} ${NDS_PROXY_PASS}
    ${NDS_UPSTREAM_DISPLAY} ${NDS_TLS_DIRECTIVES} ${NDS_AUTH_LOCATION}
    ${NDS_AUTH_SERVER} ${NDS_UPSTREAM_TLS}' <"$share/nginx.conf.template" >"$conf.tmp"
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
    echo '# The daemon routes /containers/{name:.*}/attach/ws: a name may have slashes (the'
    echo '# parent/alias of a legacy link).'
    echo 'map "$request_method $uri" $nds_writes {'
    echo '    default 1;'
    echo "    \"~^(?:GET|HEAD) ${prefix#^}/containers/.+/attach/ws(/.*)?$\" 1;"
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

security="TLS: off"
[ "$tls" = 0 ] || security="TLS: $tls_cert$([ "$verify" = 0 ] && echo ', no client certificates' || echo ", client certificates from $tls_ca")${tls_crl:+, CRL $tls_crl}"
[ "$upstream_tls" = 0 ] || security+="; to the daemon: TLS, name $up_name verified: $UPSTREAM_TLS_VERIFY${up_cert:+, client certificate $up_cert}"
[ "$auth" = 0 ] || security+="; auth_request: $auth_url"
log "Docker API proxy: $listen_directives -> $upstream_display; $security; POST=$POST; granted:$(for n in "${switches[@]}"; do [ "${!n}" = 0 ] || printf ' %s' "$n"; done)"
exec "$@"
