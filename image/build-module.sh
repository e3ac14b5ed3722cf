#!/usr/bin/env bash
# Build stage of the Dockerfile: builds the module against the nginx Debian ships.
#   build-module.sh configure   configure a copy of nginx-dev's skeleton
#                               (/usr/share/nginx/src) with the package's own flags
#   build-module.sh build       build the module (NGINX_BUILD_DIR=<skeleton>/objs) and
#                               put it, with the nginx version it is for, in /out
# The same steps as scripts/build-debian, without its host-side package handling.
set -euo pipefail

skel=/usr/share/nginx/src
src=/build/nginx-src
out=/out
module=ngx_http_docker_stream_module
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

configure() {
    [ -x "$skel/configure" ] && [ -f "$skel/conf_flags" ] || die "$skel: nginx-dev's skeleton is missing"
    # conf_flags is a bash array assignment, NGX_CONF_FLAGS=( ... ), possibly with quoted
    # words; older packages shipped the bare words.
    local conf_flags f
    conf_flags=$(cat "$skel/conf_flags")
    if [[ $conf_flags =~ ^[[:space:]]*NGX_CONF_FLAGS=\( ]]; then
        eval "$conf_flags"
    else
        eval "NGX_CONF_FLAGS=( $conf_flags )"
    fi
    local flags=()
    for f in "${NGX_CONF_FLAGS[@]}"; do
        case $f in
            # Third-party module sources are not in the skeleton; with --with-compat they
            # change neither the ABI nor the module signature.
            --add-module=* | --add-dynamic-module=*) log "skipping $f" ;;
            *) flags+=("$f") ;;
        esac
    done
    case " ${flags[*]} " in
        *" --with-compat "*) ;;
        *) die "conf_flags lack --with-compat" ;;
    esac
    rm -rf "$src"
    mkdir -p "$src"
    cp -a "$skel/." "$src/"
    log "configure ${flags[*]}"
    (cd "$src" && ./configure "${flags[@]}" >configure.log 2>&1) \
        || { tail -30 "$src/configure.log"; die "configure failed"; }
}

build() {
    [ -f "$src/objs/ngx_auto_config.h" ] || die "run '$0 configure' first"
    NGINX_BUILD_DIR="$src/objs" cargo build --release --lib --locked
    mkdir -p "$out"
    install -m 0644 "target/release/lib$module.so" "$out/$module.so"
    # nginx refuses a module whose signature (word sizes and ABI-relevant options)
    # differs from its own. In the module the signature follows other string constants
    # without a separator (Rust strings are not NUL-terminated), so look for nginx's
    # signature at the end of a string rather than for a whole string.
    local re='[0-9]+,[0-9]+,[0-9]+,[01]{20,}' want
    want=$(strings -a /usr/sbin/nginx | grep -m1 -xE "$re" || true)
    [ -n "$want" ] || die "no module signature found in /usr/sbin/nginx"
    strings -a "$out/$module.so" >/tmp/module-strings
    grep -qE "(^|[^0-9,])$want\$" /tmp/module-strings \
        || die "the module's signature differs from nginx's $want"
    # The runtime stage installs exactly this nginx.
    dpkg-query -W -f='${Version}\n' nginx >"$out/nginx-version"
    log "module for nginx $(cat "$out/nginx-version") (signature $want), rustc $(rustc --version)"
}

"${1:?usage: $0 configure|build}"
