#!/usr/bin/env bash
# Build and prove the service's container image without Docker Hub.
#
# Debian's docker.io is started by hand; the base image is a debootstrap'ed Debian bookworm (python3.11, uv and
# an offline wheelhouse baked in) turned into an image with `docker import`; the Bento is built with that base,
# containerized, run, and probed on /ready and /predict. Everything it starts it stops again.
#
#   scripts/build_image.sh            # all steps
#   STEPS="base" scripts/build_image.sh  # only the base image (e.g. ahead of time, in the background)
#
# With Docker Hub access none of this is needed: `bentoml build && bentoml containerize review-sentiment-service:latest`
# (python:3.11-slim base, packages from PyPI).
set -Eeuo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
WORK="${WORK:-$REPO/var/image}"          # rootfs, wheelhouse, dockerd state, logs (git-ignored)
BASE_NAME="${BASE_NAME:-review-sentiment-base}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PORT="${PORT:-3111}"
STEPS="${STEPS:-base bento container probe}"
export PATH="$VENV/bin:$PATH"
mkdir -p "$WORK"
log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
has_step() { [[ " $STEPS " == *" $1 "* ]]; }

DOCKERD_PID=""
CONTAINER=""
cleanup() {
  if [[ -n "$CONTAINER" ]]; then docker rm -f "$CONTAINER" >/dev/null 2>&1 || true; fi
  if [[ -n "$DOCKERD_PID" ]]; then
    log "stopping dockerd (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

start_dockerd() {
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null || { apt-get update && apt-get install -y docker.io debootstrap; }
  if docker info >/dev/null 2>&1; then return; fi   # someone else's daemon: use it, do not stop it
  log "starting dockerd (log: $WORK/dockerd.log)"
  dockerd --data-root "$WORK/docker" --exec-root "$WORK/docker-run" -p "$WORK/dockerd.pid" \
    >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  echo "dockerd did not come up; see $WORK/dockerd.log" >&2; exit 1
}

write_requirements() {
  # The base image carries the wheels for exactly these requirements: its tag is their hash.
  python - "$REPO/bentofile.yaml" >"$WORK/requirements.txt" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
print("\n".join(cfg["python"]["packages"] + ["bentoml==1.4.38", "uv"]))
PY
  BASE_IMAGE="$BASE_NAME:$(sha256sum "$WORK/requirements.txt" | cut -c1-12)"
}

build_wheelhouse() {
  # Every wheel the Bento needs, resolved here with this machine's pip config (CPU torch), so the
  # image build never has to pick torch from PyPI (CUDA) or reach an index at all.
  log "wheelhouse (pip log: $WORK/pip-wheel.log)"
  rm -rf "$WORK/wheels"
  python -m pip wheel --quiet -w "$WORK/wheels" -r "$WORK/requirements.txt" >"$WORK/pip-wheel.log" 2>&1
}

build_base() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then log "base image $BASE_IMAGE exists"; return; fi
  build_wheelhouse
  local root="$WORK/rootfs"
  if [[ ! -f "$WORK/rootfs.ok" ]]; then
    log "debootstrap bookworm -> $root"
    rm -rf "$root"
    # What BentoML's Dockerfile apt-installs is included here, so that step finds it all in place.
    debootstrap --variant=minbase \
      --include=python3.11,ca-certificates,gnupg2,bash,build-essential,git \
      bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    touch "$WORK/rootfs.ok"
  fi
  log "wheelhouse + uv into the rootfs"
  rm -rf "$root/wheels" && cp -r "$WORK/wheels" "$root/wheels"
  python - "$root" <<'PY'
import glob, os, sys, zipfile
root = sys.argv[1]
whl = sorted(glob.glob(f"{root}/wheels/uv-*.whl"))[-1]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/uv"))
    with open(f"{root}/usr/local/bin/uv", "wb") as out:
        out.write(z.read(name))
os.chmod(f"{root}/usr/local/bin/uv", 0o755)
PY
  # uv has no env var for --no-index: a config file makes every `uv pip install` use the wheelhouse only.
  mkdir -p "$root/etc/uv"
  printf '[pip]\nno-index = true\nfind-links = ["/wheels"]\n' >"$root/etc/uv/uv.toml"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  log "docker import -> $BASE_IMAGE"
  tar -C "$root" -c . | docker import \
    --change 'ENV UV_CONFIG_FILE=/etc/uv/uv.toml' \
    --change 'ENV UV_PYTHON_DOWNLOADS=never' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
  docker run --rm --network host "$BASE_IMAGE" bash -c 'python3.11 --version && uv --version && ls /wheels | wc -l'
}

build_bento() {
  log "bentoml build (base image $BASE_IMAGE)"
  # The checked-in bentofile is the Docker Hub one; here the same file points at the imported base.
  local bf="$WORK/bentofile.local.yaml"
  python - "$REPO/bentofile.yaml" "$BASE_IMAGE" >"$bf" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg.setdefault("docker", {})["base_image"] = sys.argv[2]
cfg["docker"].pop("distro", None)
print(yaml.safe_dump(cfg, sort_keys=False))
PY
  (cd "$REPO" && bentoml build -f "$bf" -o tag . | tail -1) >"$WORK/bento_tag"
  BENTO_TAG="$(sed 's/^__tag__://' "$WORK/bento_tag")"
  echo "bento: $BENTO_TAG"
}

build_container() {
  log "bentoml containerize $BENTO_TAG"
  # Debian's docker.io has no buildx: the classic builder, on the host network (apt in the Dockerfile).
  DOCKER_BUILDKIT=0 bentoml containerize "$BENTO_TAG" --opt network=host -t "$BENTO_TAG"
  docker image ls "${BENTO_TAG%%:*}"
}

probe() {
  log "run + probe on port $PORT"
  CONTAINER=review-sentiment-probe
  docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  docker run -d --name "$CONTAINER" --network host -e PORT="$PORT" "$BENTO_TAG" >/dev/null
  for _ in $(seq 180); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready" || true)
    [[ "$code" == 200 ]] && break
    sleep 1
  done
  echo "GET /ready -> $code"
  curl -s -m 30 -X POST "http://127.0.0.1:$PORT/predict" -H 'Content-Type: application/json' \
    -d '{"text": "The strings arrived quickly and sound bright and warm. Great value."}' || true
  echo
  curl -s -m 10 "http://127.0.0.1:$PORT/model/info" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("GET /model/info -> tag", d.get("tag"), "backend", d.get("backend"))' || true
  docker logs "$CONTAINER" 2>&1 | tail -5
  [[ "$code" == 200 ]]
}

start_dockerd
write_requirements
has_step base && build_base
BENTO_TAG="${BENTO_TAG:-}"
has_step bento && build_bento
has_step container && build_container
has_step probe && probe
log "done"
