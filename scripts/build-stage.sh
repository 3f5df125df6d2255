#!/bin/sh
# The steps of the Dockerfile's build stage, in one file that both the Dockerfile (copied into the
# stage) and scripts/image.sh (run on the host, in a copy of the build context) execute, so that
# the dependency-cache trick the image relies on is what CI runs and cannot drift from it.
#
#   build-stage.sh deps   with only the manifests and Cargo.lock in the current directory: builds
#                         every dependency against stub sources, then forgets the stub baton
#   build-stage.sh app    with the real sources copied in: builds baton and installs it as
#                         $OUT/baton (default /out), with an empty $OUT/data for the volume
#
# POSIX sh: the rust image's /bin/sh is dash.
set -eu

# Symbols stripped by cargo itself (no binutils needed); no incremental state in a one-off build.
export CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-/out}

case "${1:-}" in
deps)
    # The dependencies alone, so that a change to baton's own sources does not rebuild the ~240
    # crates it depends on. demo/ (baton-demo) is a workspace member that cargo must be able to
    # read, but it is no part of the product: only its manifest enters the build, its sources
    # stay stubs for good, and it is never built (-p baton).
    mkdir -p src demo/src
    echo 'fn main() {}' > src/main.rs
    : > src/lib.rs
    echo 'fn main() {}' > demo/src/main.rs
    : > demo/src/lib.rs
    cargo build --release --locked -p baton
    # Forget the stub build of baton itself: cargo decides freshness by modification times, and
    # the real sources copied next may well be older than the stubs (COPY keeps their mtimes).
    rm -rf src "$target/release/baton" "$target/release/baton.d" \
        "$target"/release/deps/baton-* "$target"/release/deps/libbaton-* \
        "$target"/release/.fingerprint/baton-*
    ;;
app)
    cargo build --release --locked -p baton
    mkdir -p "$out/data"
    install -m 0755 "$target/release/baton" "$out/baton"
    # The stub's empty main would print nothing: a binary that does not name itself is the stub.
    version=$("$out/baton" --version)
    case "$version" in
    "baton "*) echo "build-stage: $version" ;;
    *)
        echo "build-stage: $out/baton is not the real broker (--version printed '$version')" >&2
        exit 1
        ;;
    esac
    ;;
*)
    echo "usage: build-stage.sh deps|app" >&2
    exit 2
    ;;
esac
