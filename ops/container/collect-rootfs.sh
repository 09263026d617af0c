#!/bin/sh
# Assembles the container's root filesystem from a built `komek` binary: the binary, exactly the shared
# libraries `ldd` lists for it (glibc, libpq and what libpq needs), the CA certificates for SMTP and
# provider APIs over TLS, an unprivileged `komek` user (uid 10001), and an empty /data.
# Used by the Containerfile's build stage and by build-offline.sh.
#   collect-rootfs.sh BINARY DEST
set -eu
binary=$1
dest=$2
mkdir -p "$dest/usr/bin" "$dest/etc/ssl/certs" "$dest/data" "$dest/tmp"
cp "$binary" "$dest/usr/bin/komek"
strip "$dest/usr/bin/komek" 2>/dev/null || true
ldd "$binary" | awk '/=> \// { print $3 } /^[[:space:]]*\/.*ld-linux/ { print $1 }' | while read -r lib; do
    cp --parents -L "$lib" "$dest"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/nonexistent\nkomek:x:10001:10001:Komek:/data:/nonexistent\n' >"$dest/etc/passwd"
printf 'root:x:0:\nkomek:x:10001:\n' >"$dest/etc/group"
printf 'hosts: files dns\n' >"$dest/etc/nsswitch.conf"
