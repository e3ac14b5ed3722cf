#!/usr/bin/env bash
# Build stage of the Dockerfile: builds the Debian package of the module in
# /build/module (dpkg-buildpackage: debian/rules, dh's nginx add-on) and puts it, with
# the version of the nginx it was built for, in /out. dh_auto_test has loaded the module
# into this release's /usr/sbin/nginx (`nginx -t`): a signature mismatch fails here.
set -euo pipefail

out=/out
log() { printf '==> %s\n' "$*" >&2; }

cd /build/module
log "dpkg-buildpackage with $(rustc --version), $(cargo --version)"
DEB_BUILD_OPTIONS="noddebs ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -b -us -uc
mkdir -p "$out"
cp ../libnginx-mod-http-docker-stream_*.deb "$out/"
# The runtime stage installs exactly this nginx.
dpkg-query -W -f='${Version}\n' nginx >"$out/nginx-version"
log "package for nginx $(cat "$out/nginx-version"): $(cd "$out" && ls ./*.deb)"
