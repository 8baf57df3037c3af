#!/usr/bin/env bash
# test/scripts/deb.sh -- `make deb`: the Debian package, built the way Debian
# builds PostgreSQL extensions (debian/ with pg_buildext: one binary package
# postgresql-<major>-order-flow per major in debian/pgversions whose server
# development files are installed).
#
# Owns: the packaging tools (debhelper, postgresql-server-dev-all: installed
# when missing, as root), a clean copy of the tree under .build/deb/ (so the
# build's `make clean` between majors never touches the working tree), and
# the packages it leaves in .build/: their paths are the last lines printed.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$OF_REPO_ROOT"

export DEBIAN_FRONTEND=noninteractive
installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

bash test/scripts/deps.sh
missing=()
for pkg in debhelper postgresql-server-dev-all dpkg-dev; do
    installed "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        log "deb.sh: missing packages (${missing[*]}) and not root"
        exit 1
    fi
    apt-get update -q -q >/dev/null
    log "deb.sh: installing ${missing[*]}"
    apt-get install -y -q -q --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
src=.build/deb/order-flow-${version%-*}
rm -rf .build/deb
mkdir -p "$src"
# the tree as it is (not only what is committed), without build products
tar --exclude=./.git --exclude=./.build --exclude=./results --exclude=./output_iso \
    --exclude='*.o' --exclude='*.bc' --exclude='*.so' -cf - . | tar -C "$src" -xf -

(
    cd "$src"
    pg_buildext updatecontrol
    dpkg-buildpackage -us -uc -b -j"$(nproc)" >../build.log 2>&1 || {
        tail -40 ../build.log >&2
        log "deb.sh: dpkg-buildpackage failed (whole log: $src/../build.log)"
        exit 1
    }
)
debs=(.build/deb/*.deb)
if [[ ! -e ${debs[0]} ]]; then
    log "deb.sh: dpkg-buildpackage made no package"
    exit 1
fi
for d in "${debs[@]}"; do
    mv "$d" .build/
    echo ".build/$(basename "$d")"
done
