#!/bin/sh
# Builds the runtime image where no registry is reachable (no base image can be pulled): the release
# binary is built on this host, collect-rootfs.sh assembles the root filesystem, and the Containerfile's
# own runtime stage (cut out of it, so the two never drift) is built FROM scratch on top of it.
#   ops/container/build-offline.sh [TAG]      (default tag: localhost/komek:latest)
set -eu
tag=${1:-localhost/komek:latest}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cargo build --release --locked
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
sh ops/container/collect-rootfs.sh target/release/komek "$context/rootfs"
# The runtime stage, with its COPY --from=build turned into copies from this context.
sed -n '/^FROM scratch AS runtime/,$p' ops/container/Containerfile \
    | sed -e 's|COPY --from=build \(--chown=[^ ]* \)\{0,1\}/rootfs/|COPY \1rootfs/|' >"$context/Containerfile"
podman build --format docker --pull=never -f "$context/Containerfile" -t "$tag" "$context"
podman image inspect "$tag" --format 'built {{.Id}}: {{.Size}} bytes'
