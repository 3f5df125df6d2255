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
#   build         rust:1.95.0-slim-bookworm cannot be pulled either. The Dockerfile's build
#                 stage is replayed here from its own lines (its COPYs into a copy of the build
#                 context under target/image/context; its RUNs of scripts/build-stage.sh deps,
#                 then app: the dependency-cache trick) with this machine's rustc 1.95.0 on
#                 Debian 12 (the glibc the base has); what they produce (out/baton, out/data)
#                 replaces the stage named "build" by
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

# 2. The Dockerfile's build stage, replayed here line by line: each COPY into a copy of the
#    build context (target/image/context, which stands for WORKDIR /src; cp -p keeps mtimes, as
#    COPY does), each RUN of build-stage run with this machine's cargo. Read from the Dockerfile
#    itself, so the two cannot drift; a line it cannot replay fails the build. The context's
#    target/ persists between runs, as a builder's layer cache would.
ctx=$work/context
root=$work/stage-root
mkdir -p "$ctx"
find "$ctx" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
rm -rf "$root" "$work/out"
replay_copy() {
    local dest=${!#} n=$(($# - 1)) src to
    case "$dest" in
    /src/*) to=$ctx/${dest#/src/} ;;
    /*) to=$root$dest ;;
    *) to=$ctx/$dest ;;
    esac
    for src in "${@:1:$n}"; do
        [ -e "$repo/$src" ] || { echo "image.sh: the Dockerfile copies $src, which does not exist" >&2; exit 1; }
        if [ -d "$repo/$src" ]; then
            mkdir -p "$to"
            cp -pR "$repo/$src/." "$to/"
        elif [ "$n" -gt 1 ] || [ "${dest%/}" != "$dest" ]; then
            mkdir -p "$to"
            cp -p "$repo/$src" "$to/"
        else
            mkdir -p "$(dirname "$to")"
            cp -p "$repo/$src" "$to"
        fi
    done
}
in_stage=0
while IFS= read -r line; do
    case "$line" in
    "FROM "*" AS build") in_stage=1; continue ;;
    "FROM "*) [ "$in_stage" -eq 0 ] || break ;;
    esac
    [ "$in_stage" -eq 1 ] || continue
    case "$line" in "" | "#"*) continue ;; esac
    read -r -a words <<<"$line"
    case "${words[0]}" in
    WORKDIR) [ "${words[1]}" = /src ] || { echo "image.sh: cannot replay $line" >&2; exit 1; } ;;
    COPY) replay_copy "${words[@]:1}" ;;
    RUN)
        [ "${words[1]}" = build-stage ] && [ ${#words[@]} -eq 3 ] \
            || { echo "image.sh: cannot replay $line" >&2; exit 1; }
        echo "image.sh: build stage, RUN build-stage ${words[2]}"
        # The app step's log says what it compiled: baton alone, when the deps layer did its
        # work (tests/image/ checks it).
        (cd "$ctx" && CARGO_TARGET_DIR=target OUT="$work/out" \
            sh "$root/usr/local/bin/build-stage" "${words[2]}") 2>&1 | tee "$work/${words[2]}-step.log"
        ;;
    *) echo "image.sh: cannot replay $line" >&2; exit 1 ;;
    esac
done <Dockerfile
[ -x "$work/out/baton" ] || { echo "image.sh: the build stage produced no /out/baton" >&2; exit 1; }

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
