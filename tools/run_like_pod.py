"""Run the Bento image the way the kubelet would run the all-in-one Deployment, without a cluster, and drill it.

    python tools/run_like_pod.py --image review-sentiment-service:TAG [--overlay all-in-one] [--watch-s 30]
    python tools/run_like_pod.py --image IMAGE --drill [--dead-s 15]

Renders the overlay with the pinned kubectl (``kubectl kustomize``), takes the Deployment's container (image
overridden as ``kustomize edit set image`` would), and starts it with ``docker run`` from exactly its settings:
the env (``fieldRef metadata.name`` becomes the pod name, ``$(VAR)`` references are expanded as Kubernetes does),
command/args, container ports, the pod's ``runAsUser``/``runAsGroup``/``fsGroup``, the container's dropped
capabilities and ``allowPrivilegeEscalation: false``, the CPU and memory limits, and a host folder in place of the
PersistentVolumeClaim. Then it runs the startup, liveness and readiness probes as the kubelet does (path, port,
period, timeout, failure threshold; liveness and readiness only after startup succeeded; a failed startup or
liveness probe restarts the container), sends ``/predict``, and ends the pod as the kubelet would: ``preStop``,
then SIGTERM with ``terminationGracePeriodSeconds``.

``--drill`` (issue 13, "inside the container image"): the user the container runs as (``id``), then ``kill -9``
of the transformer worker inside the container under ``docker run --restart on-failure`` (BentoML does not respawn
a worker when ``BENTOML_CONTAINERIZED`` is set: does the container exit, with which code, after how long, and is it
ready again after the restart?), then SIGSTOP of the transformer worker with ``SERVICE__RUNNER_DEAD_S`` shortened
(``/ready`` 503, then ``/health`` 503 ``failing``, then the liveness probe's restart, then ready again). Requests
go to ``/predict`` all the while; their outcomes are counted.

Prints one JSON line per event and writes everything to ``--output`` (default var/deploy/run_like_pod.json).
Starts docker containers only (names ``rlp-*``) and removes them again; needs a running dockerd.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
POD = "review-sentiment-local-0"
T0 = time.monotonic()
EVENTS: list[dict[str, Any]] = []


def event(kind: str, **fields: Any) -> None:
    """One line of what happened, seconds since the script started."""
    rec = {"t": round(time.monotonic() - T0, 2), "event": kind, **fields}
    EVENTS.append(rec)
    print(json.dumps(rec), flush=True)


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = Path(sys.executable).parent / "kubectl"
    out = subprocess.run(
        [str(kubectl if kubectl.exists() else "kubectl"), "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def api_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment that serves /predict (the one whose probes hit /ready)."""
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/ready":
                return d
    raise SystemExit("no Deployment with a /ready readiness probe in the overlay")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: variables defined earlier in the list; unknown references stay as they are."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def container_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = POD
        else:
            raise SystemExit(f"env {item['name']}: only values and fieldRef metadata.name are supported")
    return env


def cpu_cores(q: str | int | float) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def mem_bytes(q: str | int) -> int:
    s = str(q)
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * factor)
    return int(s)


class Pod:
    """The Deployment's pod template as ``docker run`` arguments, plus the kubelet's view of its probes."""

    def __init__(
        self,
        deployment: dict[str, Any],
        image: str,
        host_port: int,
        data: Path,
        extra_env: dict[str, str],
        restart: str = "no",
        name: str = "rlp-pod",
    ) -> None:
        spec = deployment["spec"]["template"]["spec"]
        self.c = spec["containers"][0]
        self.spec = spec
        self.name = name
        self.image = image
        self.host_port = host_port
        self.data = data
        self.env = {**container_env(self.c), **extra_env}
        self.grace = int(spec.get("terminationGracePeriodSeconds", 30))
        self.ports = {p.get("name", str(p["containerPort"])): int(p["containerPort"]) for p in self.c["ports"]}
        self.restart = restart

    def port_of(self, probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return self.ports[port] if isinstance(port, str) else int(port)

    def security_args(self) -> list[str]:
        """The pod's and the container's securityContext as docker flags (the container's own value wins)."""
        pod_sc, c_sc = self.spec.get("securityContext", {}), self.c.get("securityContext", {})
        args: list[str] = []
        uid, gid = c_sc.get("runAsUser", pod_sc.get("runAsUser")), c_sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        if uid is not None:
            args += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
        if "fsGroup" in pod_sc:
            args += ["--group-add", str(pod_sc["fsGroup"])]
        for cap in c_sc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        if c_sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if c_sc.get("readOnlyRootFilesystem"):
            args += ["--read-only"]
        return args

    def docker_args(self) -> list[str]:
        args = ["docker", "run", "-d", "--name", self.name, "--restart", self.restart, *self.security_args()]
        limits = self.c.get("resources", {}).get("limits", {})
        if "cpu" in limits:
            args += ["--cpus", str(cpu_cores(limits["cpu"]))]
        if "memory" in limits:
            args += ["--memory", str(mem_bytes(limits["memory"]))]
        for k, v in self.env.items():
            args += ["-e", f"{k}={v}"]
        for port in self.ports.values():
            args += ["-p", f"127.0.0.1:{self.host_port}:{port}"]
        for mount in self.c.get("volumeMounts", []):
            args += ["-v", f"{self.data}:{mount['mountPath']}"]
        if self.c.get("command"):
            args += ["--entrypoint", self.c["command"][0]]
        args.append(self.image)
        args += [expand(a, self.env) for a in self.c.get("command", [])[1:] + self.c.get("args", [])]
        return args

    def start(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)
        # The claim's stand-in: writable for fsGroup, as the kubelet makes a volume with fsGroup set.
        gid = self.spec.get("securityContext", {}).get("fsGroup")
        self.data.mkdir(parents=True, exist_ok=True)
        if gid is not None:
            os.chown(self.data, -1, int(gid))
            self.data.chmod(0o2775)
        argv = self.docker_args()
        event("docker_run", argv=" ".join(argv))
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.host_port}{path}"

    def probe(self, probe: dict[str, Any]) -> tuple[bool, str]:
        """One HTTP probe as the kubelet sends it: success is a status in 200-399 within timeoutSeconds."""
        try:
            with urllib.request.urlopen(
                self.url(probe["httpGet"]["path"]), timeout=float(probe.get("timeoutSeconds", 1))
            ) as resp:
                return 200 <= resp.status < 400, f"{resp.status} {resp.read(200).decode(errors='replace')}"
        except urllib.error.HTTPError as exc:
            return False, f"{exc.code} {exc.read(200).decode(errors='replace')}"
        except Exception as exc:  # connection refused, timeout: a failed probe
            return False, type(exc).__name__

    def state(self) -> dict[str, Any]:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{json .State}} {{.RestartCount}}", self.name], capture_output=True, text=True
        )
        if out.returncode != 0:
            return {"Status": "gone"}
        raw, restarts = out.stdout.rsplit(" ", 1)
        state: dict[str, Any] = json.loads(raw)
        state["RestartCount"] = int(restarts)
        return state

    def terminate(self) -> None:
        """preStop, then SIGTERM with the grace period (docker stop sends SIGKILL when it runs out)."""
        pre = self.c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        start = time.monotonic()
        if pre:
            subprocess.run(["docker", "exec", self.name, *pre], capture_output=True)
            event("pre_stop_done", command=pre, seconds=round(time.monotonic() - start, 1))
        subprocess.run(
            ["docker", "stop", "-t", str(max(1, self.grace - int(time.monotonic() - start))), self.name],
            capture_output=True,
        )
        st = self.state()
        event("terminated", exit_code=st.get("ExitCode"), seconds=round(time.monotonic() - start, 1))

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


class Kubelet:
    """The three probes on their periods: startup first; then liveness and readiness. Records every transition."""

    def __init__(self, pod: Pod, restart_container: bool = True) -> None:
        self.pod = pod
        self.restart_container = restart_container
        self.ready = False
        self.started = False
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        c = self.pod.c
        startup, liveness, readiness = c.get("startupProbe"), c.get("livenessProbe"), c.get("readinessProbe")
        while not self._stop.is_set():
            self.started, self.ready = False, False
            begun = time.monotonic()
            if startup and not self._until_started(startup):
                continue  # restarted, or stopped
            self.started = True
            event("startup_probe_succeeded", after_s=round(time.monotonic() - begun, 1))
            self._live_and_ready(liveness, readiness)  # returns on a liveness restart (loop) or a stop

    def _until_started(self, probe: dict[str, Any]) -> bool:
        fails = 0
        time.sleep(float(probe.get("initialDelaySeconds", 0)))
        while not self._stop.is_set():
            ok, detail = self.pod.probe(probe)
            if ok:
                return True
            fails += 1
            if fails >= int(probe.get("failureThreshold", 3)):
                event("startup_probe_failed", failures=fails, last=detail)
                self._restart("startup probe failed", probe.get("terminationGracePeriodSeconds"))
                return False
            self._stop.wait(float(probe.get("periodSeconds", 10)))
        return False

    def _live_and_ready(self, liveness: dict[str, Any] | None, readiness: dict[str, Any] | None) -> bool:
        """Both probes on their own periods until liveness fails (restart: False) or the kubelet stops."""
        due = {"liveness": 0.0, "readiness": 0.0}
        fails = {"liveness": 0, "readiness": 0}
        while not self._stop.is_set():
            now = time.monotonic()
            for kind, probe in (("liveness", liveness), ("readiness", readiness)):
                if probe is None or now < due[kind]:
                    continue
                due[kind] = now + float(probe.get("periodSeconds", 10))
                ok, detail = self.pod.probe(probe)
                threshold = int(probe.get("failureThreshold", 3))
                fails[kind] = 0 if ok else fails[kind] + 1
                if kind == "readiness":
                    if ok and not self.ready:
                        self.ready = True
                        event("ready", probe=detail[:80])
                    elif not ok and self.ready and fails[kind] >= threshold:
                        self.ready = False
                        event("not_ready", failures=fails[kind], last=detail[:120])
                elif not ok:
                    event("liveness_failure", n=fails[kind], of=threshold, last=detail[:120])
                    if fails[kind] >= threshold:
                        self._restart("liveness probe failed", probe.get("terminationGracePeriodSeconds"))
                        return False
            self._stop.wait(0.2)
        return True

    def _restart(self, why: str, grace: int | None) -> None:
        """What the kubelet does on a failed liveness or startup probe: kill the container (the probe's own grace
        period if it sets one, else the pod's) and start it again."""
        self.ready = False
        self.restarts += 1
        if self.restart_container:
            event("kubelet_restart", why=why)
            start, wall = time.monotonic(), time.time()
            limit = int(grace or self.pod.grace)
            pre = self.pod.c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
            if pre:  # the kubelet runs preStop first, inside the grace period
                subprocess.run(["docker", "exec", self.pod.name, *pre], capture_output=True, timeout=limit)
            left = max(1, limit - int(time.monotonic() - start))
            subprocess.run(["docker", "restart", "-t", str(left), self.pod.name], capture_output=True)
            event("container_restarted", seconds=round(time.monotonic() - start, 1), exits=died(self.pod, wall))


def predict(pod: Pod, text: str, timeout: float = 10.0) -> tuple[int, dict[str, Any] | str]:
    req = urllib.request.Request(
        pod.url("/predict"), data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200).decode(errors="replace")
    except Exception as exc:
        return 0, type(exc).__name__


class Load:
    """A slow steady stream of /predict (5 per second) whose outcomes are counted: status/reason or error."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(0.2):
            i += 1
            code, body = predict(
                self.pod, f"Review {i}: the strings sound bright and stay in tune. Great value.", timeout=5.0
            )
            key = (
                f"{code} {body['status']}/{body['reason'].split(':')[0] or '-'}"
                if isinstance(body, dict)
                else f"{code} {body[:40]}"
            )
            self.counts[key] = self.counts.get(key, 0) + 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_for(cond: Any, limit_s: float, every_s: float = 0.2) -> float | None:
    """Seconds until ``cond()`` is true, or None after ``limit_s``."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if cond():
            return round(time.monotonic() - start, 1)
        time.sleep(every_s)
    return None


def docker_exec(pod: Pod, *argv: str) -> str:
    out = subprocess.run(["docker", "exec", pod.name, *argv], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip()


FIND_WORKER = (
    "import psutil; print(' '.join(str(p.pid) for p in psutil.process_iter(['cmdline']) "
    "if 'transformer' in (p.info['cmdline'] or [])[-8:] and '--service-name' in (p.info['cmdline'] or [])))"
)


def transformer_worker(pod: Pod) -> int:
    pids = docker_exec(pod, "python", "-c", FIND_WORKER).split()
    if len(pids) != 1:
        raise RuntimeError(f"expected one transformer worker in the container, found {pids}")
    return int(pids[0])


def died(pod: Pod, since: float) -> list[dict[str, Any]]:
    """The container's exits since ``since`` (docker's own event log): exit code and seconds after ``since``."""
    out = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            f"container={pod.name}",
            "--filter",
            "event=die",
            "--format",
            "{{json .}}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    found = []
    for line in out.stdout.splitlines():
        e = json.loads(line)
        found.append(
            {
                "exit_code": int(e["Actor"]["Attributes"].get("exitCode", -1)),
                "after_kill_s": round(e["timeNano"] / 1e9 - since, 2),
            }
        )
    return found


def status_code(pod: Pod, path: str) -> tuple[int, str]:
    ok, detail = pod.probe({"httpGet": {"path": path}, "timeoutSeconds": 2})
    code = detail.split(" ", 1)[0]
    return (int(code) if code.isdigit() else 0), detail


def run_pod(args: argparse.Namespace, deployment: dict[str, Any], data: Path) -> dict[str, Any]:
    """Start, probe until ready, /predict, watch, terminate."""
    pod = Pod(deployment, args.image, args.port, data, {})
    pod.start()
    kubelet = Kubelet(pod)
    begun = time.monotonic()
    kubelet.start()
    ready_s = wait_for(lambda: kubelet.ready, args.ready_limit_s)
    result: dict[str, Any] = {"ready_after_s": ready_s, "docker_run": " ".join(pod.docker_args())}
    if ready_s is not None:
        code, body = predict(pod, "The strings arrived quickly and sound bright and warm. Great value.")
        event("predict", code=code, body=body)
        result["predict"] = body
        result["id"] = docker_exec(pod, "id")
        event("id", out=result["id"])
        time.sleep(args.watch_s)
        stats = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}} {{.CPUPerc}}", pod.name],
            capture_output=True,
            text=True,
        )
        result["memory_cpu"] = stats.stdout.strip()  # the container's cgroup: what a memory limit is checked against
        event("docker_stats", mem_usage_cpu=result["memory_cpu"])
    result["restarts"] = kubelet.restarts
    result["ready_at_end"] = kubelet.ready
    kubelet.stop()
    event("watched", seconds=round(time.monotonic() - begun, 1), restarts=kubelet.restarts, ready=kubelet.ready)
    pod.terminate()
    pod.remove()
    return result


def drill_kill(args: argparse.Namespace, deployment: dict[str, Any], data: Path) -> dict[str, Any]:
    """kill -9 of the transformer worker inside the container, under `--restart always` (a Deployment's pods'
    restartPolicy), docker's restart standing in for the kubelet's."""
    pod = Pod(deployment, args.image, args.port, data, {}, restart="always", name="rlp-kill")
    pod.start()
    kubelet = Kubelet(pod, restart_container=False)  # docker's restart policy plays the kubelet's restart here
    kubelet.start()
    out: dict[str, Any] = {"ready_after_s": wait_for(lambda: kubelet.ready, args.ready_limit_s)}
    out["id"] = docker_exec(pod, "id")
    event("id", out=out["id"])
    with Load(pod) as load:
        time.sleep(3)
        pid = transformer_worker(pod)
        before = pod.state()
        killed, killed_wall = time.monotonic(), time.time()
        event("kill_9", pid_in_container=pid, out=docker_exec(pod, "bash", "-c", f"kill -9 {pid} && echo sent"))
        exited = wait_for(
            lambda: (
                pod.state().get("RestartCount", 0) > before["RestartCount"] or pod.state().get("Status") != "running"
            ),
            120,
            every_s=0.1,
        )
        logs = subprocess.run(["docker", "logs", "--tail", "400", pod.name], capture_output=True, text=True)
        lines = (logs.stdout + logs.stderr).splitlines()
        dies = died(pod, killed_wall)
        event(
            "after_kill",
            restarted_or_exited_seen_after_s=exited,
            die_events=dies,
            state=pod.state().get("Status"),
            restart_count=pod.state().get("RestartCount"),
        )
        ready_again = wait_for(lambda: status_code(pod, "/ready")[0] == 200, args.ready_limit_s, every_s=0.5)
        ready_s = round(time.monotonic() - killed, 1) if ready_again is not None else None
        event("ready_again", after_kill_s=ready_s)
        time.sleep(2)
    first = dies[0] if dies else {}
    out.update(
        exited_after_s=first.get("after_kill_s"),
        exit_code=first.get("exit_code"),
        restart_count=pod.state().get("RestartCount"),
        ready_again_after_kill_s=ready_s,
        requests=load.counts,
        log_lines=[
            ln[:200]
            for ln in lines
            if re.search(
                r"No active process|Traceback|RuntimeError|exit|"
                r"Stopping|stopped|SIGKILL|killed",
                ln,
            )
        ][-12:],
    )
    event("kill_drill", requests=load.counts)
    kubelet.stop()
    pod.remove()
    return out


def drill_stop(args: argparse.Namespace, deployment: dict[str, Any], data: Path) -> dict[str, Any]:
    """SIGSTOP of the transformer worker: readiness 503, then liveness 503 `failing`, then the kubelet's restart."""
    extra = {"SENTIMENT_SERVICE__RUNNER_DEAD_S": str(args.dead_s)}
    pod = Pod(deployment, args.image, args.port, data, extra, name="rlp-stop")
    pod.start()
    kubelet = Kubelet(pod)
    kubelet.start()
    out: dict[str, Any] = {
        "ready_after_s": wait_for(lambda: kubelet.ready, args.ready_limit_s),
        "runner_dead_s": args.dead_s,
    }
    with Load(pod) as load:
        time.sleep(3)
        pid = transformer_worker(pod)
        stopped = time.monotonic()
        event("sigstop", pid_in_container=pid, out=docker_exec(pod, "bash", "-c", f"kill -STOP {pid} && echo sent"))
        out["ready_503_after_s"] = wait_for(lambda: status_code(pod, "/ready")[0] == 503, 60, every_s=0.1)
        event("ready_503", after_s=out["ready_503_after_s"], body=status_code(pod, "/ready")[1][:160])
        out["health_503_after_s"] = wait_for(lambda: status_code(pod, "/health")[0] == 503, 180, every_s=0.5)
        event("health_503", after_s=out["health_503_after_s"], body=status_code(pod, "/health")[1][:200])
        restarted = wait_for(lambda: kubelet.restarts > 0, 180, every_s=0.5)
        out["kubelet_restart_after_stop_s"] = round(time.monotonic() - stopped, 1) if restarted is not None else None
        back = wait_for(lambda: kubelet.ready, args.ready_limit_s)
        out["ready_again_after_stop_s"] = round(time.monotonic() - stopped, 1) if back is not None else None
        event("ready_again", after_stop_s=out["ready_again_after_stop_s"])
        if back is not None:
            code, body = predict(pod, "Broke after two days, the worst purchase I made this year.")
            out["predict_after"] = body
            event("predict", code=code, body=body)
    out["requests"] = load.counts
    event("stop_drill", requests=load.counts)
    kubelet.stop()
    pod.remove()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="the image to run (the manifests' own tag is replaced)")
    p.add_argument("--overlay", default="all-in-one")
    p.add_argument("--port", type=int, default=3300, help="host port published for the container's port")
    p.add_argument("--watch-s", type=float, default=30.0, help="probes keep running this long after /predict")
    p.add_argument("--ready-limit-s", type=float, default=400.0)
    p.add_argument("--drill", action="store_true", help="the fault drills instead of the plain run")
    p.add_argument("--drills", default="kill,stop", help="which drills: kill (kill -9), stop (SIGSTOP)")
    p.add_argument("--dead-s", type=float, default=15.0, help="SERVICE__RUNNER_DEAD_S for the SIGSTOP drill")
    p.add_argument("--output", type=Path, default=REPO / "var" / "deploy" / "run_like_pod.json")
    args = p.parse_args(argv)

    deployment = api_deployment(render(args.overlay))
    event(
        "rendered",
        overlay=args.overlay,
        deployment=deployment["metadata"]["name"],
        manifest_image=deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        image=args.image,
    )
    result: dict[str, Any] = {"overlay": args.overlay, "image": args.image}
    with tempfile.TemporaryDirectory(prefix="rlp-pvc-") as tmp:  # the PersistentVolumeClaim's stand-in
        data = Path(tmp) / "pvc"
        try:
            if args.drill:
                if "kill" in args.drills:
                    result["kill_transformer"] = drill_kill(args, deployment, data)
                if "stop" in args.drills:
                    result["sigstop_transformer"] = drill_stop(args, deployment, data)
            else:
                result["run"] = run_pod(args, deployment, data)
            result["pvc_files"] = sorted(str(f.relative_to(data)) for f in data.rglob("*.jsonl"))
        finally:
            for name in ("rlp-pod", "rlp-kill", "rlp-stop"):
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            # Files the container wrote as uid 1034 in a folder of this user: the temp dir's cleanup needs them gone.
            shutil.rmtree(data, ignore_errors=True)
    result["events"] = EVENTS
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "events"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
