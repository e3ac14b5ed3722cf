#!/usr/bin/env bash
# Entrypoint of the nginx Docker API proxy image: checks the settings in the
# environment, renders nginx's configuration and the allow-list into /run/nds (which
# /etc/nginx/nginx.conf includes), and runs nginx in the foreground as PID 1 (SIGTERM:
# fast stop; SIGQUIT: graceful stop). Every variable is described in image/README.md. A
# command other than nginx runs as is.
set -euo pipefail

share=/usr/local/share/nds
# Everything rendered at start, and nginx's temporary files, live in /run/nds, so the
# root filesystem can be read-only (--read-only with --tmpfs /run).
run_dir=/run/nds
conf=$run_dir/nginx.conf
allow_conf=$run_dir/allowlist.conf
rules_conf=$run_dir/rules.conf
default_rules_conf=$run_dir/default-rules.conf
groups_file=$run_dir/group

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
refusing="refusing to start"
die() {
    printf 'docker-entrypoint: %s: %s\n' "$refusing" "$*" >&2
    exit 64
}

if [ "${1#-}" != "${1:-}" ]; then
    set -- nginx "$@"
fi
if [ "${1:-}" != nginx ] && [ "${1:-}" != /usr/sbin/nginx ]; then
    exec "$@"
fi

# /run/nds starts empty at each start (a restarted container keeps its files when /run
# is no tmpfs). As root it is made anew, root's alone: the workers (www-data) must not
# be able to put files where the master reads its configuration. As another user
# (docker run --user), nginx's workers run as that user too, in the image's /run/nds
# (mode 1777) or a tmpfs's.
uid=$(id -u)
if [ "$uid" = 0 ]; then
    rm -rf "$run_dir" 2>/dev/null || true
else
    rm -rf "${run_dir:?}"/* 2>/dev/null || true
fi
if ! { mkdir -p "$run_dir/temp" && : >"$groups_file"; } 2>/dev/null; then
    if [ "$uid" = 0 ]; then
        die "cannot write $run_dir, where the configuration is rendered at each start: with a read-only root filesystem (--read-only, compose's read_only: true) mount a tmpfs at /run (--tmpfs /run)"
    fi
    die "cannot write $run_dir as uid $uid, where the configuration is rendered at each start: with a read-only root filesystem (--read-only, compose's read_only: true) mount a tmpfs at /run that uid $uid may write (--tmpfs /run:uid=$uid)"
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

# The switches of the allow-list (image/allowlist): name, default, kind, and the module's
# selectors each grants. `global` holds the values of every switch, method and guard
# variable; a tenant's options change a copy of it.
switches=()
declare -A switch_kind=() switch_grants=() global=()
while read -r name default kind grants; do
    case $name in '' | '#'*) continue ;; esac
    switches+=("$name")
    switch_kind[$name]=$kind
    switch_grants[$name]=$grants
    bool "$name" "$default"
    global[$name]=${!name}
done <"$share/allowlist"
# The methods that change state, each a switch of its own (Tecnativa's newer releases):
# GET and HEAD always pass.
methods=(POST DELETE PUT PATCH)
writes=0
for n in "${methods[@]}"; do
    bool "$n" 0
    global[$n]=${!n}
    [ "${!n}" = 0 ] || writes=1
done
# The body guards: on whenever POST=1 (the requests they read are POSTs), each lifted by
# its own variable.
guard_flags=(ALLOW_PRIVILEGED:privileged ALLOW_DEVICES:devices ALLOW_HOST_NAMESPACES:host_namespaces ALLOW_UNCONFINED:unconfined)
guard_lists=(ALLOW_CAPABILITIES ALLOW_BIND_MOUNTS)
for g in "${guard_flags[@]}"; do
    n=${g%%:*}
    bool "$n" 0
    global[$n]=${!n}
done
for n in "${guard_lists[@]}"; do global[$n]=${!n:-}; done
bool DISABLE_IPV6 0
bool ACCESS_LOG 1
bool FORCE_INSECURE 0

# Prints 1 or 0 for a switch value, nothing when it is none.
switch_value() {
    case ${1,,} in
        1 | true | yes | on) echo 1 ;;
        0 | false | no | off) echo 0 ;;
    esac
}

# Checks the values in the array named $1 (messages prefixed by $2): switches that need
# POST, guard variables without POST, the guards' lists.
check_values() {
    local -n v=$1
    local at=$2 n
    if [ "${v[POST]}" = 0 ]; then
        for n in "${switches[@]}"; do
            [ "${switch_kind[$n]}" = post ] || continue
            [ "${v[$n]}" = 0 ] || die "$at$n=1 has no effect with POST=0 (its endpoints are POST requests); set POST=1 too, or drop $n"
        done
        for n in "${guard_flags[@]%%:*}" "${guard_lists[@]}"; do
            case ${v[$n]:-0} in 0) ;; *) die "$at$n=${v[$n]} has no effect with POST=0 (guards check what a POST request asks for); drop it" ;; esac
        done
    fi
    n=${v[ALLOW_CAPABILITIES]}
    [ -z "$n" ] || [[ $n =~ ^(CAP_)?[A-Za-z_]+(,(CAP_)?[A-Za-z_]+)*$ ]] \
        || die "${at}ALLOW_CAPABILITIES=$n: use capability names separated by commas (NET_ADMIN,SYS_TIME)"
    case ",${n^^}," in *,ALL,* | *,CAP_ALL,*) die "${at}ALLOW_CAPABILITIES=$n: ALL is privileged; set ALLOW_PRIVILEGED=1 for that" ;; esac
    n=${v[ALLOW_BIND_MOUNTS]}
    [ -z "$n" ] || [[ $n =~ ^/[A-Za-z0-9._/@+-]*(,/[A-Za-z0-9._/@+-]*)*$ ]] \
        || die "${at}ALLOW_BIND_MOUNTS=$n: use absolute host paths separated by commas (/srv/data,/var/lib/app) of letters, digits and ._/@+-"
}
check_values global ""
if [ "$POST" = 0 ] && [ "$EXEC" = 1 ]; then
    log "note: EXEC=1 with POST=0 allows inspecting execs only; 'docker exec' needs POST=1 and ALLOW_EXEC=1"
fi

# The module's rules and guards for the values in the array named $1, each line
# prefixed by $2.
module_lines() {
    local -n v=$1
    local pre=$2 n g sel= on=()
    for n in "${switches[@]}"; do [ "${v[$n]}" = 0 ] || sel+=" ${switch_grants[$n]}"; done
    if [ -n "$sel" ]; then
        echo "${pre}docker_api_allow$sel;"
    else
        echo "${pre}docker_api_deny all;"
    fi
    [ "${v[POST]}" = 1 ] || return 0
    for g in "${guard_flags[@]}"; do [ "${v[${g%%:*}]}" = 1 ] || on+=("${g#*:}"); done
    echo "${pre}docker_api_guard ${on[*]} capabilities bind_mounts;"
    n=${v[ALLOW_CAPABILITIES]}
    [ -z "$n" ] || echo "${pre}docker_api_guard_capabilities ${n//,/ };"
    n=${v[ALLOW_BIND_MOUNTS]}
    [ -z "$n" ] || echo "${pre}docker_api_guard_bind_mounts ${n//,/ };"
}

# What the values in the array named $1 grant, for the start line: "CONTAINERS POST=1 ...".
granted_text() {
    local -n v=$1
    local n out=
    for n in "${switches[@]}"; do [ "${v[$n]}" = 0 ] || out+=" $n"; done
    for n in "${methods[@]}"; do [ "${v[$n]}" = 0 ] || out+=" $n=1"; done
    if [ "${v[POST]}" = 1 ]; then
        for n in "${guard_flags[@]%%:*}"; do [ "${v[$n]}" = 0 ] || out+=" $n=1"; done
        for n in "${guard_lists[@]}"; do [ -z "${v[$n]}" ] || out+=" $n=${v[$n]}"; done
    fi
    printf %s "${out# }"
}

# --- upstream: the Docker daemon, or the tenants' daemons (TENANTS) --------------------

tenants_file=${TENANTS:-}
gateway=0
if [ -n "$tenants_file" ]; then
    gateway=1
    [[ $tenants_file =~ ^/[A-Za-z0-9._/@+-]+$ ]] || die "TENANTS=$tenants_file: use an absolute path of letters, digits and ._/@+-"
    [ -f "$tenants_file" ] || die "TENANTS=$tenants_file: no such file (mount the tenants file there)"
    # Tenants whose DAEMON is "-" share the proxy's daemon (UPSTREAM, SOCKET_PATH).
    if awk '$1 !~ /^#/ && $2 == "-" { found = 1 } END { exit !found }' "$tenants_file"; then
        gateway_default=1
    elif [ -n "${UPSTREAM:-}${SOCKET_PATH:-}" ]; then
        die "TENANTS=$tenants_file and UPSTREAM/SOCKET_PATH, but no tenant's DAEMON is '-' (the daemon UPSTREAM/SOCKET_PATH names): write '-' on the lines of the tenants that use it, or unset UPSTREAM and SOCKET_PATH"
    fi
fi

# Lets the workers (www-data) connect to the unix socket $1: a group with the socket's
# gid that lists www-data, in /run/nds/group, which glibc reads after /etc/group (nss
# extrausers, see the Dockerfile); nginx's workers get it as a supplementary group
# (initgroups). /etc/group is left as the image has it: the root filesystem may be
# read-only.
# As another user than root the workers keep the container's groups (no initgroups):
# the socket must be usable with them (docker run --group-add GID); $2 prefixes the
# message.
socket_group() {
    local gid
    gid=$(stat -c %g "$1")
    if [ "$uid" != 0 ]; then
        [ -r "$1" ] && [ -w "$1" ] \
            || die "$2uid $uid cannot use the Docker socket $1 (owner $(stat -c '%u, group %g, mode %a' "$1")): add the socket's group to the container's (docker run --group-add $gid; compose: group_add)"
        return
    fi
    grep -q "^nds-socket-$gid:" "$groups_file" \
        || echo "nds-socket-$gid:x:$gid:www-data" >>"$groups_file"
}

# As root, workers run as www-data; the group of each daemon socket is a supplementary
# group. As another user nginx cannot switch: workers run as that user.
user_directive="user www-data www-data;"
[ "$uid" = 0 ] || user_directive="# workers run as the container's user, uid $uid"
upstream_tls=0 upstream_host= upstream= upstream_server=
if [ "$gateway" = 0 ] || [ "${gateway_default:-0}" = 1 ]; then
    if [ -n "${UPSTREAM:-}" ] && [ -n "${SOCKET_PATH:-}" ]; then
        case $UPSTREAM in
            "unix://$SOCKET_PATH" | "unix:$SOCKET_PATH") ;;
            *) die "UPSTREAM=$UPSTREAM and SOCKET_PATH=$SOCKET_PATH disagree; set only one" ;;
        esac
    fi
    upstream=${UPSTREAM:-unix://${SOCKET_PATH:-/var/run/docker.sock}}
fi
case $upstream in
    '') ;;
    unix://* | unix:/*)
        path=${upstream#unix:}
        while [[ $path == //* ]]; do path=${path#/}; done
        [[ $path =~ ^/[A-Za-z0-9._/@+-]+$ ]] || die "unsupported characters in the socket path '$path'"
        if [ ! -S "$path" ]; then
            die "no Docker socket at $path: mount the daemon's socket there (-v /var/run/docker.sock:$path), or set SOCKET_PATH or UPSTREAM"
        fi
        socket_group "$path" ""
        proxy_pass="http://unix:$path:/"
        upstream_server=unix:$path
        upstream_display="unix://$path"
        ;;
    tcp://* | http://*)
        hostport=${upstream#*://}
        hostport=${hostport%/}
        [[ $hostport =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
            || die "UPSTREAM=$upstream: expected tcp://HOST:PORT"
        proxy_pass="http://$hostport/"
        upstream_server=$hostport
        upstream_display="tcp://$hostport"
        ;;
    https://* | tcp+tls://*)
        hostport=${upstream#*://}
        hostport=${hostport%/}
        [[ $hostport =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
            || die "UPSTREAM=$upstream: expected https://HOST:PORT"
        upstream_host=${BASH_REMATCH[1]}
        proxy_pass="https://$hostport/"
        upstream_server=$hostport
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
    [ -z "$f" ] || [ -r "$f" ] || die "$var=$f: uid $uid cannot read it"
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
    upstream_tls_conf=$run_dir/upstream-tls.conf
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

# --- gateway: the tenants file ---------------------------------------------------------

# One tenant per line (image/README.md, "Gateway"):
#     NAME  DAEMON  IDENTITY[,IDENTITY...]  [OPTION...]
# rendered as nginx maps and upstreams (http level) and one named location per tenant
# (server level). Called at start and at every SIGHUP; writes the files with a .new
# suffix and exits non-zero (after a message naming the line) when the file is invalid.
tenants_http=$run_dir/tenants-http.conf
tenants_server=$run_dir/tenants-server.conf
tenants_certs=$run_dir/tenants
render_tenants() {
    local n=0 count=0 line at name daemon ids opt id fp path hostport host scheme
    local -A line_of=() owner=()
    local ro tlsdir tlsname cert key ca key_ value own m
    local -A tv=() tset=()
    local cert_map= auth_map= log_names=
    local upstreams= locations=
    rm -rf "$tenants_certs.new"
    mkdir -p "$tenants_certs.new"
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%%#*}
        read -r -a f <<<"$line"
        [ ${#f[@]} -gt 0 ] || continue
        at="$tenants_file line $n"
        [ ${#f[@]} -ge 3 ] || die "$at: expected NAME DAEMON IDENTITY[,IDENTITY...] [OPTION...], got '${f[*]}'"
        name=${f[0]} daemon=${f[1]} ids=${f[2]}
        [[ $name =~ ^[a-z][a-z0-9_-]{0,31}$ ]] \
            || die "$at: tenant name '$name': use a lowercase letter, then up to 31 lowercase letters, digits, _ or -"
        [ -z "${line_of[$name]:-}" ] || die "$at: tenant $name is already on line ${line_of[$name]}"
        line_of[$name]=$n
        count=$((count + 1))

        # The tenant's own switches start from the proxy's.
        ro=0 tlsdir= tlsname= own=0
        tv=() tset=()
        for key_ in "${!global[@]}"; do tv[$key_]=${global[$key_]}; done
        for opt in "${f[@]:3}"; do
            case $opt in
                read-only) ro=1 ;;
                tls=/*) tlsdir=${opt#tls=} ;;
                tls-name=?*) tlsname=${opt#tls-name=} ;;
                [A-Z]*=*)
                    key_=${opt%%=*} value=${opt#*=}
                    [ -n "${global[$key_]+set}" ] \
                        || die "$at: '$key_' is no switch of this image (the allow-list's, POST, DELETE, PUT, PATCH, or a guard's ALLOW_*)"
                    case " ${guard_lists[*]} " in
                        *" $key_ "*) [ -n "$value" ] || die "$at: $key_= needs a list (a tenant's list replaces the proxy's)" ;;
                        *)
                            value=$(switch_value "$value")
                            [ -n "$value" ] || die "$at: $opt: use 1 (grant) or 0 (deny)"
                            ;;
                    esac
                    tv[$key_]=$value
                    tset[$key_]=1
                    own=1
                    ;;
                *) die "$at: unknown option '$opt' (read-only, tls=/DIR, tls-name=NAME, SWITCH=VALUE)" ;;
            esac
        done
        # POST=0 on a tenant: what it inherits that only POST can use grants nothing.
        if [ "${tv[POST]}" = 0 ]; then
            for key_ in "${switches[@]}" "${guard_flags[@]%%:*}" "${guard_lists[@]}"; do
                [ -z "${tset[$key_]:-}" ] || continue
                case $key_ in
                    ALLOW_CAPABILITIES | ALLOW_BIND_MOUNTS) tv[$key_]= ;;
                    *) [ "${switch_kind[$key_]:-post}" = any ] || tv[$key_]=0 ;;
                esac
            done
        fi
        check_values tv "$at: "
        for m in "${methods[@]}"; do
            [ "${tv[$m]}" = 0 ] || [ "${global[$m]}" = 1 ] \
                || die "$at: $m=1, but the proxy has $m=0: a method is turned on for the proxy ($m=1) and off for the tenants that must not use it ($m=0)"
        done

        case $daemon in
            -)
                # With no '-' line at the start the proxy has no daemon of its own (and
                # UPSTREAM and SOCKET_PATH are unset, or the start was refused): a reload
                # that adds one takes the default socket.
                local shared=$upstream_server
                if [ -z "$shared" ]; then
                    [ -S /var/run/docker.sock ] || die "$at: DAEMON '-' (the proxy's daemon): no Docker socket at /var/run/docker.sock (mount it there; a mount needs a restart)"
                    socket_group /var/run/docker.sock "$at: "
                    shared=unix:/var/run/docker.sock
                fi
                scheme=http
                [ "$upstream_tls" = 0 ] || scheme=https
                upstreams+="upstream nds_tenant_$name { server $shared; }"$'\n'
                ;;
            unix://* | unix:/*)
                path=${daemon#unix:}
                while [[ $path == //* ]]; do path=${path#/}; done
                [[ $path =~ ^/[A-Za-z0-9._/@+-]+$ ]] || die "$at: unsupported characters in the socket path '$path'"
                [ -S "$path" ] || die "$at: no Docker socket at $path (mount tenant $name's daemon socket there)"
                socket_group "$path" "$at: "
                scheme=http
                upstreams+="upstream nds_tenant_$name { server unix:$path; }"$'\n'
                ;;
            tcp://* | http://* | https://*)
                hostport=${daemon#*://}
                hostport=${hostport%/}
                [[ $hostport =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
                    || die "$at: daemon '$daemon': expected tcp://HOST:PORT or https://HOST:PORT"
                host=${BASH_REMATCH[1]}
                scheme=http
                [[ $daemon != https://* ]] || scheme=https
                upstreams+="upstream nds_tenant_$name { server $hostport; }"$'\n'
                ;;
            *) die "$at: daemon '$daemon': expected unix:///path/docker.sock, tcp://HOST:PORT or https://HOST:PORT" ;;
        esac

        for id in ${ids//,/ }; do
            case ${id,,} in
                sha256:*)
                    fp=${id#*:}
                    fp=${fp//:/}
                    fp=${fp,,}
                    [[ $fp =~ ^[0-9a-f]{64}$ ]] || die "$at: identity '$id': a SHA-256 fingerprint is 64 hex digits (colons allowed)"
                    [ "$verify" = 1 ] || die "$at: a certificate identity, but client certificates are not verified (mount ca.pem in $certdir or set TLS_CACERT, with a server certificate)"
                    [ -z "${owner[$fp]:-}" ] || die "$at: certificate $fp is already tenant ${owner[$fp]}'s"
                    owner[$fp]=$name
                    cert_map+="    $fp $name;"$'\n'
                    ;;
                auth)
                    [ "$auth" = 1 ] || die "$at: identity 'auth' (the authentication service names the tenant) needs AUTH_URL"
                    auth_map+="    $name $name;"$'\n'
                    ;;
                *) die "$at: identity '$id': expected sha256:FINGERPRINT or auth" ;;
            esac
        done

        local loc="        location @nds_tenant_$name {"$'\n'
        if [ "$ro" = 1 ]; then
            loc+="            if (\$nds_writes) {
                return 403 '{\"message\": \"access denied by the Docker API proxy: tenant $name is read-only\"}\\n';
            }"$'\n'
        fi
        # The tenant's own switches: the methods it may not use, then its rules and guards
        # in place of the proxy's.
        for m in "${methods[@]}"; do
            [ "${tv[$m]}" = 0 ] && [ "${global[$m]}" = 1 ] || continue
            loc+="            if (\$nds_method = $m) {
                return 403 '{\"message\": \"access denied by the Docker API proxy: tenant $name: $m requests need $m=1\"}\\n';
            }"$'\n'
            [ "$m" = POST ] || continue
            loc+="            if (\$nds_method = websocket) {
                return 403 '{\"message\": \"access denied by the Docker API proxy: tenant $name: the attach WebSocket writes to the container and needs POST=1\"}\\n';
            }"$'\n'
        done
        if [ "$own" = 1 ]; then
            loc+="$(module_lines tv "            ")"$'\n'
        else
            loc+="            include $default_rules_conf;"$'\n'
        fi
        loc+="            include $api_conf;
            # The normalized path, as the allow-list checked it (a named location's
            # proxy_pass takes no URI part).
            rewrite ^ \$uri break;
            proxy_pass $scheme://nds_tenant_$name;
            error_page 502 = @nds_tenant_no_daemon;
            include /etc/nginx/nds-error-pages.conf;"$'\n'
        if [ "$daemon" = - ]; then
            [ -z "$tlsdir$tlsname" ] || die "$at: tls= and tls-name= are for a tenant's own https:// daemon; the proxy's daemon ('-') has UPSTREAM_TLS_*"
            [ "$scheme" = http ] || loc+="            include $upstream_tls_conf;"$'\n'
        elif [ "$scheme" = https ]; then
            tlsdir=${tlsdir:-$upstream_certdir}
            [ -d "$tlsdir" ] || die "$at: tls=$tlsdir: no such directory (mount ca.pem, cert.pem and key.pem for tenant $name's daemon there)"
            [ -f "$tlsdir/ca.pem" ] || die "$at: no $tlsdir/ca.pem to verify tenant $name's daemon"
            tlsname=${tlsname:-$host}
            [[ $tlsname =~ ^[A-Za-z0-9.-]+$ ]] && ! [[ $tlsname =~ ^[0-9.]+$ ]] \
                || die "$at: nginx verifies the daemon's certificate by DNS name: add tls-name=NAME (a DNS name in its certificate)"
            mkdir -p "$tenants_certs.new/$name"
            cp "$tlsdir/ca.pem" "$tenants_certs.new/$name/ca.pem"
            loc+="            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 3;
            proxy_ssl_trusted_certificate $tenants_certs/$name/ca.pem;
            proxy_ssl_name $tlsname;
            proxy_ssl_server_name on;"$'\n'
            cert=$tlsdir/cert.pem key=$tlsdir/key.pem
            if [ -f "$cert" ] || [ -f "$key" ]; then
                [ -f "$cert" ] && [ -f "$key" ] || die "$at: $tlsdir has only one of cert.pem and key.pem"
                cp "$cert" "$tenants_certs.new/$name/cert.pem"
                cp "$key" "$tenants_certs.new/$name/key.pem"
                loc+="            proxy_ssl_certificate $tenants_certs/$name/cert.pem;
            proxy_ssl_certificate_key $tenants_certs/$name/key.pem;"$'\n'
            fi
        elif [ -n "$tlsdir$tlsname" ]; then
            die "$at: tls= and tls-name= are for https:// daemons"
        fi
        locations+="$loc        }"$'\n'
        log_names+=" $name"
    done <"$tenants_file"
    [ "$count" -gt 0 ] || die "$tenants_file: no tenant (one line per tenant: NAME DAEMON IDENTITY[,IDENTITY...] [OPTION...])"
    chmod -R go-rwx "$tenants_certs.new"

    {
        echo "# Rendered by docker-entrypoint.sh from $tenants_file. Do not edit."
        echo
        echo '# Verified client certificate (SHA-256) -> tenant.'
        if [ "$auth" = 1 ]; then
            echo 'map $docker_client_sha256 $nds_cert_tenant {'
        else
            echo 'map $docker_client_sha256 $nds_tenant {'
        fi
        echo '    default "";'
        printf %s "$cert_map"
        echo '}'
        if [ "$auth" = 1 ]; then
            echo
            echo '# The tenant the authentication service named (X-Docker-Tenant), if it may.'
            echo 'map $nds_auth_tenant $nds_auth_named_tenant {'
            echo '    default "";'
            printf %s "$auth_map"
            echo '}'
            echo
            echo '# Both, when both name one: they must agree.'
            echo 'map "$nds_cert_tenant:$nds_auth_named_tenant" $nds_tenant {'
            echo '    ":" "";'
            echo '    "~^(?<t>[^:]+):$" $t;'
            echo '    "~^:(?<t>[^:]+)$" $t;'
            echo '    "~^([^:]+):\1$" $1;'
            echo '    default "!conflict";'
            echo '}'
        fi
        echo
        echo '# For the refusal of a client in no tenant.'
        echo 'map $docker_client_sha256 $nds_client_sha256 {'
        echo '    "" none;'
        echo '    default $docker_client_sha256;'
        echo '}'
        echo
        printf %s "$upstreams"
    } >"$tenants_http.new"
    {
        echo "# Rendered by docker-entrypoint.sh from $tenants_file. Do not edit."
        printf %s "$locations"
    } >"$tenants_server.new"
    printf '%s\n' "$count tenants:$log_names" >"$tenants_http.summary"
}

# Puts the rendered tenant files in place (after render_tenants); the previous ones stay
# as .old for restore_tenants.
install_tenants() {
    local f
    for f in "$tenants_certs" "$tenants_http" "$tenants_server"; do
        rm -rf "$f.old"
        [ ! -e "$f" ] || mv "$f" "$f.old"
        mv "$f.new" "$f"
    done
}
restore_tenants() {
    local f
    for f in "$tenants_certs" "$tenants_http" "$tenants_server"; do
        rm -rf "$f"
        mv "$f.old" "$f"
    done
}

# --- listeners ------------------------------------------------------------------------

listen_directives=
# The method switches that are on, for messages: "POST=1 DELETE=1".
write_switches() {
    local n out=
    for n in "${methods[@]}"; do [ "${!n}" = 0 ] || out+="${out:+ }$n=1"; done
    printf %s "$out"
}
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
    [ "$loopback" = 0 ] && [ "$writes" = 1 ] || return 0
    [ "$auth" = 0 ] || return 0
    [ "$ssl" = 0 ] || [ "$verify" = 0 ] || return 0
    local where="on all interfaces" how="without TLS or authentication"
    [ "$all_interfaces" = 1 ] || where="on $host, not loopback"
    [ "$ssl" = 0 ] || how="with TLS but without client certificates (no CA: $certdir/ca.pem or TLS_CACERT) or authentication"
    if [ "$FORCE_INSECURE" = 1 ]; then
        log "warning: $var=$value listens $where $how and $(write_switches) grants write access (FORCE_INSECURE=1)"
    else
        die "$var=$value listens $where $how, and $(write_switches) lets anyone who reaches it change state (with CONTAINERS=1: root on the host). Listen on loopback ($var=127.0.0.1:$port), keep POST, DELETE, PUT and PATCH off (read-only), require client certificates (server-cert.pem, server-key.pem and ca.pem in $certdir), set AUTH_URL, or, on a network you trust (an internal Docker network), set FORCE_INSECURE=1"
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

# TLS, client certificates and auth_request: templates rendered into /run/nds and
# included where they apply.
tls_directives=
if [ "$tls" = 1 ]; then
    export NDS_TLS_CERT=$tls_cert NDS_TLS_KEY=$tls_key NDS_TLS_CA=$tls_ca
    envsubst '${NDS_TLS_CERT} ${NDS_TLS_KEY}' <"$share/tls.conf.template" >"$run_dir/tls.conf"
    tls_directives="        include $run_dir/tls.conf;"
    if [ "$verify" = 1 ]; then
        {
            envsubst '${NDS_TLS_CA}' <"$share/tls-client-certs.conf.template"
            [ -z "$tls_crl" ] || printf 'ssl_crl %s;\n' "$tls_crl"
        } >"$run_dir/tls-client-certs.conf"
        tls_directives+=$'\n'"        include $run_dir/tls-client-certs.conf;"
    fi
fi

auth_location= auth_server=
if [ "$auth" = 1 ]; then
    export NDS_AUTH_URL=$auth_url NDS_AUTH_TIMEOUT=$auth_timeout
    envsubst '${NDS_AUTH_URL} ${NDS_AUTH_TIMEOUT}' <"$share/auth-server.conf.template" >"$run_dir/auth-server.conf"
    auth_location="            include $share/auth-location.conf;"
    auth_server="        include $run_dir/auth-server.conf;"
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

# --- capacity and limits --------------------------------------------------------------

# Every tunnel (run, exec, attach) holds two connections, the client's and the daemon's.
worker_connections=${WORKER_CONNECTIONS:-10240}
[[ $worker_connections =~ ^[1-9][0-9]{1,6}$ ]] && [ "$worker_connections" -le 1048576 ] \
    || die "WORKER_CONNECTIONS=$worker_connections: use a number from 10 to 1048576"
# File descriptors: one per connection, two per splice pipe of bulk transfers, some files.
nofile=$((2 * worker_connections + 64))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$nofile" -gt "$hard" ]; then
    nofile=$hard
    if [ "$worker_connections" -gt $((hard - 64)) ]; then
        log "warning: WORKER_CONNECTIONS=$worker_connections but the container may open only $hard files (raise it: docker run --ulimit nofile=$((2 * worker_connections + 64)))"
    fi
fi
limit_http= limit_location= limit_server=
per_client=${MAX_CONNECTIONS_PER_CLIENT:-}
if [ -n "$per_client" ]; then
    [[ $per_client =~ ^[1-9][0-9]{0,6}$ ]] || die "MAX_CONNECTIONS_PER_CLIENT=$per_client: use a number from 1"
    limit_http="    # MAX_CONNECTIONS_PER_CLIENT: requests in progress (a tunnel is one for as long as
    # it lasts) per client: its verified certificate, else its address.
    map \$docker_client_sha256 \$nds_client_key {
        \"\" \$binary_remote_addr;
        default \$docker_client_sha256;
    }
    limit_conn_zone \$nds_client_key zone=nds_clients:10m;"
    limit_location="            limit_conn nds_clients $per_client;
            limit_conn_status 429;
            error_page 429 = @nds_too_many;"
    limit_server="        location @nds_too_many {
            return 429 '{\"message\": \"the Docker API proxy: too many concurrent requests from this client (MAX_CONNECTIONS_PER_CLIENT=$per_client)\"}\\n';
        }"
fi
# An idle limit for tunnels (docker_stream_timeout); none by default, as on the socket.
idle=${STREAM_IDLE_TIMEOUT:-off}
[[ $idle =~ ^(off|[0-9]+(ms|s|m|h|d)?)$ ]] || die "STREAM_IDLE_TIMEOUT=$idle: use an nginx time (30m, 1h) or off"
api_conf=$run_dir/docker-api.conf
grep -q '^docker_stream_timeout off;$' /etc/nginx/docker-api.conf \
    || die "/etc/nginx/docker-api.conf: no 'docker_stream_timeout off;' line to set STREAM_IDLE_TIMEOUT in"
sed "s/^docker_stream_timeout off;\$/docker_stream_timeout $idle;/" /etc/nginx/docker-api.conf >"$api_conf"

# The module's counters (docker_api_metrics) on a listener of their own, in Prometheus'
# text format: requests by operation, tunnels. Not on the API's listener.
metrics_server=
if [ -n "${METRICS_LISTEN:-}" ]; then
    if [[ $METRICS_LISTEN =~ ^[0-9]+$ ]]; then
        metrics_port=$METRICS_LISTEN metrics_listen="listen $METRICS_LISTEN;"
    elif [[ $METRICS_LISTEN =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]+)$ ]]; then
        metrics_port=${BASH_REMATCH[2]} metrics_listen="listen $METRICS_LISTEN;"
    else
        die "METRICS_LISTEN=$METRICS_LISTEN: expected PORT, ADDRESS:PORT or [IPV6]:PORT"
    fi
    [ "$metrics_port" -ge 1 ] && [ "$metrics_port" -le 65535 ] || die "METRICS_LISTEN=$METRICS_LISTEN: port out of range"
    for l in $listen_directives; do
        case $l in *":$metrics_port" | *":$metrics_port;" | "$metrics_port" | "$metrics_port;")
            die "METRICS_LISTEN=$METRICS_LISTEN: the port of an API listener" ;;
        esac
    done
    metrics_server="    # METRICS_LISTEN: the module's counters, nothing else.
    server {
        $metrics_listen
        access_log off;
        default_type application/json;
        location = /metrics { docker_api_metrics; }
        location / {
            return 404 '{\"message\": \"the Docker API proxy: only /metrics here (METRICS_LISTEN)\"}\\n';
        }
    }"
fi

# --- render ---------------------------------------------------------------------------

route= daemon_locations= http_include= log_tenant=
own_display=${upstream_display:-}
if [ "$gateway" = 0 ]; then
    route="            include $api_conf;
            # The URI part (\"/\") makes nginx send the normalized, re-escaped \$uri rather
            # than the client's raw request line.
            proxy_pass $proxy_pass;
            ${upstream_tls_conf:+include $upstream_tls_conf;}
            error_page 502 = @nds_no_daemon;"
    daemon_locations="        location @nds_no_daemon {
            return 502 '{\"message\": \"the proxy cannot reach the Docker daemon at $upstream_display\"}\\n';
        }"
else
    ( render_tenants ) || exit 64
    install_tenants
    upstream_display="$(cat "$tenants_http.summary")"
    http_include="    # The tenants ($tenants_file): identity -> tenant maps, the daemons.
    include $tenants_http;"
    log_tenant=' tenant=$nds_tenant'
    [ "$auth" = 0 ] || route="            auth_request_set \$nds_auth_tenant \$upstream_http_x_docker_tenant;"$'\n'
    route+="            # The tenant's own location, chosen after authentication: try_files acts
            # after the access phase (the file never exists).
            try_files /.nds-tenant @nds_tenant_\$nds_tenant;
            # docker cp, build and load send bodies of any size. This location proxies
            # nothing itself (the tenant's does, with docker-api.conf), so the module
            # does not lift nginx's 1 MiB default here.
            client_max_body_size 0;"
    daemon_locations="        # One location per tenant: @nds_tenant_NAME.
        include $tenants_server;
        location @nds_tenant_ {
            return 403 '{\"message\": \"access denied by the Docker API proxy: this client is in no tenant (verified client certificate SHA-256: \$nds_client_sha256)\"}\\n';
        }
        location @nds_tenant_!conflict {
            return 403 '{\"message\": \"access denied by the Docker API proxy: the client certificate and the authentication service name different tenants\"}\\n';
        }
        location @nds_tenant_no_daemon {
            return 502 '{\"message\": \"the proxy cannot reach the Docker daemon of tenant \$nds_tenant\"}\\n';
        }"
fi

# The image's HEALTHCHECK (nds-healthcheck) asks this server, on a unix socket inside
# the container (no port to collide with on the host's network), for the daemon's
# /_ping; with tenants but no daemon of the proxy's own, nginx's answer is the check.
health_ping="return 200 'OK';" health_down=
if [ -n "$upstream" ]; then
    health_ping="proxy_pass ${proxy_pass}_ping;
            ${upstream_tls_conf:+include $upstream_tls_conf;}
            proxy_connect_timeout 5s;
            proxy_read_timeout 5s;
            error_page 502 504 = @nds_health_down;"
    health_down="
        location @nds_health_down {
            return 502 'the proxy cannot reach the Docker daemon at $own_display';
        }"
fi
http_include+="
    # The image's HEALTHCHECK (nds-healthcheck): the daemon's /_ping, nothing else.
    server {
        listen unix:$run_dir/health.sock;
        access_log off;
        default_type text/plain;
        location = /_ping {
            $health_ping
        }
        location / {
            return 404;
        }$health_down
    }"
http_include+="${metrics_server:+
$metrics_server}"
export NDS_WORKER_CONNECTIONS=$worker_connections NDS_RLIMIT_NOFILE=$nofile \
    NDS_LIMIT_HTTP=$limit_http NDS_LIMIT_LOCATION=$limit_location NDS_LIMIT_SERVER=$limit_server
export NDS_USER_DIRECTIVE=$user_directive NDS_WORKER_PROCESSES=$workers \
    NDS_ERROR_LOG_LEVEL=$level NDS_SHUTDOWN_TIMEOUT=$shutdown_timeout \
    NDS_ACCESS_LOG=$access_log NDS_LISTEN_DIRECTIVES=$listen_directives \
    NDS_TLS_DIRECTIVES=$tls_directives NDS_AUTH_LOCATION=$auth_location \
    NDS_AUTH_SERVER=$auth_server NDS_ROUTE=$route NDS_DAEMON_LOCATIONS=$daemon_locations \
    NDS_HTTP_INCLUDE=$http_include NDS_LOG_TENANT=$log_tenant
envsubst '${NDS_USER_DIRECTIVE} ${NDS_WORKER_PROCESSES} ${NDS_ERROR_LOG_LEVEL}
    ${NDS_SHUTDOWN_TIMEOUT} ${NDS_ACCESS_LOG} ${NDS_LISTEN_DIRECTIVES}
    ${NDS_TLS_DIRECTIVES} ${NDS_AUTH_LOCATION} ${NDS_AUTH_SERVER} ${NDS_ROUTE}
    ${NDS_DAEMON_LOCATIONS} ${NDS_HTTP_INCLUDE} ${NDS_LOG_TENANT} ${NDS_WORKER_CONNECTIONS}
    ${NDS_RLIMIT_NOFILE} ${NDS_LIMIT_HTTP} ${NDS_LIMIT_LOCATION} ${NDS_LIMIT_SERVER}' \
    <"$share/nginx.conf.template" >"$conf.tmp"
mv "$conf.tmp" "$conf"

# The allow-list: the method switches and malformed paths as nginx maps (checked first,
# in the rewrite phase), the granted switches as the module's rules, the guards, and a
# hint for the module's refusals that names the variable to set. $uri is nginx's
# normalized path (percent-decoded, dot segments resolved, slashes merged), the path
# proxy_pass sends to the daemon and the module classifies.
deny='access denied by the Docker API proxy'
# For the hints: the switches that grant each selector, operations first, then groups,
# then sections (nginx tries regular expressions in order).
declare -A grantors=()
by_op=() by_group=() by_section=()
for n in "${switches[@]}"; do
    for sel in ${switch_grants[$n]}; do
        if [ -z "${grantors[$sel]:-}" ]; then
            case $sel in
                [A-Z]*) by_op+=("$sel") ;;
                *.*) by_group+=("$sel") ;;
                *) by_section+=("$sel") ;;
            esac
        fi
        grantors[$sel]+="${grantors[$sel]:+ or }$n=1"
    done
done
{
    echo "# Rendered by docker-entrypoint.sh from $share/allowlist. Do not edit."
    echo "# Granted: $(granted_text global)"
    echo
    echo '# Control characters, backslashes, dot segments: never valid API paths.'
    echo 'map $uri $nds_malformed {'
    echo '    default 0;'
    echo '    "~[\x00-\x1f\x7f\\\\]" 1;'
    echo '    "~(^|/)\.\.?(/|$)" 1;'
    echo '}'
    echo
    echo '# The method switch a request needs: none for GET and HEAD, POST for the attach'
    echo '# WebSocket (a GET that writes to the container) and any other method.'
    echo 'map "$request_method:$docker_api_operation" $nds_method {'
    echo '    default POST;'
    echo '    "~^(?:GET|HEAD):ContainerAttachWebsocket$" websocket;'
    echo '    "~^(?:GET|HEAD):" "";'
    echo '    "~^DELETE:" DELETE;'
    echo '    "~^PUT:" PUT;'
    echo '    "~^PATCH:" PATCH;'
    echo '}'
    echo 'map $nds_method $nds_writes {'
    echo '    "" 0;'
    echo '    default 1;'
    echo '}'
    echo
    echo '# Why the request is refused before the module looks at it; empty when it is not.'
    echo 'map "$nds_malformed:$nds_method" $nds_denied {'
    echo "    \"~^1:\" \"$deny: malformed path\";"
    echo '    "0:" "";'
    if [ "$POST" = 0 ]; then
        echo "    \"0:websocket\" \"$deny: the attach WebSocket writes to the container and needs POST=1\";"
        echo "    \"0:POST\" \"$deny: read-only, POST requests need POST=1\";"
    fi
    for n in DELETE PUT PATCH; do
        [ "${!n}" = 1 ] || echo "    \"0:$n\" \"$deny: $n requests need $n=1\";"
    done
    echo '    default "";'
    echo '}'
    echo
    echo '# What to set for a request the module refuses (docker_api_refusal_hint).'
    echo 'map "$docker_api_rule|$docker_api_operation|$docker_api_group" $nds_refusal_hint {'
    echo '    default "";'
    for g in "${guard_flags[@]}"; do
        echo "    \"~^docker_api_guard ${g#*:}\\|\" \"this image allows it with ${g%%:*}=1\";"
    done
    echo "    \"~^docker_api_guard capabilities\\|\" \"this image allows the capabilities listed in ALLOW_CAPABILITIES\";"
    echo "    \"~^docker_api_guard bind_mounts\\|\" \"this image allows bind mounts of the host directories listed in ALLOW_BIND_MOUNTS\";"
    echo '    "~^no rule\|\|" "the path is no Docker API endpoint";'
    for sel in "${by_op[@]}"; do
        echo "    \"~^no rule\\|$sel\\|\" \"this image allows it with ${grantors[$sel]}\";"
    done
    for sel in "${by_group[@]}"; do
        echo "    \"~^no rule\\|[^|]*\\|${sel//./\\.}\$\" \"this image allows it with ${grantors[$sel]}\";"
    done
    for sel in "${by_section[@]}"; do
        echo "    \"~^no rule\\|[^|]*\\|$sel\\.[^|]*\$\" \"this image allows it with ${grantors[$sel]}\";"
    done
    echo '    "~^no rule\|" "no setting of this image allows it";'
    echo '}'
} >"$allow_conf"

# The module's rules and guards for the proxy's switches: for the API server, or with
# tenants for each tenant's location that has no switches of its own (a tenant's are
# checked there, after the tenant is known).
{
    echo "# Rendered by docker-entrypoint.sh from $share/allowlist. Do not edit."
    module_lines global ""
} >"$default_rules_conf"
{
    echo "# Rendered by docker-entrypoint.sh from $share/allowlist. Do not edit."
    [ "$gateway" = 1 ] || echo "include $default_rules_conf;"
    echo 'docker_api_refusal_hint $nds_refusal_hint;'
} >"$rules_conf"

security="TLS: off"
[ "$tls" = 0 ] || security="TLS: $tls_cert$([ "$verify" = 0 ] && echo ', no client certificates' || echo ", client certificates from $tls_ca")${tls_crl:+, CRL $tls_crl}"
[ "$upstream_tls" = 0 ] || security+="; to the daemon: TLS, name $up_name verified: $UPSTREAM_TLS_VERIFY${up_cert:+, client certificate $up_cert}"
[ "$auth" = 0 ] || security+="; auth_request: $auth_url"
security+="; worker_connections $worker_connections${per_client:+, per client $per_client}; tunnels idle: $idle"
log "Docker API proxy: $listen_directives -> $upstream_display; $security; granted: $(granted_text global)"
[ "$gateway" = 1 ] || exec "$@"

# The gateway: this script stays PID 1, so that a SIGHUP to the container (docker kill -s
# HUP) re-reads the tenants file before nginx reloads. An invalid file, or a configuration
# nginx -t refuses, is logged and nginx keeps the tenants it has. TERM, INT, QUIT and
# USR1 are passed on to nginx; the script exits with nginx's status.
reload() {
    if ! (refusing="reload refused" && render_tenants); then
        log "nginx keeps the tenants it has"
        return
    fi
    install_tenants
    local out
    if ! out=$(nginx -t -q 2>&1); then
        restore_tenants
        log "reload refused: nginx -t: $out"
        return
    fi
    log "reload: $(cat "$tenants_http.summary")"
    kill -HUP "$nginx_pid"
}
"$@" &
nginx_pid=$!
# (|| true: a failed command inside the handler must not end the script under set -e.)
trap 'reload || true' HUP
trap 'kill -TERM "$nginx_pid" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null || true' QUIT
trap 'kill -USR1 "$nginx_pid" 2>/dev/null || true' USR1
while :; do
    rc=0
    wait "$nginx_pid" || rc=$?
    kill -0 "$nginx_pid" 2>/dev/null || exit "$rc"
done
