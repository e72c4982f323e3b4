#!/bin/sh
# Build the sandbox's base root filesystem from Debian packages (no container registry needed).
#
#   build-rootfs.sh ROOTFS_DIR [--mirror URL] [--security-mirror URL] [--cache-dir DIR] [--wheel FILE]...
#
# Produces a minimal bookworm tree (main, updates and security, so Chromium is the patched build) with the
# packages in packages.txt, the wheels Debian does not package (squarify; vl-convert-python, which bundles its
# own Vega and V8) unpacked into dist-packages, unprivileged `sandbox` (10001) and `job` (10002) users and a matplotlib font cache in
# /opt/coco/mplconfig. The worker (worker.py) is added later by the Python builder as its own layer.
# Needs root and debootstrap (apt-get install debootstrap). Used by coco_agent/sandbox/image.py.
set -eu

usage() { echo "usage: $0 ROOTFS_DIR [--mirror URL] [--security-mirror URL] [--cache-dir DIR] [--wheel FILE]..." >&2; exit 2; }
[ $# -ge 1 ] || usage
ROOTFS=$1; shift
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
CACHE=""
WHEELS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --mirror) MIRROR=$2; shift 2 ;;
        --security-mirror) SECURITY=$2; shift 2 ;;
        --cache-dir) CACHE=$2; shift 2 ;;
        --wheel|--squarify-wheel) WHEELS="$WHEELS $2"; shift 2 ;;
        *) usage ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
SANDBOX_UID=10001
JOB_UID=10002  # jobs under gVisor, whose worker starts as root to run each job as this user

[ "$(id -u)" = 0 ] || { echo "build-rootfs.sh must run as root (debootstrap and chroot need it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap not found: apt-get install debootstrap" >&2; exit 1; }
[ ! -e "$ROOTFS" ] || [ -z "$(ls -A "$ROOTFS")" ] || { echo "$ROOTFS exists and is not empty" >&2; exit 1; }

PACKAGES=$(sed -e 's/#.*//' "$HERE/packages.txt" | tr -s ' \n' ' ')

MOUNTED=""
cleanup() {
    for m in $MOUNTED; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "== debootstrap $SUITE (minbase) into $ROOTFS"
mkdir -p "$ROOTFS"
set -- --variant=minbase
if [ -n "$CACHE" ]; then mkdir -p "$CACHE"; set -- "$@" --cache-dir="$(cd "$CACHE" && pwd)"; fi
debootstrap "$@" "$SUITE" "$ROOTFS" "$MIRROR"

echo "== apt-get install: $PACKAGES"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY" "$SUITE" > "$ROOTFS/etc/apt/sources.list"
mount -t proc proc "$ROOTFS/proc" && MOUNTED="$ROOTFS/proc $MOUNTED"
if [ -n "$CACHE" ]; then
    mkdir -p "$CACHE/partial"
    mount --bind "$CACHE" "$ROOTFS/var/cache/apt/archives" && MOUNTED="$ROOTFS/var/cache/apt/archives $MOUNTED"
fi
chroot "$ROOTFS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $PACKAGES"

# python3-scipy depends on python3-pythran (a compiler), which drags in gcc, g++, boost and -dev headers
# (~600 MB). Nothing imports them at run time: purge them, then prove every extension still links.
echo "== purge build-only packages"
PURGE="python3-pythran python3-gast python3-beniget python3-ply libboost1.74-dev libxsimd-dev
    libopenblas-pthread-dev libopenblas-dev liblapack-dev libblas-dev g++-12 g++ gcc-12 gcc cpp-12 cpp
    libstdc++-12-dev libgcc-12-dev libc6-dev libc-dev-bin linux-libc-dev libcrypt-dev libnsl-dev libtirpc-dev
    rpcsvc-proto libpython3.11-dev libpython3-dev python3.11-dev python3-dev libexpat1-dev zlib1g-dev
    binutils binutils-x86-64-linux-gnu binutils-common libbinutils libctf0 libctf-nobfd0 libgprofng0
    libasan8 libtsan2 liblsan0 libubsan1 libcc1-0 libisl23 python3-sympy python3-mpmath"
INSTALLED=$(chroot "$ROOTFS" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $PURGE 2>/dev/null \
    | awk '$1 == "ii" {print $2}')
chroot "$ROOTFS" dpkg --purge --force-depends $INSTALLED >/dev/null
MISSING=$(chroot "$ROOTFS" sh -c 'find /usr/lib/python3/dist-packages /usr/lib/python3.11 -name "*.so*" -type f \
    | xargs ldd 2>/dev/null | grep "not found" | sort -u' || true)
[ -z "$MISSING" ] || { printf 'missing shared libraries after the purge:\n%s\n' "$MISSING" >&2; exit 1; }
cleanup
MOUNTED=""

echo "== wheels: squarify, vl-convert-python"
SITE="$ROOTFS/usr/lib/python3/dist-packages"
if [ -z "$WHEELS" ]; then
    TMPW=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$TMPW" squarify vl-convert-python
    WHEELS=$(ls "$TMPW"/*.whl)
fi
for WHEEL in $WHEELS; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$SITE"
done
# vl-convert's extension is one shared object: it must find every library it links in this tree
chroot "$ROOTFS" sh -c 'ldd /usr/lib/python3/dist-packages/vl_convert/*.so | grep "not found"' \
    && { echo "vl-convert misses shared libraries in the rootfs" >&2; exit 1; }

echo "== sandbox user and matplotlib font cache"
echo "sandbox:x:$SANDBOX_UID:$SANDBOX_UID:coco sandbox:/tmp:/usr/sbin/nologin" >> "$ROOTFS/etc/passwd"
echo "sandbox:x:$SANDBOX_UID:" >> "$ROOTFS/etc/group"
echo "job:x:$JOB_UID:$JOB_UID:coco job (gVisor):/tmp:/usr/sbin/nologin" >> "$ROOTFS/etc/passwd"
echo "job:x:$JOB_UID:" >> "$ROOTFS/etc/group"
mkdir -p "$ROOTFS/opt/coco/mplconfig"
chown "$SANDBOX_UID:$SANDBOX_UID" "$ROOTFS/opt/coco/mplconfig"
chroot --userspec="$SANDBOX_UID:$SANDBOX_UID" "$ROOTFS" env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
    MPLCONFIGDIR=/opt/coco/mplconfig MPLBACKEND=Agg python3 -c '
import matplotlib.font_manager as fm, matplotlib.pyplot
names = {f.name for f in fm.fontManager.ttflist}
assert "DejaVu Sans" in names and "WenQuanYi Micro Hei" in names, sorted(names)
import numpy, pandas, scipy, networkx, PIL, cairosvg, squarify, vl_convert
print("font cache:", len(names), "families")'
chroot "$ROOTFS" /usr/bin/dot -V
test -x "$ROOTFS/usr/lib/chromium/chromium" || { echo "chromium is missing from the rootfs" >&2; exit 1; }
chown -R 0:0 "$ROOTFS/opt/coco"
chmod -R a+rX "$ROOTFS/opt/coco"

echo "== trim"
rm -f "$ROOTFS/usr/sbin/policy-rc.d" "$ROOTFS/etc/resolv.conf"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/*
find "$ROOTFS/var/cache/apt/archives" -name '*.deb' -delete 2>/dev/null || true
find "$SITE" -depth -type d -name tests -path '*/dist-packages/*/tests' -exec rm -rf {} + 2>/dev/null || true
echo "== rootfs ready: $(du -sh "$ROOTFS" | cut -f1)"
