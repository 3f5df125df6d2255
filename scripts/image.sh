#!/usr/bin/env bash
# Builds the production image, localhost/baton:dev, from the repository's Dockerfile with podman,
# on a machine that can reach no image registry (as CI's cannot). Every instruction of the
# Dockerfile's runtime stage (user, workdir, volume, health check, stop signal, entrypoint,
# labels) runs as written; what cannot be pulled is made here and handed in by build arguments:
#
#   RUNTIME_BASE  gcr.io/distroless/cc-debian12:nonroot cannot be pulled. In its place,
#                 localhost/baton-base:dev, made from the same Debian 12 packages distroless/cc
#                 is made of (libc6, libgcc-s1, libgomp1, libstdc++6, libssl3, ca-certificates,
#                 tzdata, netbase, base-files: `apt-get download`, `dpkg -x`), with distroless's
#                 users (root, nobody, nonroot = 65532), /tmp and /home/nonroot, no shell.
#   build         rust:1.95.0-slim-bookworm cannot be pulled either. The build stage's own steps
#                 (scripts/build-stage.sh deps, then app: the dependency-cache trick) run here,
#                 in a copy of the build context under target/image/context, with this
#                 machine's rustc 1.95.0 on Debian 12 (the glibc the base has); what they
#                 produce (out/baton, out/data) replaces the stage named "build" by
#                 --build-context build=target/image/stage (podman then never runs that stage).
#
# Users build the Dockerfile as it stands (docker build .), with neither.
#
# Environment: BATON_IMAGE (default localhost/baton:dev), BATON_PODMAN_RUNTIME (default runc
# where installed: Debian's crun fails here with "cgroups in hybrid mode not supported").
# Prints the image's size last.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

image=${BATON_IMAGE:-localhost/baton:dev}
base=localhost/baton-base:dev
work=$repo/target/image

if ! command -v podman >/dev/null 2>&1; then
    echo "image.sh: podman is not installed (scripts/setup.sh installs it: apt-get install podman runc)" >&2
    exit 1
fi
runtime=${BATON_PODMAN_RUNTIME:-}
if [ -z "$runtime" ] && [ -x /usr/sbin/runc ]; then runtime=/usr/sbin/runc; fi
podman=(podman)
[ -z "$runtime" ] || podman+=(--runtime "$runtime")
mkdir -p "$work"
# The images this run replaces, removed at the end (by id: nothing else on the machine is touched).
old_ids=()
for name in "$image" "$base"; do
    id=$("${podman[@]}" image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
    [ -z "$id" ] || old_ids+=("$id")
done

# 1. The runtime base, rebuilt when this block (between the two "base:" lines) changes.
# base: begin
base_stamp=$(sed -n '/^# base: begin/,/^# base: end/p' "$0" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$work/base.sha" 2>/dev/null)" != "$base_stamp" ] || ! "${podman[@]}" image exists "$base"; then
    echo "image.sh: making $base from Debian packages"
    debs=$work/debs
    rootfs=$work/rootfs
    rm -rf "$debs" "$rootfs"
    mkdir -p "$debs" "$rootfs"
    # What distroless/cc-debian12 holds: its base (glibc, libssl3, CA certificates, tzdata,
    # netbase, base-files) and the C/C++ runtime (libgcc-s1, libgomp1, libstdc++6).
    pkgs=(libc6 libgcc-s1 libgomp1 libstdc++6 libssl3 ca-certificates tzdata netbase base-files)
    # With no package lists yet (a fresh machine), fetch them once and try again.
    if ! (cd "$debs" && apt-get download -q "${pkgs[@]}"); then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        (cd "$debs" && apt-get download -q "${pkgs[@]}")
    fi
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$rootfs"; done
    # Neither docs for people nor maintainer tooling: distroless keeps only the copyright files.
    rm -rf "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/lintian \
        "$rootfs"/usr/share/base-files "$rootfs"/usr/sbin "$rootfs"/usr/bin "$rootfs"/bin \
        "$rootfs"/sbin "$rootfs"/usr/share/bug "$rootfs"/usr/share/common-licenses \
        "$rootfs"/usr/share/doc/*/changelog*
    # ca-certificates' bundle is made by its maintainer script, which dpkg -x does not run: the
    # same concatenation update-ca-certificates does.
    mkdir -p "$rootfs/etc/ssl/certs"
    find "$rootfs/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat \
        > "$rootfs/etc/ssl/certs/ca-certificates.crt"
    # distroless's users and groups, numbers included (Kubernetes' runAsNonRoot checks 65532).
    cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
    cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
    echo 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"
    mkdir -p "$rootfs/tmp" "$rootfs/root" "$rootfs/home/nonroot" "$rootfs/var/lib" "$rootfs/proc" \
        "$rootfs/sys" "$rootfs/dev"
    chmod 1777 "$rootfs/tmp"
    chmod 0700 "$rootfs/root"
    chown 65532:65532 "$rootfs/home/nonroot"
    # No user's files in the image: root owns everything but /home/nonroot.
    "${podman[@]}" image rm -f "$base" >/dev/null 2>&1 || true
    tar --numeric-owner -C "$rootfs" -c . | "${podman[@]}" import \
        --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'USER=0' --change 'WORKDIR=/' - "$base" >/dev/null
    echo "$base_stamp" > "$work/base.sha"
fi
# base: end

# 2. The build stage's steps, in a copy of what the Dockerfile copies into it, in its order:
#    the manifests, the deps step, the sources (cp -p keeps their mtimes, as COPY does), the app
#    step. The copy's target/ persists between runs, as a builder's layer cache would.
ctx=$work/context
mkdir -p "$ctx/demo"
rm -rf "$ctx/src" "$ctx/templates" "$ctx/static" "$ctx/demo/src" "$work/out"
cp -p Cargo.toml Cargo.lock "$ctx/"
cp -p demo/Cargo.toml "$ctx/demo/"
echo "image.sh: build stage, deps (scripts/build-stage.sh deps)"
(cd "$ctx" && CARGO_TARGET_DIR=target sh "$repo/scripts/build-stage.sh" deps)
cp -pR src templates static "$ctx/"
echo "image.sh: build stage, app (scripts/build-stage.sh app)"
# Its log says what the app step compiled: baton alone, when the deps layer did its work
# (tests/image/ checks it).
(cd "$ctx" && CARGO_TARGET_DIR=target OUT="$work/out" sh "$repo/scripts/build-stage.sh" app) \
    2>&1 | tee "$work/app-step.log"

# What COPY --from=build takes: /out/baton and /out/data, owned by root as in the stage.
rm -rf "$work/stage"
mkdir -p "$work/stage"
cp -a "$work/out" "$work/stage/out"

# 3. The Dockerfile itself. --format docker: the OCI image format has no HEALTHCHECK.
# --pull=never: nothing is fetched; a FROM left unsubstituted fails here, loudly. --no-cache:
# buildah's layer cache keeps a LABEL whose build argument changed (the created date); the
# stage is a few copies, quick to redo.
"${podman[@]}" build --pull=never --no-cache --format docker -f Dockerfile -t "$image" \
    --build-arg RUNTIME_BASE="$base" \
    --build-context build="$work/stage" \
    --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
    --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    .
current=" $("${podman[@]}" image inspect --format '{{.Id}}' "$image" "$base" | tr '\n' ' ')"
for id in "${old_ids[@]}"; do
    case "$current" in *" $id "*) continue ;; esac
    # Still the parent of another image: podman refuses, and that is fine.
    "${podman[@]}" image rm "$id" >/dev/null 2>&1 || true
done
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
echo "image.sh: built $image, $size bytes ($((size / 1024 / 1024)) MiB)"
