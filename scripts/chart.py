#!/usr/bin/env python3
"""Lints and renders charts/logpipe with Helm's own engine (PyPI's helm-python-sdk, Helm v4 as a library).

  chart.py lint                                  strict lint of the chart with each value set in VALUE_SETS
  chart.py render [--release R] [--namespace N] [--set key=value ...]
                                                 the manifests a `helm install` would create, as one YAML stream
  chart.py install|upgrade --kubeconfig K [--release R] [--namespace N] [--set key=value ...]
                                                 what `helm install --create-namespace` / `helm upgrade` do, CRDs
                                                 included on install; prints the release's revision
  chart.py uninstall --kubeconfig K [--release R] [--namespace N]
                                                 `helm uninstall`: the release's objects, cluster-scoped ones too

Run with the interpreter of the venv that scripts/testenv.sh installs (LOGPIPE_HELM_PYTHON).
"""
import argparse
import pathlib
import sys

import helm_python as helm

CHART = pathlib.Path(__file__).resolve().parent.parent / "charts" / "logpipe"
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion); lint renders against it.
KUBE_VERSION = "v1.20.0"
# Value sets that switch on every optional template, so lint sees them all.
VALUE_SETS = {
    "defaults": {},
    "everything-on": {
        "replicas": 2,
        "watchNamespace": "logging",
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "serviceAccount": {"annotations": {"example.com/role": "logpipe"}},
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "podAnnotations": {"example.com/scrape": "true"},
        "policy": {
            "allowedHostPaths": ["/var/log/pods", "/var/lib/docker/containers"],
            "allowImageOverrides": True,
            "pipelineNamespaces": ["logging", "web"],
            "clusterWideNamespaces": ["logging"],
        },
        "webhook": {"port": 10443, "failurePolicy": "Ignore", "timeoutSeconds": 10},
    },
    "no-rbac-no-service": {
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "existing"},
        "leaderElection": {"enabled": False},
        "metrics": {"service": {"enabled": False}},
        "webhook": {"enabled": False},
    },
}


def lint() -> int:
    failed = 0
    for name, values in VALUE_SETS.items():
        report = helm.lint(CHART, values, strict=True, kube_version=KUBE_VERSION)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for p in problems:
            print(f"chart lint ({name}): {p.get('path', '')} {p['error']}", file=sys.stderr)
        failed += bool(problems)
        print(f"chart lint ({name}): {'FAILED' if problems else 'ok'}", file=sys.stderr)
    return 1 if failed else 0


def parse_sets(sets: list[str]) -> dict:
    values: dict = {}
    for s in sets:
        values = merge(values, helm.parse_set_string(s))
    return values


def release(action: str, kubeconfig: str, name: str, namespace: str, sets: list[str]) -> int:
    config = helm.Config(kubeconfig_path=kubeconfig, namespace=namespace)
    if action == "install":
        rel = config.install(CHART, name, parse_sets(sets), namespace=namespace, create_namespace=True)
    elif action == "uninstall":
        rel = config.uninstall(name, ignore_not_found=True)
    else:
        rel = config.upgrade(CHART, name, parse_sets(sets), namespace=namespace)
    print(rel.get("version"))
    return 0


def render(release: str, namespace: str, sets: list[str]) -> int:
    values = parse_sets(sets)
    chart = helm.Chart.load(CHART)
    chart.validate_schema(chart.merge_values(values))
    manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    out = [CRD_SEPARATOR + c["data"] for c in chart.crds]
    # CRDs first, as Helm installs them; the API server takes the rest in any order, so file order will do.
    for path in sorted(manifests):
        body = manifests[path].strip()
        if path.endswith("NOTES.txt") or not body:
            continue
        out.append(f"---\n# Source: {path}\n{body}\n")
    sys.stdout.write("".join(out))
    return 0


CRD_SEPARATOR = "---\n# Source: crds\n"


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint")
    r = sub.add_parser("render")
    r.add_argument("--release", default="logpipe")
    r.add_argument("--namespace", default="logpipe-system")
    r.add_argument("--set", action="append", default=[], dest="sets")
    for action in ("install", "upgrade", "uninstall"):
        a = sub.add_parser(action)
        a.add_argument("--kubeconfig", required=True)
        a.add_argument("--release", default="logpipe")
        a.add_argument("--namespace", default="logpipe-system")
        if action != "uninstall":
            a.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args()
    try:
        if args.command == "lint":
            return lint()
        if args.command in ("install", "upgrade", "uninstall"):
            sets = getattr(args, "sets", [])
            return release(args.command, args.kubeconfig, args.release, args.namespace, sets)
        return render(args.release, args.namespace, args.sets)
    except helm.HelmError as e:
        print(f"chart.py {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
