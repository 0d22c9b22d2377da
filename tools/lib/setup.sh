# Sourced by tools/test and tools/run: installs what is missing (Debian 12, as root), then
# configures and builds. Quick when everything is already there.

fieldsync_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build, the tests and the tools need.
fieldsync_packages=(
    g++ cmake ninja-build pkg-config git
    libboost1.81-dev libboost-json1.81-dev
    libsqlite3-dev sqlite3 libssl-dev openssl
    libgtest-dev googletest libbenchmark-dev
    libqrencode-dev libxlsxwriter-dev zlib1g-dev libjemalloc-dev
    clang-format curl
    chromium fonts-noto-cjk
)

fieldsync_install_missing() {
    local missing=()
    local p
    for p in "${fieldsync_packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    # Node.js for the browser tests: Debian's only when the machine has none (a Node.js package
    # that bundles npm may be installed already and would conflict with Debian's npm).
    if ! command -v node >/dev/null 2>&1; then
        missing+=(nodejs npm)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        fieldsync_web_test_deps
        return 0
    fi
    echo "fieldsync: installing ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fieldsync_web_test_deps
}

# The browser tests' npm packages (tests/web: playwright-core, axe-core), installed with `npm ci`
# when node_modules is missing or package-lock.json changed since the last install.
fieldsync_web_test_deps() {
    local dir=$fieldsync_root/tests/web
    [ -f "$dir/package-lock.json" ] || return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "fieldsync: npm not found: the browser tests (tests/web) will fail" >&2
        return 0
    fi
    local sum
    sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$dir/node_modules/.fieldsync-lock" 2>/dev/null)" = "$sum" ]; then
        return 0
    fi
    echo "fieldsync: npm ci in tests/web"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$dir/node_modules/.fieldsync-lock"
}

# fieldsync_build BUILD_DIR [cmake options...]; FIELDSYNC_TARGETS="a b" builds only those targets.
fieldsync_build() {
    local dir=$1
    shift
    local gen=()
    if command -v ninja >/dev/null 2>&1; then
        gen=(-G Ninja)
    fi
    local launcher=()
    if command -v ccache >/dev/null 2>&1; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    fi
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        cmake -S "$fieldsync_root" -B "$dir" "${gen[@]}" "${launcher[@]}" "$@"
    else
        cmake -S "$fieldsync_root" -B "$dir" "$@" >/dev/null
    fi
    local targets=()
    if [ -n "${FIELDSYNC_TARGETS:-}" ]; then
        read -r -a names <<<"$FIELDSYNC_TARGETS"
        targets=(--target "${names[@]}")
    fi
    cmake --build "$dir" --parallel "${FIELDSYNC_JOBS:-$(nproc)}" "${targets[@]}"
}
