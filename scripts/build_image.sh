#!/usr/bin/env bash
# Build and prove the service's container image without Docker Hub.
#
# Debian's docker.io is started by hand; the base image is a debootstrap'ed Debian bookworm (python3.11 and uv)
# turned into an image with `docker import`; the Bento is built with that base, its wheels served from an offline
# wheelhouse over the host network while `bentoml containerize` runs (so they are not a layer of the image),
# then run, timed to /ready, and checked against the in-process chain. Everything it starts it stops again.
#
#   scripts/build_image.sh            # all steps
#   STEPS="base" scripts/build_image.sh  # only the base image (e.g. ahead of time, in the background)
#   VARIANT=torch scripts/build_image.sh # the image with PyTorch (backend=torch, versions without a stored export)
#   STEPS="pod drill" BENTO_TAG=review-sentiment-service:TAG scripts/build_image.sh
#                                        # tools/run_like_pod.py: the image run as the all-in-one Deployment says,
#                                        # probed as the kubelet would; then the worker-kill and SIGSTOP drills
#
# The model: the default store's champion, copied into a private store ($WORK/bentoml) and, if it was registered
# before ONNX exports were stored, given one there (`sentiment-models export`); the default store is only read.
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
STEPS="${STEPS:-base model bento container probe}"
VARIANT="${VARIANT:-onnx}"               # onnx: no PyTorch in the image; torch: with it
WHEEL_PORT="${WHEEL_PORT:-3199}"         # the wheelhouse's HTTP port during the image build
CHECK_N="${CHECK_N:-300}"                # real English reviews compared with the in-process chain
TORCH_PACKAGES=("torch==2.13.0" "transformers==5.23.0" "safetensors==0.8.0" "onnx==1.23.2")
SOURCE_HOME="${BENTOML_HOME:-$HOME/bentoml}"
export BENTOML_HOME="$WORK/bentoml"       # the private store the Bento is built from
export BENTOML_DO_NOT_TRACK=true
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's code, whatever the venv's editable install
cd "$REPO"
mkdir -p "$WORK"
log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
has_step() { [[ " $STEPS " == *" $1 "* ]]; }

DOCKERD_PID=""
CONTAINER=""
WHEELS_PID=""
cleanup() {
  if [[ -n "$CONTAINER" ]]; then docker rm -f "$CONTAINER" >/dev/null 2>&1 || true; fi
  if [[ -n "$WHEELS_PID" ]]; then kill "$WHEELS_PID" 2>/dev/null || true; fi
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
  # The Bento's packages (plus PyTorch for the torch variant): the wheelhouse holds exactly these.
  python - "$REPO/bentofile.yaml" "$VARIANT" "${TORCH_PACKAGES[@]}" >"$WORK/requirements.$VARIANT.txt" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
extra = sys.argv[3:] if sys.argv[2] == "torch" else []
print("\n".join(cfg["python"]["packages"] + extra + ["bentoml==1.4.38", "uv"]))
PY
  # The base holds no wheels: its tag changes only with what build_base puts in it.
  BASE_IMAGE="$BASE_NAME:$(sed -n '/^build_base()/,/^}/p' "$REPO/scripts/build_image.sh" | cat - <(echo "$WHEEL_PORT") | sha256sum | cut -c1-12)"
}

build_wheelhouse() {
  # Every wheel the Bento needs, resolved here with this machine's pip config (CPU torch for the torch variant),
  # so the image build never has to pick torch from PyPI (CUDA) or reach an index at all.
  local want="$WORK/wheels-$VARIANT/requirements.txt"
  if cmp -s "$WORK/requirements.$VARIANT.txt" "$want"; then return; fi
  log "wheelhouse $VARIANT (pip log: $WORK/pip-wheel.log)"
  rm -rf "$WORK/wheels-$VARIANT"
  python -m pip wheel --quiet -w "$WORK/wheels-$VARIANT" -r "$WORK/requirements.$VARIANT.txt" >"$WORK/pip-wheel.log" 2>&1
  cp "$WORK/requirements.$VARIANT.txt" "$want"
}

build_base() {
  build_wheelhouse
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then log "base image $BASE_IMAGE exists"; return; fi
  local root="$WORK/rootfs"
  if [[ ! -f "$WORK/rootfs.ok" ]]; then
    log "debootstrap bookworm -> $root"
    rm -rf "$root"
    # Python and certificates are all the service needs from Debian (BentoML's apt step is stubbed out below).
    debootstrap --variant=minbase --include=python3.11,ca-certificates \
      bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    touch "$WORK/rootfs.ok"
  fi
  log "uv into the rootfs"
  python - "$root" "$WORK/wheels-$VARIANT" <<'PY'
import glob, os, sys, zipfile
root = sys.argv[1]
whl = sorted(glob.glob(f"{sys.argv[2]}/uv-*.whl"))[-1]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/uv"))
    with open(f"{root}/usr/local/bin/uv", "wb") as out:
        out.write(z.read(name))
os.chmod(f"{root}/usr/local/bin/uv", 0o755)
PY
  # uv has no env var for --no-index: a config file makes every `uv pip install` use the wheelhouse only, which
  # serve_wheels offers on the host network while the image builds (a copy inside would stay in a layer).
  mkdir -p "$root/etc/uv"
  printf '[pip]\nno-index = true\nfind-links = ["http://127.0.0.1:%s/"]\n' "$WHEEL_PORT" >"$root/etc/uv/uv.toml"
  # BentoML 1.4 puts `apt-get update && apt-get install ... build-essential git` first in every Dockerfile whose
  # base image it did not choose (_bentoml_sdk/images.py, default_install_command), and no option removes it:
  # 630 MB of compilers and git the service never uses (measured: 1.39 GB with it, 760 MB without). Nothing here
  # builds from source (the wheelhouse is complete), so in this base `apt-get` on PATH says so and does nothing; the
  # real one stays at /usr/bin/apt-get.
  printf '#!/bin/sh\necho "apt-get $*: skipped (review-sentiment base image: nothing to install)"\n' \
    >"$root/usr/local/bin/apt-get"
  chmod 755 "$root/usr/local/bin/apt-get"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/usr/share/"{doc,man,locale}/*
  log "docker import -> $BASE_IMAGE"
  tar -C "$root" -c . | docker import \
    --change 'ENV UV_CONFIG_FILE=/etc/uv/uv.toml' \
    --change 'ENV UV_PYTHON_DOWNLOADS=never' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
  docker run --rm --network host "$BASE_IMAGE" bash -c 'python3.11 --version && uv --version'
}

copy_model() {
  # The champion of the default store, into the private one; a version without a stored ONNX export gets one here.
  local tag
  tag="$(BENTOML_HOME="$SOURCE_HOME" python -m scripts.models champion)"
  log "model $tag: $SOURCE_HOME -> $BENTOML_HOME"
  if ! bentoml models get "$tag" >/dev/null 2>&1; then
    rm -f "$WORK/model.bentomodel"
    BENTOML_HOME="$SOURCE_HOME" bentoml models export "$tag" "$WORK/model.bentomodel"
    bentoml models import "$WORK/model.bentomodel"
  fi
  python -m scripts.models export "${tag#*:}"
  python -m scripts.models promote "${tag#*:}" --reason "build_image.sh: the default store's champion" >/dev/null 2>&1 || true
  echo "champion in $BENTOML_HOME: $(python -m scripts.models champion)"
}

serve_wheels() {
  log "wheelhouse on http://127.0.0.1:$WHEEL_PORT/"
  python -m http.server "$WHEEL_PORT" --bind 127.0.0.1 --directory "$WORK/wheels-$VARIANT" >"$WORK/wheels-http.log" 2>&1 &
  WHEELS_PID=$!
  for _ in $(seq 30); do curl -sf "http://127.0.0.1:$WHEEL_PORT/" >/dev/null && return; sleep 0.5; done
  echo "wheelhouse server did not start" >&2; exit 1
}

build_bento() {
  log "bentoml build (base image $BASE_IMAGE)"
  # The checked-in bentofile is the Docker Hub one; here the same file points at the imported base.
  local bf="$WORK/bentofile.local.yaml"
  python - "$REPO/bentofile.yaml" "$BASE_IMAGE" "$VARIANT" "${TORCH_PACKAGES[@]}" >"$bf" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg.setdefault("docker", {})["base_image"] = sys.argv[2]
cfg["docker"].pop("distro", None)
if sys.argv[3] == "torch":
    cfg["python"]["packages"] += sys.argv[4:]
    cfg["labels"]["variant"] = "torch"
print(yaml.safe_dump(cfg, sort_keys=False))
PY
  (cd "$REPO" && bentoml build -f "$bf" -o tag . | tail -1) >"$WORK/bento_tag"
  BENTO_TAG="$(sed 's/^__tag__://' "$WORK/bento_tag")"
  echo "bento: $BENTO_TAG"
}

build_container() {
  log "bentoml containerize $BENTO_TAG"
  # Debian's docker.io has no buildx: the classic builder, on the host network (the wheelhouse server).
  build_wheelhouse
  serve_wheels
  local image="$BENTO_TAG"
  [[ "$VARIANT" == torch ]] && image="$BENTO_TAG-torch"
  DOCKER_BUILDKIT=0 bentoml containerize "$BENTO_TAG" --opt network=host -t "$image"
  kill "$WHEELS_PID"; WHEELS_PID=""
  BENTO_TAG="$image"
  docker image ls "${BENTO_TAG%%:*}"
}

probe() {
  log "run + probe on port $PORT"
  CONTAINER=review-sentiment-probe
  docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  local t0 t1
  t0=$(date +%s.%N)
  # For the comparison only, the two things that make the service answer differently from the chain on purpose are
  # off, as they are in sentiment-score: the resource guard (it reads the whole machine, which other jobs may keep
  # busy; deploy/README.md) and the 1 s latency budget.
  docker run -d --name "$CONTAINER" --network host -e PORT="$PORT" -e SENTIMENT_GATES__MAX_CPU_PERCENT=101 \
    -e SENTIMENT_GATES__MAX_MEMORY_PERCENT=101 -e SENTIMENT_SERVICE__LATENCY_BUDGET_S=30 "$BENTO_TAG" >/dev/null
  for _ in $(seq 900); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready" || true)
    [[ "$code" == 200 ]] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  echo "GET /ready -> $code, $(python -c "print(f'{$t1 - $t0:.1f}')") s after docker run"
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "${BENTO_TAG%%:*}"
  docker exec "$CONTAINER" id
  docker exec "$CONTAINER" python -c 'import importlib.util as u; print("torch installed:", u.find_spec("torch") is not None)'
  curl -s -m 30 -X POST "http://127.0.0.1:$PORT/predict" -H 'Content-Type: application/json' \
    -d '{"text": "The strings arrived quickly and sound bright and warm. Great value."}' || true
  echo
  curl -s -m 10 "http://127.0.0.1:$PORT/model/info" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("GET /model/info -> tag", d.get("tag"), "backend", d.get("backend"))' || true
  docker logs "$CONTAINER" 2>&1 | tail -5
  [[ "$code" == 200 ]]
  # The same answers as the chain in this process, with the same model, for real English reviews.
  python -m tools.image_check --url "http://127.0.0.1:$PORT" --n "$CHECK_N" --output "$WORK/image_check.json"
}

start_dockerd
write_requirements
has_step base && build_base
has_step model && copy_model
BENTO_TAG="${BENTO_TAG:-}"
has_step bento && build_bento
has_step container && build_container
has_step probe && probe
has_step pod && python tools/run_like_pod.py --image "$BENTO_TAG" --output "$WORK/run_like_pod.json"
has_step drill && python tools/run_like_pod.py --image "$BENTO_TAG" --drill --output "$WORK/drill.json"
log "done"
