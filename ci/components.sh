# Real servers for the test suite: install (Debian 12, root), start on 127.0.0.1, stop by PID.
#
#   . ci/components.sh
#   components_install          # apt packages + the Python test extras
#   trap components_down EXIT
#   components_up               # starts every server; exports PG_DSN REDIS_PORT SSH_PORT SSH_KEY
#                               # DOCKER_HOST TEST_IMAGE S3_ENDPOINT SMTP_PORT SMTP_MAILDIR
#                               # OIDC_ISSUER CHROMIUM, and writes them to "$SVC/env"
#
# A server that cannot start is reported and left out: its tests skip and print why.

components_install() {
  export DEBIAN_FRONTEND=noninteractive
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends \
      postgresql redis-server openssh-server docker.io busybox-static \
      chromium chromium-driver iproute2 openssl >/dev/null \
      || echo "warning: some test servers could not be installed; their tests will skip" >&2
  fi
}

_freeport() {
  python3 - <<'PY'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
}
_waitport() { for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
_bg() { local name=$1; shift; "$@" >"$SVC/$name.log" 2>&1 & echo $! >"$SVC/$name.pid"; }
_env() { export "$1=$2"; echo "export $1='$2'" >>"$SVC/env"; }

components_up() {
  SVC=$(mktemp -d /tmp/dagu-svc.XXXXXX); chmod 755 "$SVC"; export SVC
  : >"$SVC/env"
  _env SVC "$SVC"

  # PostgreSQL: a throwaway cluster (initdb refuses root, so it runs as 'postgres')
  local pgbin; pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -n "$pgbin" ] && id postgres >/dev/null 2>&1; then
    local pgport; pgport=$(_freeport); mkdir -p "$SVC/pg"; chown postgres: "$SVC/pg"
    if runuser -u postgres -- "$pgbin/initdb" -D "$SVC/pg/data" -U dagu --auth=trust -E UTF8 --no-locale >/dev/null \
      && runuser -u postgres -- "$pgbin/pg_ctl" -D "$SVC/pg/data" -l "$SVC/pg/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $pgport -k $SVC/pg -c fsync=off -c full_page_writes=off" start >/dev/null; then
      _env PG_DSN "postgresql://dagu@127.0.0.1:$pgport/postgres"
    else echo "warning: PostgreSQL did not start" >&2; fi
  fi

  # Redis
  if command -v redis-server >/dev/null; then
    local rport; rport=$(_freeport)
    _bg redis redis-server --bind 127.0.0.1 --port "$rport" --dir "$SVC" --save '' --appendonly no
    _waitport "$rport" && _env REDIS_PORT "$rport"
  fi

  # sshd with its own host key, client key and config (root login by key only)
  if [ -x /usr/sbin/sshd ]; then
    mkdir -p /run/sshd "$SVC/ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$SVC/ssh/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$SVC/ssh/client_key"
    cp "$SVC/ssh/client_key.pub" "$SVC/ssh/authorized_keys"
    local sport; sport=$(_freeport)
    cat >"$SVC/ssh/sshd_config" <<CFG
Port $sport
ListenAddress 127.0.0.1
HostKey $SVC/ssh/host_key
PidFile $SVC/ssh/sshd.pid
AuthorizedKeysFile $SVC/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CFG
    _bg sshd /usr/sbin/sshd -D -f "$SVC/ssh/sshd_config" -E "$SVC/ssh/sshd.log"
    if _waitport "$sport"; then
      _env SSH_PORT "$sport"; _env SSH_KEY "$SVC/ssh/client_key"
      _env SSH_HOST_KEY_PUB "$SVC/ssh/host_key.pub"
    fi
  fi

  # Docker engine: no bridge, no iptables; a local image imported from busybox-static (no registry)
  if command -v dockerd >/dev/null && [ -x /bin/busybox ]; then
    mkdir -p "$SVC/docker"
    _bg dockerd dockerd --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
      --data-root "$SVC/docker/data" --exec-root "$SVC/docker/exec" -H "unix://$SVC/docker.sock" \
      --pidfile "$SVC/docker/dockerd.pid"
    local ok=
    for _ in $(seq 1 100); do DOCKER_HOST="unix://$SVC/docker.sock" docker info >/dev/null 2>&1 && ok=1 && break; sleep 0.2; done
    if [ -n "$ok" ]; then
      local root="$SVC/bbroot"; mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/work"; cp /bin/busybox "$root/bin/"
      for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
      echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
      tar -C "$root" -c . | DOCKER_HOST="unix://$SVC/docker.sock" docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - local/busybox:test >/dev/null \
        && _env DOCKER_HOST "unix://$SVC/docker.sock" && _env TEST_IMAGE local/busybox:test
    else echo "warning: dockerd did not start (see $SVC/dockerd.log)" >&2; fi
  fi

  # S3 (moto), SMTP sink (aiosmtpd), OIDC provider (oidc-provider-mock): Python servers
  if "${PYTHON:-python3}" -c 'import moto, flask' 2>/dev/null; then
    local s3port; s3port=$(_freeport)
    _bg moto "${PYTHON:-python3}" -m moto.server -H 127.0.0.1 -p "$s3port"
    _waitport "$s3port" && _env S3_ENDPOINT "http://127.0.0.1:$s3port"
  fi
  if "${PYTHON:-python3}" -c 'import aiosmtpd' 2>/dev/null; then
    local mport; mport=$(_freeport); mkdir -p "$SVC/mail/tmp" "$SVC/mail/new" "$SVC/mail/cur"
    _bg smtp "${PYTHON:-python3}" -m aiosmtpd -n -l "127.0.0.1:$mport" -c aiosmtpd.handlers.Mailbox "$SVC/mail"
    _waitport "$mport" && _env SMTP_PORT "$mport" && _env SMTP_MAILDIR "$SVC/mail"
  fi
  if command -v oidc-provider-mock >/dev/null; then
    local oport; oport=$(_freeport)
    _bg oidc oidc-provider-mock -H 127.0.0.1 -p "$oport" \
      --user-claims '{"sub":"alice","email":"alice@example.com","name":"Alice","groups":["ops"]}'
    _waitport "$oport" && _env OIDC_ISSUER "http://127.0.0.1:$oport"
  fi

  [ -x /usr/bin/chromium ] && _env CHROMIUM /usr/bin/chromium
  return 0
}

components_down() {
  [ -n "${SVC:-}" ] && [ -d "$SVC" ] || return 0
  local pgbin; pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -f "$SVC/pg/data/postmaster.pid" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$SVC/pg/data" -m fast -w stop >/dev/null
  local f pid
  for f in "$SVC"/*.pid; do
    [ -f "$f" ] || continue; pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  umount "$SVC/docker/exec/netns/default" 2>/dev/null || true
  rm -rf "$SVC"
}
