#!/usr/bin/env bash
# Proves that examples/systemd/mesh.service, hardening included, runs mesh under a real systemd:
# boots a minimal Debian 12 (debootstrap) with systemd-nspawn, set up as examples/raspberry-pi.md
# says (the user mesh, /srv/mesh, /etc/mesh/mesh.env 0600, mesh in /opt/mesh from `npm pack` and
# `npm ci --omit=dev --ignore-scripts`, this machine's node as /usr/bin/node), with the unit
# enabled. Then: the service starts and prints its banner to the journal; it syncs both ways with a
# `mesh join` of this machine over loopback (nspawn shares the host's network); it runs with no
# capabilities, NoNewPrivileges and a seccomp filter; after a SIGKILL (systemctl kill) systemd restarts it
# (RestartSec=10); `systemctl stop` ends it with exit 0 and no restart. x86_64, not ARM: what it
# checks is the unit, not the CPU (scripts/prove-arm.sh does that).
#
#   sudo scripts/prove-systemd.sh       (npm run prove:systemd; needs root, about 2 minutes)
#   sudo PROVE_DROPIN='ProcSubset=pid' scripts/prove-systemd.sh    (the unit plus one more setting)
#
# Installs debootstrap and systemd-container from Debian if missing, saying so. Stops everything it
# started and removes its temp dir on exit.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK=""
NSPAWN_PID=""
HOST_PID=""
INIT_PID=""
PROVEN=()
PORT=4001   # the unit's --port; nspawn shares this machine's network

say() { printf '\n== %s\n' "$*"; }
proved() { PROVEN+=("$*"); printf '   ok: %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
inside() { nsenter -t "$INIT_PID" -a "$@"; }

cleanup() {
  local status=$?
  if [ -n "$HOST_PID" ] && kill -0 "$HOST_PID" 2>/dev/null; then kill -TERM "$HOST_PID" 2>/dev/null || true; fi
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    if [ -n "$INIT_PID" ]; then inside systemctl poweroff 2>/dev/null || true; fi
    for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null || true
  fi
  if [ -n "$HOST_PID" ]; then kill -KILL "$HOST_PID" 2>/dev/null || true; fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, systemd-nspawn)"
NODE_BIN="$(command -v node)" || fail "needs node on PATH"
! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || fail "port $PORT is in use here (the unit listens on it)"

MISSING=()
command -v debootstrap >/dev/null || MISSING+=(debootstrap)
command -v systemd-nspawn >/dev/null || MISSING+=(systemd-container)
if [ "${#MISSING[@]}" -gt 0 ]; then
  say "installing from Debian: ${MISSING[*]} (apt-get install --no-install-recommends)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${MISSING[@]}"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mesh-prove-systemd.XXXXXX")"
chmod 0755 "$WORK"   # the container's user mesh must reach its folder through it
ROOT="$WORK/rootfs"
say "debootstrap: Debian 12 minbase with systemd into $ROOT"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" http://deb.debian.org/debian > "$WORK/debootstrap.log" 2>&1 ||
  { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }

say "setting it up as examples/raspberry-pi.md says"
(cd "$REPO" && npm run --silent build)
TARBALL="$(cd "$REPO" && npm pack --silent --ignore-scripts --pack-destination "$WORK" | tail -n 1)"
install -d "$ROOT/opt/mesh"
tar -xzf "$WORK/$TARBALL" -C "$ROOT/opt/mesh" --strip-components=1
cp "$REPO/package-lock.json" "$ROOT/opt/mesh/"
cp -r "$REPO/examples" "$ROOT/opt/mesh/"
(cd "$ROOT/opt/mesh" && npm ci --silent --omit=dev --ignore-scripts --no-audit --no-fund)
cp "$NODE_BIN" "$ROOT/usr/bin/node"
KEY="$(node "$REPO/dist/bundle/mesh.js" keygen)"
echo pi-test > "$ROOT/etc/hostname"
chroot "$ROOT" sh -e -c '
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mesh
  install -d -o mesh -g mesh -m 0750 /srv/mesh
  install -d -m 0755 /etc/mesh
  install -m 0600 -o root -g root /dev/null /etc/mesh/mesh.env
  cp /opt/mesh/examples/systemd/mesh.service /etc/systemd/system/mesh.service
  systemctl enable mesh.service
'
echo "MESH_KEY=$KEY" > "$ROOT/etc/mesh/mesh.env"
if [ -n "${PROVE_DROPIN:-}" ]; then   # e.g. PROVE_DROPIN='ProcSubset=pid', to try a setting
  install -d "$ROOT/etc/systemd/system/mesh.service.d"
  printf '[Service]\n%s\n' "$PROVE_DROPIN" > "$ROOT/etc/systemd/system/mesh.service.d/prove.conf"
  echo "   with a drop-in: $PROVE_DROPIN"
fi
echo "   $(stat -c '%A %U:%G' "$ROOT/etc/mesh/mesh.env") /etc/mesh/mesh.env; $(chroot "$ROOT" stat -c '%A %U:%G' /srv/mesh) /srv/mesh"

say "booting it (systemd-nspawn -b)"
systemd-nspawn -D "$ROOT" -b --register=no --keep-unit --console=passive > "$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 100); do
  INIT_PID="$(pgrep -P "$NSPAWN_PID" -x systemd | head -n 1 || true)"
  [ -n "$INIT_PID" ] && break
  sleep 0.2
done
[ -n "$INIT_PID" ] || { cat "$WORK/nspawn.log"; fail "systemd-nspawn did not start a container"; }
journal() { inside journalctl -u mesh --no-pager -o cat 2>/dev/null || true; }
state() { inside systemctl show -p "$1" --value mesh 2>/dev/null || true; }
wait_journal() { # regex seconds what
  local deadline=$((SECONDS + $2))
  until journal | grep -Eq "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || { journal; fail "no '$1' in the journal after $2 s: $3"; }
    sleep 0.5
  done
}
wait_journal 'scanned the folder' 90 "the service did not start"
proved "systemd $(inside systemctl --version | head -n 1 | cut -d' ' -f2) started mesh.service as user $(inside stat -c %U "/proc/$(state MainPID)"): $(journal | grep -m1 'mesh key:' | sed 's/^ *//')"
MAIN="$(state MainPID)"
STATUS="$(inside grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$MAIN/status" | tr -s '\t ' ' ' | tr '\n' ' ')"
echo "$STATUS" | grep -q 'CapEff: 0000000000000000' && echo "$STATUS" | grep -q 'NoNewPrivs: 1' && echo "$STATUS" | grep -q 'Seccomp: 2' ||
  fail "the service's process is less confined than the unit says: $STATUS"
proved "its process: $STATUS"

say "syncing with a mesh join of this machine over loopback"
mkdir "$WORK/host"
echo 'from the host' > "$WORK/host/host.txt"
MESH_KEY="$KEY" node "$REPO/dist/bundle/mesh.js" join "$WORK/host" --no-mdns --peer "/ip4/127.0.0.1/tcp/$PORT" > "$WORK/host.log" 2>&1 &
HOST_PID=$!
wait_journal 'pulled host.txt' 60 "the host's file did not arrive"
proved "the host's file arrived in /srv/mesh: $(journal | grep -m1 'pulled host.txt' | cut -c26-)"
MESH_UID="$(stat -c %u "$ROOT/srv/mesh")"
setpriv --reuid="$MESH_UID" --regid="$MESH_UID" --clear-groups sh -c "echo 'from the service' > '$ROOT/srv/mesh/pi.txt'"
for _ in $(seq 1 60); do [ -f "$WORK/host/pi.txt" ] && break; sleep 0.5; done
cmp -s "$ROOT/srv/mesh/pi.txt" "$WORK/host/pi.txt" || { journal; cat "$WORK/host.log"; fail "the service's new file did not reach the host"; }
proved "a file written in /srv/mesh was seen by the service (ProtectSystem=strict, ReadWritePaths=/srv/mesh) and reached the host: $(journal | grep -m1 'announced new pi.txt' | cut -c26-)"

say "restart on failure, clean stop"
inside systemctl kill --signal=KILL mesh
for _ in $(seq 1 60); do [ "$(state NRestarts)" = 1 ] && [ "$(state SubState)" = running ] && break; sleep 0.5; done
[ "$(state NRestarts)" = 1 ] && [ "$(state SubState)" = running ] || { inside systemctl status mesh --no-pager || true; fail "not restarted after SIGKILL"; }
# Wait for the new process's first scan: mesh handles SIGTERM once its node is open; a stop before
# that ends it by the signal itself (exit status 15, which systemd also counts as a clean stop).
for _ in $(seq 1 120); do [ "$(journal | grep -c 'scanned the folder')" -ge 2 ] && break; sleep 0.5; done
proved "after systemctl kill --signal=KILL, systemd restarted it: $(inside journalctl -u mesh --no-pager -o cat | grep -m1 'Scheduled restart job')"
inside systemctl stop mesh
[ "$(state Result)" = success ] && [ "$(state ExecMainStatus)" = 0 ] || fail "systemctl stop: result $(state Result), exit status $(state ExecMainStatus)"
sleep 12
[ "$(state ActiveState)" = inactive ] || fail "restarted after a clean stop: $(state ActiveState)"
proved "systemctl stop: '$(journal | grep 'stopping' | tail -n 1 | cut -c26-)', exit status 0, result success, not restarted (12 s later: $(state ActiveState))"
echo "   the journal:"; inside journalctl -u mesh --no-pager -o short-iso | sed 's/^/     /'

say "PROVEN on $(date -u +%Y-%m-%dT%H:%MZ), node $("$NODE_BIN" --version), examples/systemd/mesh.service:"
for p in "${PROVEN[@]}"; do printf '  - %s\n' "$p"; done
