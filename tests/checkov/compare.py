#!/usr/bin/env python3
"""Cross-check securescore against checkov on the same manifests (a report, not a CI test).

For the Pod Security Standards controls both tools implement, count the workloads each one
flags and list every disagreement, per resource (file + Kind.namespace.name).

    bash tests/checkov/install.sh      # checkov in .tools/checkov-venv
    cargo build                          # or --release
    python3 tests/checkov/compare.py [--binary target/debug/securescore] [--details]

Inputs: examples/shop plus every catalog fixture (tests/fixtures/catalog/*/{pass,fail}.yaml).
securescore runs once per file (fixtures reuse object names across files, and owner
de-duplication must not match across unrelated files); checkov runs once over all of them.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOW = "2026-11-27T12:00:00Z"
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

# (control, checkov checks (a resource fails if any fails), securescore actions)
CONTROLS = [
    ("privileged", ["CKV_K8S_16"], ["pss-privileged-containers"]),
    ("host namespaces (PID/IPC/network)", ["CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19"], ["pss-host-namespaces"]),
    ("allowPrivilegeEscalation", ["CKV_K8S_20"], ["pss-disallow-privilege-escalation"]),
    ("runAsNonRoot / root containers", ["CKV_K8S_23"], ["pss-run-as-non-root"]),
    ("added capabilities", ["CKV_K8S_25"], ["pss-baseline-capabilities"]),
    ("drop ALL capabilities", ["CKV_K8S_37"], ["pss-drop-all-capabilities"]),
    ("hostPath volumes", ["CKV_K8S_27"], ["pss-hostpath-volumes"]),
]


def inputs():
    files = sorted(glob.glob(os.path.join(ROOT, "examples/shop/*.yaml")))
    files += sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/catalog/*/*.yaml")))
    return [os.path.relpath(f, ROOT) for f in files]


def run_checkov(files, checkov):
    checks = sorted({c for _, cs, _ in CONTROLS for c in cs})
    env = dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE")
    cmd = [checkov, "--framework", "kubernetes", "-o", "json", "--skip-download",
           "--check", ",".join(checks)]
    for f in files:
        cmd += ["-f", f]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if not out.stdout.strip():
        sys.exit(f"checkov produced no output:\n{out.stderr[-2000:]}")
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed, seen = defaultdict(set), set()
    for report in reports:
        results = report.get("results", {})
        for key in ("passed_checks", "failed_checks"):
            for c in results.get(key, []):
                kind = c["resource"].split(".", 1)[0]
                if kind not in POD_KINDS:
                    continue
                res = (c["file_path"].lstrip("/"), c["resource"])
                seen.add(res)
                if key == "failed_checks":
                    failed[c["check_id"]].add(res)
    return failed, seen


def run_securescore(files, binary):
    failed, applicable = defaultdict(set), defaultdict(set)
    for f in files:
        out = subprocess.run([binary, "scan", f, "--format", "sarif", "--now", NOW],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode not in (0, 1):
            sys.exit(f"securescore failed on {f}:\n{out.stderr}")
        for r in json.loads(out.stdout)["runs"][0]["results"]:
            kind, rest = r["properties"]["resource"].split(" ", 1)
            if kind not in POD_KINDS:
                continue
            ns, name = rest.split("/", 1)
            failed[r["ruleId"]].add((f, f"{kind}.{ns}.{name}"))
        js = subprocess.run([binary, "scan", f, "--format", "json", "--now", NOW],
                            cwd=ROOT, capture_output=True, text=True)
        for row in json.loads(js.stdout)["items"][0]["status"].get("actions", []):
            applicable[row["name"]].add((f, row["applicable"]))
    return failed, applicable


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/debug/securescore"))
    p.add_argument("--checkov", default=os.path.join(ROOT, ".tools/bin/checkov"))
    p.add_argument("--details", action="store_true", help="list every disagreeing resource")
    args = p.parse_args()
    files = inputs()
    ck_failed, ck_seen = run_checkov(files, args.checkov)
    ss_failed, ss_applicable = run_securescore(files, args.binary)

    print(f"{len(files)} files, {len(ck_seen)} pod-template workloads seen by checkov\n")
    print("| control | checkov | securescore | both | checkov only | securescore only | checkov checks | securescore action |")
    print("|---|---|---|---|---|---|---|---|")
    details = []
    for control, checks, actions in CONTROLS:
        ck = set().union(*(ck_failed[c] for c in checks))
        ss = set().union(*(ss_failed[a] for a in actions))
        both = ck & ss
        print(f"| {control} | {len(ck)} | {len(ss)} | {len(both)} | {len(ck - ss)} | {len(ss - ck)} "
              f"| {', '.join(checks)} | {', '.join(actions)} |")
        for res in sorted(ck - ss):
            details.append((control, "checkov only", res))
        for res in sorted(ss - ck):
            details.append((control, "securescore only", res))
    if args.details:
        print()
        for control, side, (f, res) in details:
            print(f"- {control}: {side}: {res} ({f})")


if __name__ == "__main__":
    main()
