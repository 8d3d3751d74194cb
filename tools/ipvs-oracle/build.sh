#!/usr/bin/env bash
# Builds the kernel-IPVS oracle: fetches Debian packages (apt-get download) into .cache/ipvs-oracle/debs,
# extracts them, and assembles .cache/ipvs-oracle/vmlinuz + initramfs.cpio.gz holding busybox, the
# ip_vs modules (all schedulers, nf_conntrack and their dependencies), veth, virtio_mmio and virtio_net, ipvsadm 1.31 and iproute2
# with exactly the shared libraries they need, and tools/ipvs-oracle/init as /init.
# Idempotent: packages already downloaded are not fetched again; the image is rebuilt only when an
# input is newer than it. Needs dpkg-deb and apt-get (Debian); to boot, qemu-system-x86.
# Usage: tools/ipvs-oracle/build.sh [--force]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${IPVS_ORACLE_CACHE:-$repo/.cache/ipvs-oracle}"
debs="$cache/debs"
force=0
[ "${1:-}" = "--force" ] && force=1

die() { echo "ipvs-oracle build: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (this script needs a Debian system)"
command -v apt-get >/dev/null || die "apt-get not found (this script needs a Debian system)"
mkdir -p "$debs"

# The kernel: bookworm's linux-image-cloud-amd64 meta package names the versioned image. If the
# package index cannot answer (offline), reuse whatever versioned cloud image is already cached.
kpkg="${IPVS_ORACLE_KERNEL_PKG:-}"
if [ -z "$kpkg" ]; then
  kpkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-cloud-amd64\)$/\1/p' | head -n1 || true)"
fi
if [ -z "$kpkg" ]; then
  cached="$(ls "$debs"/linux-image-6.1.*-cloud-amd64_*.deb 2>/dev/null | head -n1 || true)"
  [ -n "$cached" ] || die "Cannot resolve \"linux-image-cloud-amd64\" to a versioned kernel package (run apt-get update?) and none is cached in $debs"
  kpkg="$(basename "$cached" | cut -d_ -f1)"
fi
case "$kpkg" in linux-image-6.1.*-cloud-amd64) ;; *) die "Kernel package \"$kpkg\" is not a linux-image-6.1 cloud amd64 kernel" ;; esac

pkgs=("$kpkg" busybox-static ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 libc6
  iproute2 libbpf1 libelf1 libmnl0 libbsd0 libmd0 libcap2 zlib1g)

# 1. Download what is missing (one package at a time so a failure names the package).
for p in "${pkgs[@]}"; do
  if ls "$debs/${p}_"*.deb >/dev/null 2>&1; then continue; fi
  echo "ipvs-oracle build: downloading $p" >&2
  if ! (cd "$debs" && apt-get download -q "$p" >/dev/null 2>"$cache/download-$p.log"); then
    cat "$cache/download-$p.log" >&2 || true
    die "Download of Debian package \"$p\" failed (is apt-get update done and deb.debian.org reachable?)"
  fi
done

image="$cache/initramfs.cpio.gz"
kernel="$cache/vmlinuz"
if [ "$force" = 0 ] && [ -s "$image" ] && [ -s "$kernel" ] && [ -z "$(find "$debs" "$here/init" "$here/sctp-echo.c" "$0" -newer "$image" -print -quit)" ]; then
  echo "ipvs-oracle build: up to date ($image)" >&2
  exit 0
fi

# 2. Extract every package into one tree.
x="$cache/extract"
rm -rf "$x" && mkdir -p "$x"
for p in "${pkgs[@]}"; do
  deb="$(ls "$debs/${p}_"*.deb | head -n1)"
  dpkg-deb -x "$deb" "$x"
done
kver="$(ls "$x/lib/modules" | head -n1)"
[ -n "$kver" ] || die "No /lib/modules in $kpkg"
bb="$x/bin/busybox"
"$bb" depmod -b "$x" "$kver"

# 3. Stage the initramfs root.
r="$cache/root"
rm -rf "$r"
mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib/x86_64-linux-gnu,lib64,"lib/modules/$kver"}
cp "$bb" "$r/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
done
cp "$x/sbin/ipvsadm" "$r/sbin/ipvsadm"
cp "$x/bin/ip" "$r/sbin/ip"
# The kernel runs /sbin/modprobe to load schedulers on demand.
ln -sf ../bin/busybox "$r/sbin/modprobe"
ln -sf ../bin/busybox "$r/sbin/depmod"
for so in libc.so.6 libpopt.so.0 libnl-3.so.200 libnl-genl-3.so.200 libbpf.so.1 libelf.so.1 libmnl.so.0 \
  libbsd.so.0 libmd.so.0 libcap.so.2 libz.so.1; do
  f="$(find "$x/lib/x86_64-linux-gnu" "$x/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name "$so" | head -n1)"
  [ -n "$f" ] || die "Library $so not found in the extracted packages"
  cp -L "$f" "$r/lib/x86_64-linux-gnu/$so"
done
cp -L "$x/lib64/ld-linux-x86-64.so.2" "$r/lib64/ld-linux-x86-64.so.2"

# Modules: ip_vs, every scheduler and PE, veth, virtio_mmio + virtio_net (the optional network link to
# the host, test/oracle/host-link.ts), the tunnel receivers a TUN real server uses (ipip, fou for GUE,
# ip_gre; test/oracle/tunnels.oracle.test.ts), SCTP and macvlan (SCTP endpoints in guest
# namespaces on the link: test/oracle/sctp.oracle.test.ts), and their dependencies as modules.dep lists them.
mods="$(cd "$x/lib/modules/$kver" && grep -E '^kernel/(net/netfilter/ipvs/[^:]*|drivers/net/veth\.ko|drivers/net/virtio_net\.ko|drivers/virtio/virtio_mmio\.ko|net/ipv4/(ipip|fou|ip_gre)\.ko|net/sctp/sctp\.ko|drivers/net/macvlan\.ko):' modules.dep | tr -d ':' | tr ' ' '\n' | sort -u)"
for m in $mods; do
  mkdir -p "$r/lib/modules/$kver/$(dirname "$m")"
  cp "$x/lib/modules/$kver/$m" "$r/lib/modules/$kver/$m"
done
cp "$x/lib/modules/$kver/modules.builtin" "$x/lib/modules/$kver/modules.order" "$r/lib/modules/$kver/" 2>/dev/null || true
"$bb" depmod -b "$r" "$kver"
# sctp-echo: minimal SCTP endpoints (tools/ipvs-oracle/sctp-echo.c), static so it needs no library.
if command -v gcc >/dev/null && gcc -static -O2 -o "$r/sbin/sctp-echo" "$here/sctp-echo.c" 2>"$cache/sctp-echo.log"; then :; else
  echo "ipvs-oracle build: sctp-echo not built (gcc with a static libc needed; see $cache/sctp-echo.log): the SCTP oracle test will skip" >&2
fi
cp "$here/init" "$r/init"
chmod 755 "$r/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
echo "root:x:0:" >"$r/etc/group"
printf '127.0.0.1 localhost\n' >"$r/etc/hosts"
printf 'hosts: files\n' >"$r/etc/nsswitch.conf"

# 4. Smoke-test the staged userland on the host (same architecture) when we may chroot.
if [ "$(id -u)" = 0 ]; then
  for b in /sbin/ipvsadm /sbin/ip /bin/busybox; do
    if chroot "$r" /lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1 | grep -q 'not found'; then
      die "Staged $b misses a library: $(chroot "$r" /lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1 | grep 'not found')"
    fi
  done
fi

# 5. Pack: newc cpio, gzip, files sorted and owned by root for a reproducible image.
(cd "$r" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc 2>/dev/null) | gzip -n -6 >"$image.tmp"
mv "$image.tmp" "$image"
cp "$x/boot/vmlinuz-$kver" "$kernel"
echo "$kver" >"$cache/kernel-version"
echo "ipvs-oracle build: $kernel ($kver) and $image ($(du -h "$image" | cut -f1)) ready" >&2
