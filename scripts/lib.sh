# Shared helpers for scripts/*. Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX_PREFIX="$ROOT/target/nginx"
MODULE_NAME=ngx_http_docker_stream_module

log() { printf '==> %s %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs Debian packages that are missing; a no-op when all are present.
need_pkgs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them, or run as root)"
    log "installing ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq >/dev/null
        export APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Installs Python packages (PyPI) that python3 cannot import: need_pip MODULE=REQUIREMENT...
need_pip() {
    local missing=() m
    for m in "$@"; do
        python3 -c "import ${m%%=*}" 2>/dev/null || missing+=("${m#*=}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "pip install ${missing[*]}"
    python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}"
}

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list entries),
# for `debian-security` when $1 is "security"; empty when none is configured.
apt_mirror() {
    local want='/debian/?$' f
    [ "${1:-}" != security ] || want='/debian-security/?$'
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        {
            sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
            sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' "$f"
        } | grep -E "^https?://" | grep -E "$want" | sed -n 1p
    done | sed -n '1{s:/*$::;p}'
}

build_deps() {
    need_pkgs build-essential clang libclang-dev libpcre2-dev libssl-dev zlib1g-dev python3
}

# Sets DOCKER_SOCK to a daemon that answers: $NDS_DOCKER_SOCK, else /var/run/docker.sock,
# else a dockerd of our own (own data root, exec root and socket; a bridge of its own with
# an address in 198.18.0.0/15, the range set aside for benchmarks, and no iptables rules,
# so it changes nothing on the host's network: `--bridge none` would delete the docker0
# bridge of a system daemon that is installed but not answering), stopped by
# stop_own_dockerd.
OWN_DOCKERD_PID=
docker_answers() { docker -H "unix://$1" version >/dev/null 2>&1; }
ensure_dockerd() {
    if [ -n "${NDS_DOCKER_SOCK:-}" ]; then
        docker_answers "$NDS_DOCKER_SOCK" || die "no Docker engine answers on NDS_DOCKER_SOCK=$NDS_DOCKER_SOCK"
        DOCKER_SOCK=$NDS_DOCKER_SOCK
        return
    fi
    if [ -S /var/run/docker.sock ] && docker_answers /var/run/docker.sock; then
        DOCKER_SOCK=/var/run/docker.sock
        return
    fi
    need_pkgs docker.io
    local base=/run/nds-dockerd
    mkdir -p "$base" "$ROOT/target/dockerd"
    DOCKER_SOCK=$base/docker.sock
    log "starting a dockerd of our own on $DOCKER_SOCK"
    OWN_BRIDGE=nds-test0
    ip link show "$OWN_BRIDGE" >/dev/null 2>&1 || {
        ip link add "$OWN_BRIDGE" type bridge
        ip addr add 198.19.250.1/24 dev "$OWN_BRIDGE"
    }
    dockerd --data-root "$ROOT/target/dockerd/data" --exec-root "$base/exec" \
        --pidfile "$base/docker.pid" -H "unix://$DOCKER_SOCK" \
        --bridge "$OWN_BRIDGE" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        >"$ROOT/target/dockerd/dockerd.log" 2>&1 &
    OWN_DOCKERD_PID=$!
    for _ in $(seq 1 120); do
        docker_answers "$DOCKER_SOCK" && return
        kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || { tail -20 "$ROOT/target/dockerd/dockerd.log"; die "dockerd exited"; }
        sleep 0.5
    done
    tail -20 "$ROOT/target/dockerd/dockerd.log"
    die "dockerd did not answer within 60 s"
}
stop_own_dockerd() {
    [ -n "$OWN_DOCKERD_PID" ] || return 0
    log "stopping our dockerd"
    kill "$OWN_DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || { remove_own_bridge; return 0; }
        sleep 0.5
    done
    kill -9 "$OWN_DOCKERD_PID" 2>/dev/null || true
    remove_own_bridge
}
OWN_BRIDGE=
remove_own_bridge() {
    [ -n "$OWN_BRIDGE" ] && ip link del "$OWN_BRIDGE" 2>/dev/null || true
}

# A busybox image from Debian's busybox-static (no registry is needed).
ensure_test_image() {
    local image=${NDS_IMAGE:-nds-busybox}
    docker -H "unix://$DOCKER_SOCK" image inspect "$image" >/dev/null 2>&1 && return
    need_pkgs busybox-static
    log "importing $image from busybox-static"
    local d
    d=$(mktemp -d)
    mkdir -p "$d/bin" "$d/tmp" "$d/etc" "$d/proc" "$d/sys" "$d/dev" "$d/root"
    cp /bin/busybox "$d/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
    echo 'root:x:0:' >"$d/etc/group"
    tar -C "$d" -c . | docker -H "unix://$DOCKER_SOCK" import -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
    rm -rf "$d"
}
