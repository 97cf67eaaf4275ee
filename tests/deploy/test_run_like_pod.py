"""tools/run_like_pod.py turns the rendered all-in-one Deployment into exactly its `docker run` (the image run and
the drills themselves need docker and run in scripts/build_image.sh, not in CI)."""

from __future__ import annotations

from pathlib import Path

from tools import run_like_pod as rlp


def test_the_docker_run_carries_the_deployments_settings(tmp_path: Path) -> None:
    deployment = rlp.api_deployment(rlp.render("all-in-one"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    pod = rlp.Pod(deployment, "IMAGE:TAG", 3300, tmp_path, {})
    argv = pod.docker_args()
    pairs = set(zip(argv, argv[1:], strict=False))

    assert ("--user", "1034:1034") in pairs and ("--group-add", "1034") in pairs
    assert ("--cap-drop", "ALL") in pairs and ("--security-opt", "no-new-privileges") in pairs
    assert ("--cpus", "2.0") in pairs and ("--memory", str(3 * 2**30)) in pairs
    assert ("-p", "127.0.0.1:3300:3000") in pairs and ("-v", f"{tmp_path}:/data") in pairs
    # $(POD_NAME) expanded from the downward-API value, as the kubelet does
    assert ("-e", f"SENTIMENT_PATHS__DATA_DIR=/data/{rlp.POD}") in pairs
    assert {item["name"] for item in container["env"]} == {b.split("=", 1)[0] for a, b in pairs if a == "-e"}
    assert argv[argv.index("IMAGE:TAG") + 1 :] == container["args"]
    assert pod.grace == deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pod.port_of(container["readinessProbe"]) == 3000
